"""Processing the inbox: each chat's updates one after another in arrival order, chats concurrently.

One task per chat in progress. Updates that this process stored start their
chat's task at once; a scan every :data:`SCAN_INTERVAL_S` picks up what others
stored or left behind (a crashed replica, the previous run). An update is marked
done only after its handler returned, i.e. after the answer went out and the
exchange was stored; a crash before that means it is handled again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception, wait_fixed

from bot.storage.chat_settings import StoredSettings
from bot.storage.inbox import Inbox, InboxUnavailable, Waiting, entry_of

log = logging.getLogger(__name__)

SCAN_INTERVAL_S = 1.0
PURGE_INTERVAL_S = 3600.0
# After its last update a chat stays taken a while: a user writing again soon
# costs no lock round trips. With polling, this process is the only one taking
# updates; with webhook replicas, another one may have stored the chat's next
# update and waits for this one to look (at the latest when the linger ends).
LINGER_S = {"polling": 2.0, "webhook": 0.5}
RETRY_DONE_S = 1.0
CACHED_PAYLOADS = 10_000

# (payload, the sender's messages in the flood-control window up to this one, the chat's settings row)
Process = Callable[[dict[str, Any], int, StoredSettings | None], Awaitable[None]]


class Delivery:
    """Takes updates into the inbox (:meth:`accept`) and hands them to ``process`` in order."""

    def __init__(self, inbox: Inbox, process: Process, linger_s: float = LINGER_S["webhook"]) -> None:
        self.inbox = inbox
        self.linger_s = linger_s
        self._process = process
        self._chats: dict[int, asyncio.Task[None]] = {}
        self._wake: dict[int, asyncio.Event] = {}
        # Payloads this process stored, so that it need not parse them back from the database.
        self._payloads: dict[int, dict[str, Any]] = {}
        self._stopping = False
        self._scanner: asyncio.Task[None] | None = None

    # --- taking updates -----------------------------------------------------------

    async def accept(self, updates: list[dict[str, Any]]) -> None:
        """Store ``updates`` durably (raises :class:`InboxUnavailable`), then start on them.

        Only after this returns may the updates be acknowledged to Telegram.
        """
        entries = [entry_of(update) for update in updates]
        new = await self.inbox.add(entries)
        for entry in entries:
            if entry.update_id in new:
                if len(self._payloads) >= CACHED_PAYLOADS:  # taken by other replicas
                    del self._payloads[next(iter(self._payloads))]
                self._payloads[entry.update_id] = entry.payload
                self.poke(entry.chat_id)

    def poke(self, chat_id: int) -> None:
        """Something waits in ``chat_id``: start its task, or wake the running one."""
        if self._stopping:
            return
        if chat_id in self._chats:
            self._wake[chat_id].set()
            return
        self._wake[chat_id] = asyncio.Event()
        task = asyncio.create_task(self._run_chat(chat_id), name=f"chat {chat_id}")
        self._chats[chat_id] = task
        task.add_done_callback(lambda _: self._forget(chat_id, task))

    def _forget(self, chat_id: int, task: asyncio.Task[None]) -> None:
        if self._chats.get(chat_id) is task:
            del self._chats[chat_id]
            # Poked after its last look: start again rather than wait for the scan.
            if self._wake.pop(chat_id).is_set():
                self.poke(chat_id)

    # --- the work -------------------------------------------------------------------

    async def _run_chat(self, chat_id: int) -> None:
        try:
            if not await self.inbox.lock_chat(chat_id):
                return  # another process has this chat; it will see the new rows
        except InboxUnavailable as exc:
            log.warning("chat %d not taken: inbox unavailable (%s)", chat_id, type(exc).__name__)
            return
        try:
            await self._drain_chat(chat_id)
        except InboxUnavailable as exc:
            log.warning("chat %d paused: inbox unavailable (%s)", chat_id, type(exc).__name__)
        finally:
            with contextlib.suppress(InboxUnavailable):
                await self.inbox.unlock_chat(chat_id)

    async def _drain_chat(self, chat_id: int) -> None:
        wake = self._wake[chat_id]
        done: int | None = None
        last_look = False
        while not self._stopping:
            wake.clear()
            row = await self._next(chat_id, done)
            done = None
            if row is None:
                if last_look:
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.linger_s):
                        await wake.wait()
                # Not woken: one more look for what other replicas stored meanwhile, then let go.
                last_look = not wake.is_set()
                continue
            last_look = False
            await self._handle(row)
            done = row.update_id
        if done is not None:
            await self._mark_done(chat_id, done)

    async def _next(self, chat_id: int, done: int | None) -> Waiting | None:
        """The chat's next update; an answered one is marked done even if that takes a while.

        Handling it again instead would answer the user twice.
        """
        if done is None:
            return await self.inbox.next(chat_id)
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, InboxUnavailable) and not self._stopping),
            wait=wait_fixed(RETRY_DONE_S),
            before_sleep=lambda _: log.warning(
                "update %d answered but not yet marked done: inbox unavailable", done
            ),
            reraise=True,
        ):
            with attempt:
                return await self.inbox.next(chat_id, done)
        raise AssertionError("unreachable: AsyncRetrying either returns or raises")

    async def _handle(self, row: Waiting) -> None:
        payload = self._payloads.pop(row.update_id, None)
        if payload is None:
            payload = json.loads(row.payload) if isinstance(row.payload, str) else row.payload
        try:
            await self._process(payload, row.recent, row.settings)
        except Exception:  # one bad update must not block its chat
            log.exception("update %d failed; marked done so that its chat goes on", row.update_id)

    async def _mark_done(self, chat_id: int, update_id: int) -> None:
        """Stopping: this update was answered; record it, or it is answered again at the next start."""
        with contextlib.suppress(InboxUnavailable):
            await self.inbox.next(chat_id, update_id)

    # --- background scan, start and stop --------------------------------------------------

    async def start(self) -> None:
        """Start on what waits in the inbox, then keep scanning it in the background."""
        try:
            for chat_id in await self.inbox.pending_chats():
                self.poke(chat_id)
        except InboxUnavailable as exc:
            log.warning("inbox not read at start: %s", exc)
        self._scanner = asyncio.create_task(self._scan(), name="inbox scan")

    async def _scan(self) -> None:
        purged_at = 0.0
        while not self._stopping:
            try:
                if time.monotonic() - purged_at > PURGE_INTERVAL_S:
                    purged = await self.inbox.purge()
                    purged_at = time.monotonic()
                    if purged:
                        log.info("inbox: %d old done updates purged", purged)
                for chat_id in await self.inbox.pending_chats():
                    if chat_id not in self._chats:
                        self.poke(chat_id)
            except InboxUnavailable as exc:
                log.warning("inbox scan failed: %s", exc)
            await asyncio.sleep(SCAN_INTERVAL_S)

    async def drain(self, grace_s: float) -> int:
        """Take no new work; give what is in progress ``grace_s``; the number of chats cut short."""
        self._stopping = True
        if self._scanner is not None:
            self._scanner.cancel()
        for wake in self._wake.values():
            wake.set()  # lingering chats end now
        tasks = list(self._chats.values())
        if not tasks:
            return 0
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        return len(pending)

    @property
    def in_progress(self) -> int:
        return len(self._chats)
