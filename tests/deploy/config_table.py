"""The rows of docs/configuration.md's table, from the services' Settings classes.

    python -m tests.deploy.config_table    # prints a row per variable: name, default, reader

``test_docs.py`` checks the table against the same data, so a new
setting or a changed default shows up as a failing test, not as a stale table.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from tests.deploy.support import service_settings, settings_env


def default_text(info: FieldInfo) -> str:
    """How the table writes a default (inside backticks, except "required" / "unset")."""
    if info.is_required():
        return "required"
    value: Any = info.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, list | dict):
        return f"`{json.dumps(value, ensure_ascii=False)}`"
    return f"`{value}`"


def variables() -> dict[str, dict[str, str]]:
    """Variable -> {service: default text}, for every variable a service's Settings reads.

    Open-ended containers (the generation settings' catch-all for any other
    ``GEN_<FIELD>``) are not variables of their own; the table names the family.
    """
    table: dict[str, dict[str, str]] = {}
    for service, cls in service_settings().items():
        for name, info in settings_env(cls).names.items():
            if typing.get_origin(info.annotation) is dict or info.annotation is dict:
                continue
            table.setdefault(name, {})[service] = default_text(info)
    return dict(sorted(table.items()))


def main() -> None:
    for name, readers in variables().items():
        defaults = sorted(set(readers.values()))
        default = defaults[0] if len(defaults) == 1 else ", ".join(f"{d} ({s})" for s, d in readers.items())
        print(f"| `{name}` | {default} | {', '.join(readers)} |  |")


if __name__ == "__main__":
    main()
