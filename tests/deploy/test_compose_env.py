"""Every setting of docs/configuration.md that ``.env`` sets reaches the service that reads it.

The table's rows come from the services' Settings classes (``config_table``;
``test_docs`` keeps the document equal to them). A ``.env`` setting each of them
to a value of its own is rendered by Compose as ``docker compose up`` would
read it: once for ``${VAR}`` interpolation, once as the services' ``env_file``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy.config_table import variables
from tests.deploy.support import CPU_STACK, GPU_STACK, WEBHOOK_STACK, compose_config
from tests.deploy.test_env_contract import environment, withheld

# The stack's own wiring, which .env cannot move: where the services listen and find each
# other, and a drain that must fit stop_grace_period. docs/configuration.md names them.
FIXED = {
    "bot": {"DB_HOST", "DB_PORT", "DB_NAME", "MODEL_SERVER_URL", "SHUTDOWN_GRACE_S", "HEALTH_PORT"},
    "model_server": {"HOST", "PORT"},
}
STACK_FIXED = {
    "gpu": {},
    "cpu": {"model_server": {"DEVICE"}},
    "webhook": {"bot": {"BOT_MODE", "WEBHOOK_BASE_URL", "WEBHOOK_HOST", "WEBHOOK_PORT"}},
}
STACKS = {"gpu": GPU_STACK, "cpu": CPU_STACK, "webhook": WEBHOOK_STACK}
# Not a row of its own: any GenerationConfig field, through the GEN_<FIELD> family.
FAMILY_MEMBER = "GEN_TYPICAL_P"


def render_with_dotenv(stack: str, values: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    # The webhook stack needs its public name too (compose's own variable, no setting).
    lines = {**values, **({"WEBHOOK_DOMAIN": "bot.example.org"} if stack == "webhook" else {})}
    dotenv = tmp_path / ".env"
    dotenv.write_text("".join(f"{name}={value}\n" for name, value in lines.items()), encoding="utf-8")
    return compose_config(STACKS[stack], {}, env_file=dotenv, dotenv=dotenv)


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_every_documented_setting_in_dotenv_reaches_its_service(stack: str, tmp_path: Path) -> None:
    documented = variables()
    # A value of each variable's own, which is no service's default.
    values = {name: f"dotenv-{name.lower()}" for name in documented} | {FAMILY_MEMBER: "0.5"}
    config = render_with_dotenv(stack, values, tmp_path)
    lost, moved = [], []
    for name, readers in [*documented.items(), (FAMILY_MEMBER, {"model_server": ""})]:
        for service in readers:
            got = environment(config, service).get(name)
            fixed = FIXED[service] | STACK_FIXED[stack].get(service, set())
            if name in fixed:
                if got == values[name]:
                    moved.append(f"{service}: {name} (the stack fixes it)")
            elif got != values[name]:
                lost.append(f"{service}: {name}={got!r}")
    assert not lost, f"set in .env, not arriving: {lost}"
    assert not moved, f".env moved the stack's wiring: {moved}"


def test_the_model_server_gets_none_of_the_bots_secrets(tmp_path: Path) -> None:
    secrets = withheld("model_server")
    assert {"BOT_TOKEN", "DB_PASSWORD", "WEBHOOK_SECRET", "DATABASE_URL"} <= secrets
    values = {name: f"secret-{name.lower()}" for name in secrets}
    config = render_with_dotenv("gpu", values, tmp_path)
    server = environment(config, "model_server")
    assert not [name for name in secrets if server.get(name)], server
    assert environment(config, "bot")["BOT_TOKEN"] == values["BOT_TOKEN"]
