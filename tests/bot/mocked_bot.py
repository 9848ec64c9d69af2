"""A Bot whose HTTP session is replaced, after aiogram's own ``tests/mocked_bot.py``.

The session is the boundary: every Bot API call is recorded, and answered
with what the Bot API would return (or with an error queued by the test);
file downloads come from ``files``. Everything above it (Bot, Dispatcher,
routers, middlewares, handlers) is the real code.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict, deque
from collections.abc import AsyncGenerator
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiohttp import ClientResponseError, RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

TOKEN = "42:TEST-TOKEN-never-in-logs"
BOT_USER = {"id": 42, "is_bot": True, "first_name": "Тестовый бот", "username": "test_bot"}


class MockedSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []
        self.errors: defaultdict[str, deque[dict[str, Any]]] = defaultdict(deque)
        self.files: dict[str, bytes] = {}
        self._message_ids = itertools.count(1000)
        self.sent_message_ids: list[int] = []  # what sendMessage returned, in order
        self.admins: set[tuple[int, int]] = set()  # (chat, user): getChatMember says "administrator"

    def next_message_id(self) -> int:
        """An id for a message the test sends: one sequence with the bot's, as in a Telegram chat."""
        return next(self._message_ids)

    def fail_next(
        self, method: str, error_code: int, description: str, retry_after: int | None = None
    ) -> None:
        """The next call of ``method`` gets this Bot API error."""
        error: dict[str, Any] = {"ok": False, "error_code": error_code, "description": description}
        if retry_after is not None:
            error["parameters"] = {"retry_after": retry_after}
        self.errors[method].append(error)

    def sent(self, method: str = "sendMessage") -> list[Any]:
        return [r for r in self.requests if r.__api_method__ == method]

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        return [r.text for r in self.sent() if chat_id is None or r.chat_id == chat_id]

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None
    ) -> TelegramType:
        self.requests.append(method)
        name = method.__api_method__
        if self.errors[name]:
            error = self.errors[name].popleft()
            response = self.check_response(bot, method, error["error_code"], self.json_dumps(error))
        else:
            result = self._result(name, method)
            response = self.check_response(bot, method, 200, self.json_dumps({"ok": True, "result": result}))
        return response.result  # type: ignore[return-value]

    def _result(self, name: str, method: Any) -> Any:
        if name == "getMe":
            return BOT_USER
        if name == "sendMessage":
            self.sent_message_ids.append(next(self._message_ids))
            return {
                "message_id": self.sent_message_ids[-1],
                "date": int(time.time()),
                "chat": {"id": method.chat_id, "type": "private"},
                "from": BOT_USER,
                "text": method.text,
            }
        if name == "getChatMember":
            user = {"id": method.user_id, "is_bot": False, "first_name": "x"}
            if (method.chat_id, method.user_id) in self.admins:
                return {"status": "creator", "user": user, "is_anonymous": False}
            return {"status": "member", "user": user}
        if name == "getFile":
            return {
                "file_id": method.file_id,
                "file_unique_id": method.file_id,
                "file_path": f"voice/{method.file_id}",
            }
        return True

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        path = url.split("/", 1)[1] if "/" in url else url
        data = next((content for name, content in self.files.items() if path.endswith(name)), None)
        if data is None:
            info = RequestInfo(URL(url), "GET", CIMultiDictProxy(CIMultiDict()), URL(url))
            raise ClientResponseError(info, (), status=404, message="Not Found")
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    async def close(self) -> None:
        pass


class MockedBot(Bot):
    def __init__(self, session: BaseSession | None = None) -> None:
        super().__init__(TOKEN, session=session or MockedSession())

    @property
    def mocked(self) -> MockedSession:
        assert isinstance(self.session, MockedSession)
        return self.session
