"""A small fake Telegram Bot API server (aiohttp, loopback) for end-to-end tests and benchmarks.

It speaks enough of the Bot API for ``python -m bot``: getMe, getUpdates with
long polling, sendMessage, sendMessageDraft (private chats only),
editMessageText, sendChatAction, setMyCommands, deleteWebhook, getFile and
``/file/bot<token>/<path>`` downloads. Tests queue updates as a
user would send them, inject errors (429 with ``retry_after``, 5xx), and wait
for what the bot sends back. Point the bot at it with
``TELEGRAM_API_URL=fake.base_url``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_USER = {"id": 4242, "is_bot": True, "first_name": "Бот", "username": "fake_dialogue_bot"}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    failed: bool = False  # answered with an injected error
    result: Any = None  # what the fake answered (for sendMessage: the sent message)


class FakeBotAPI:
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.files: dict[str, bytes] = {}  # file_id -> content
        self.delivered_at: dict[int, float] = {}  # update_id -> when getUpdates handed it out
        self.sent: defaultdict[int, list[Call]] = defaultdict(list)  # chat_id -> delivered sendMessage calls
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}  # (chat, message id) -> message
        self.pushed: dict[int, dict[str, Any]] = {}  # update_id -> the user's message
        self.admins: set[tuple[int, int]] = set()  # (chat, user): administrators for getChatMember
        self.first_names: dict[int, str] = {}  # user id -> first_name ("Тест" for the others)
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._errors: defaultdict[str, deque[tuple[int, dict[str, Any]]]] = defaultdict(deque)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- server life ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> FakeBotAPI:
        app = web.Application(client_max_size=50 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what users do -------------------------------------------------------

    def message_update(
        self,
        user_id: int,
        content: dict[str, Any],
        chat_id: int | None = None,
        reply_to: int | None = None,
        update_id: int | None = None,
    ) -> dict[str, Any]:
        """A user's message as an update, not yet handed out; in a group when ``chat_id`` is given.

        Its message id comes from the same sequence as the bot's own messages, since
        Telegram numbers both in one sequence per chat.
        """
        update_id = next(self._update_ids) if update_id is None else update_id
        chat_id = user_id if chat_id is None else chat_id
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": self._user(user_id),
            **content,
        }
        self.messages[chat_id, message["message_id"]] = dict(message)
        if reply_to is not None:  # as Telegram does: the replied-to message, without its own reply
            message["reply_to_message"] = self.messages[chat_id, reply_to]
        self.pushed[update_id] = message
        return {"update_id": update_id, "message": message}

    def _user(self, user_id: int) -> dict[str, Any]:
        name = self.first_names.get(user_id, "Тест")
        return {"id": user_id, "is_bot": False, "first_name": name, "language_code": "ru"}

    def press(self, user_id: int, chat_id: int, message_id: int, data: str) -> int:
        """The user presses an inline button (``data``) under the bot's message, as a callback query."""
        update_id = next(self._update_ids)
        query = {
            "id": str(update_id),
            "from": self._user(user_id),
            "chat_instance": str(chat_id),
            "message": self.messages[chat_id, message_id],
            "data": data,
        }
        self.queue({"update_id": update_id, "callback_query": query})
        return update_id

    def _push(
        self, user_id: int, content: dict[str, Any], chat_id: int | None = None, reply_to: int | None = None
    ) -> int:
        """A user's message, handed out by the next getUpdates."""
        update = self.message_update(user_id, content, chat_id, reply_to)
        self.queue(update)
        return int(update["update_id"])

    def queue(self, update: dict[str, Any]) -> None:
        """An update exactly as given (a re-sent one, say), handed out by the next getUpdates."""
        self._updates.append(update)
        asyncio.get_running_loop().create_task(self._notify())

    def send_text(
        self, user_id: int, text: str, chat_id: int | None = None, reply_to: int | None = None
    ) -> int:
        entities = []
        if text.startswith("/"):
            entities = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        elif text.startswith("@"):
            entities = [{"type": "mention", "offset": 0, "length": len(text.split()[0])}]
        return self._push(user_id, {"text": text, "entities": entities}, chat_id, reply_to)

    def send_voice(self, user_id: int, data: bytes, duration: int) -> int:
        file_id = f"voice{len(self.files) + 1}"
        self.files[file_id] = data
        voice = {
            "file_id": file_id,
            "file_unique_id": file_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(data),
        }
        return self._push(user_id, {"voice": voice})

    def send_sticker(self, user_id: int) -> int:
        sticker = {
            "file_id": "sticker1",
            "file_unique_id": "sticker1",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": "🙂",
        }
        return self._push(user_id, {"sticker": sticker})

    def fail_next(
        self, method: str, status: int, description: str, retry_after: int | None = None, times: int = 1
    ) -> None:
        """The next ``times`` calls of ``method`` get this error, as Telegram sends it."""
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        for _ in range(times):
            self._errors[method].append((status, body))

    # --- what the bot did ----------------------------------------------------

    def calls_of(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def messages_to(self, chat_id: int) -> list[str]:
        """Texts delivered to ``chat_id`` (calls that got an injected error do not count)."""
        return [c.params["text"] for c in self.sent[chat_id]]

    def shown_in(self, chat_id: int) -> list[str]:
        """What the bot's messages in ``chat_id`` show now, edits included."""
        return [self.messages[chat_id, c.result["message_id"]]["text"] for c in self.sent[chat_id]]

    def delivered(self, method: str, chat_id: int) -> list[Call]:
        """The calls of ``method`` for ``chat_id`` that did not get an injected error."""
        return [c for c in self.calls_of(method) if not c.failed and int(c.params["chat_id"]) == chat_id]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def replies(self, chat_id: int, after: int, count: int, timeout: float = 30.0) -> list[str]:
        """Wait until the bot has sent ``count`` messages to ``chat_id`` beyond the first ``after``."""
        await self.wait_for(lambda: len(self.messages_to(chat_id)) >= after + count, timeout)
        return self.messages_to(chat_id)[after:]

    # --- HTTP ------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params = await _params(request)
        call = Call(method, params, failed=bool(self._errors[method]))
        self.calls.append(call)
        await self._notify()
        if call.failed:
            status, body = self._errors[method].popleft()
            return web.json_response(body, status=status)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, f"Not Found: method {method} is not faked")
        result = call.result = await handler(params)
        if method == "sendMessage":
            self.sent[int(params["chat_id"])].append(call)
        return web.json_response({"ok": True, "result": result})

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return BOT_USER

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_setMyCommands(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_sendChatAction(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": BOT_USER,
            "text": params["text"],
        }
        if params.get("reply_markup"):
            markup = params["reply_markup"]
            message["reply_markup"] = json.loads(markup) if isinstance(markup, str) else markup
        self.messages[chat_id, message["message_id"]] = message
        return message

    async def _m_getChatMember(self, params: dict[str, Any]) -> Any:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        if (chat_id, user_id) in self.admins:
            return {"status": "creator", "user": self._user(user_id), "is_anonymous": False}
        return {"status": "member", "user": self._user(user_id)}

    async def _m_getChatAdministrators(self, params: dict[str, Any]) -> Any:
        chat_id = int(params["chat_id"])
        return [
            {"status": "creator", "user": self._user(user), "is_anonymous": False}
            for chat, user in sorted(self.admins)
            if chat == chat_id
        ]

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        return True

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        message = self.messages[int(params["chat_id"]), int(params["message_id"])]
        markup = params.get("reply_markup")
        message["reply_markup"] = json.loads(markup) if isinstance(markup, str) else markup
        return message

    async def _m_sendMessageDraft(self, params: dict[str, Any]) -> Any:
        if int(params["chat_id"]) < 0:
            raise _bad_request("Bad Request: message drafts are available in private chats only")
        if not 0 < len(params.get("text") or "") <= 4096 or not int(params["draft_id"]):
            raise _bad_request("Bad Request: text must be 1-4096 characters, draft_id non-zero")
        return True

    async def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        message = self.messages.get((int(params["chat_id"]), int(params["message_id"])))
        if message is None or message["from"] != BOT_USER:
            raise _bad_request("Bad Request: message to edit not found")
        if message["text"] == params["text"]:  # as Telegram answers
            raise _bad_request("Bad Request: message is not modified")
        message["text"] = params["text"]
        return message

    async def _m_getFile(self, params: dict[str, Any]) -> Any:
        file_id = params["file_id"]
        if file_id not in self.files:
            raise _bad_request("Bad Request: invalid file_id")
        data = self.files[file_id]
        return {
            "file_id": file_id,
            "file_unique_id": file_id,
            "file_size": len(data),
            "file_path": f"voice/{file_id}.oga",
        }

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        offset = int(params.get("offset") or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]  # confirmed ones are gone
        timeout = float(params.get("timeout") or 0)
        try:
            await self.wait_for(lambda: bool(self._updates), timeout)
        except TimeoutError:
            return []
        batch = self._updates[: int(params.get("limit") or 100)]
        now = time.monotonic()
        for update in batch:
            self.delivered_at.setdefault(update["update_id"], now)
        return batch

    async def _file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        path = request.match_info["path"]
        file_id = path.rsplit("/", 1)[-1].removesuffix(".oga")
        if file_id not in self.files:
            return _error(404, "Not Found")
        return web.Response(body=self.files[file_id], content_type="audio/ogg")


async def _params(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        return dict(await request.json())
    params: dict[str, Any] = dict(request.query)
    if request.can_read_body:
        params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    return params


def _chat(chat_id: int) -> dict[str, Any]:
    """Positive ids are private chats (the user's own id), negative ones supergroups."""
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Тест"}
    return {"id": chat_id, "type": "supergroup", "title": "Группа"}


def reply_target(call: Call) -> int | None:
    """The message a sendMessage call replied to (reply_parameters), if any."""
    raw = call.params.get("reply_parameters")
    if raw is None:
        return None
    return int((json.loads(raw) if isinstance(raw, str) else raw)["message_id"])


def _bad_request(description: str) -> web.HTTPBadRequest:
    body = {"ok": False, "error_code": 400, "description": description}
    return web.HTTPBadRequest(text=json.dumps(body), content_type="application/json")


def _error(status: int, description: str) -> web.Response:
    return web.json_response({"ok": False, "error_code": status, "description": description}, status=status)
