"""Refuses request bodies over ``MAX_BODY_BYTES`` with 413, before they are read whole.

A declared Content-Length over the limit is refused at once; a chunked body
is counted as it arrives and refused when it passes the limit.

The 413 goes out first, then the rest of the body is read and dropped (up to
:data:`DRAIN_BYTES` or :data:`DRAIN_S`, a lingering close as nginx does it),
and only then does the connection close. Closed with a body still arriving,
the kernel answers the sender with a reset, and most clients (urllib, httpx,
the OpenAI SDK) report ``Connection reset by peer`` instead of the 413: 30 of
30 with a 6 MB body did so.
"""

from __future__ import annotations

import asyncio
import json
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model_server.api.errors import ApiError, Shape

# Past these a client that keeps sending gets the reset after all: a bound on what one costs us.
DRAIN_BYTES: Final = 64 << 20
DRAIN_S: Final = 10.0


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            # A client that waits for "100 Continue" sends nothing more: nothing to drain.
            waiting = headers.get(b"expect", b"").lower() == b"100-continue"
            await self._refuse(scope, send, None if waiting else receive)
            return
        received = 0
        started = refused = False

        async def counted() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes and not refused:
                    refused = True
                    if not started:
                        await self._refuse(scope, send, receive if message.get("more_body") else None)
                    # The app sees a client that went away, and its answer is dropped.
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except Exception:
            if not refused:
                raise

    async def _refuse(self, scope: Scope, send: Send, rest: Receive | None) -> None:
        """The 413, then (``rest``: the body is still coming) the body drained, then the close."""
        shape = Shape.of(scope["path"])
        error = ApiError(413, f"request body is larger than {self.max_bytes} bytes")
        payload = json.dumps(error.body(shape)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": error.status_for(shape), "headers": headers})
        # The whole answer is out, but the response stays open: the server reads no body after it.
        await send({"type": "http.response.body", "body": payload, "more_body": rest is not None})
        if rest is None:
            return
        drained = 0
        try:
            async with asyncio.timeout(DRAIN_S):
                while drained <= DRAIN_BYTES:
                    message = await rest()
                    if message["type"] != "http.request" or not message.get("more_body"):
                        break
                    drained += len(message.get("body", b""))
        except TimeoutError:
            pass
        await send({"type": "http.response.body", "body": b""})
