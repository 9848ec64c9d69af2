"""Refuses request bodies over ``MAX_BODY_BYTES`` with 413, before they are read whole.

A declared Content-Length over the limit is refused at once; a chunked body
is counted as it arrives and refused when it passes the limit.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model_server.api.errors import ApiError, Shape


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
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
                        await self._refuse(scope, send)
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

    async def _refuse(self, scope: Scope, send: Send) -> None:
        shape = Shape.of(scope["path"])
        error = ApiError(413, f"request body is larger than {self.max_bytes} bytes")
        payload = json.dumps(error.body(shape)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        # The rest of the body is never read: the connection closes after the answer.
        headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": error.status_for(shape), "headers": headers})
        await send({"type": "http.response.body", "body": payload})
