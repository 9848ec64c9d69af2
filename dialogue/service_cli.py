"""The services' command lines: ``--help`` from the docstring, invalid settings in one line.

The bot, the local run and the model server take no flags: they read their
settings from the environment, where passwords and tokens live too. An
invalid setting is one line that names each variable and what is wrong with
it, never the value it was given (pydantic's own message quotes the input).
Here because ``dialogue`` is the one package both services may import.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


def parse_service_args(prog: str, doc: str | None, argv: Sequence[str] | None, epilog_tail: str = "") -> None:
    """Answer ``--help`` with the module docstring (its first paragraph, then the rest); refuse flags.

    Call it before the heavy imports: --help must not wait seconds for them.
    """
    summary, _, details = (doc or "").replace("``", "").partition("\n\n")
    argparse.ArgumentParser(
        prog=prog,
        description=summary,
        epilog="\n".join(part for part in (details, epilog_tail) if part),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    ).parse_args(argv)


def settings_error_line(program: str, error: Exception, *settings_classes: type) -> str:
    """``program: invalid settings: DB_PORT: <what is wrong>; PORT: ...`` for a ValidationError.

    ``settings_classes`` name the pydantic-settings classes the error may come
    from, so that a field is shown as its variable (``GEN_TOP_P`` for the
    generation settings' ``top_p``). Any other ValueError is the project's own
    message, which never holds a value: its first line.
    """
    errors = getattr(error, "errors", None)
    if not callable(errors):
        text = str(error).strip().splitlines() or [type(error).__name__]
        return f"{program}: invalid settings: {text[0]}"
    prefix = _env_prefix(getattr(error, "title", ""), settings_classes)
    # A model validator's error has no field: its message names the variables itself.
    problems = [
        f"{_variable(prefix, item['loc'])}: {_message(item)}" if item["loc"] else _message(item)
        for item in errors(include_input=False)
    ]
    return f"{program}: invalid settings: {'; '.join(problems)}"


def _env_prefix(title: str, settings_classes: tuple[type, ...]) -> str:
    for cls in settings_classes:
        if cls.__name__ == title:
            return str(getattr(cls, "model_config", {}).get("env_prefix", ""))
    return ""


def _variable(prefix: str, loc: tuple[Any, ...]) -> str:
    head, *rest = (str(part) for part in loc)
    return ".".join([prefix.upper() + head.upper(), *rest])


def _message(item: Any) -> str:
    # "Value error, X" is pydantic's wrapping of a validator's own ValueError: X is the message.
    return " ".join(str(item["msg"]).removeprefix("Value error, ").split())
