"""``python -m model_server``: serve the model over HTTP until stopped.

Configured by environment variables (or ``.env``; the environment wins), not
flags; docs/configuration.md describes them. MODEL_NAME_OR_PATH is a hub id or
a local model directory; CONTEXT_SIZE and the generation settings default to
what the model's dialogue.json and generation_config.json say. GEN_<FIELD>
sets any GenerationConfig field (GEN_MAX_NEW_TOKENS=40, GEN_DO_SAMPLE=false).
Invalid settings exit with status 2 and one line naming the variable.
"""

from __future__ import annotations

import logging
import sys
import textwrap

from dialogue.service_cli import parse_service_args, settings_error_line
from model_server.settings import GenerationSettings, Settings, get_settings


def main(argv: list[str] | None = None) -> int:
    variables = ", ".join(name.upper() for name in Settings.model_fields if name != "generation")
    listing = textwrap.fill(f"Variables: {variables}, GEN_<FIELD>.")
    parse_service_args("python -m model_server", __doc__, argv, listing)
    try:
        settings = get_settings()
    except ValueError as exc:  # pydantic's ValidationError included
        print(settings_error_line("model_server", exc, Settings, GenerationSettings), file=sys.stderr)
        return 2
    # Only now: uvicorn, FastAPI and the engines take seconds to import.
    import uvicorn

    from model_server.main import create_app

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
