"""``python -m model_server``: serve the model over HTTP until stopped."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from model_server.main import create_app
from model_server.settings import get_settings


def main() -> int:
    try:
        settings = get_settings()
    except (ValidationError, ValueError) as exc:
        print(f"model_server: invalid configuration: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    failure: list[str] = []

    def stop(reason: str) -> None:
        failure.append(reason)
        server.should_exit = True

    app = create_app(settings, on_load_failure=stop)
    server = uvicorn.Server(
        uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level)
    )
    server.run()
    if failure:
        print(f"model_server: {failure[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
