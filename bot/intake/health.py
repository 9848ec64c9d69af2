"""``GET /healthz`` on HEALTH_PORT: whether this process is taking updates.

503 ``starting`` until the start-up has finished (database reachable, migrations
applied, token accepted, intake running), 200 ``ready`` while updates are taken,
503 ``stopping`` from SIGTERM on. Docker's healthcheck asks it, so ``depends_on``
and the proxy wait for a replica that can answer, not one still migrating.
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web

State = Literal["starting", "ready", "stopping"]


class Health:
    def __init__(self) -> None:
        self.state: State = "starting"

    async def answer(self, request: web.Request) -> web.Response:
        return web.json_response({"status": self.state}, status=200 if self.state == "ready" else 503)


async def start_health_server(health: Health, host: str, port: int) -> web.AppRunner:
    """Started first thing, so that the answer during the start-up is a clear 503."""
    app = web.Application()
    app.router.add_get("/healthz", health.answer)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
