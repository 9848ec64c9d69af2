"""Compose and the services agree on the environment: names from the pydantic Settings classes.

Every variable compose passes to a service is read by that service (its
Settings class, or a library it uses); every setting without a default is
provided; and the values compose passes make the services find each other.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydantic_settings import BaseSettings

from tests.deploy.support import FILLED_IN, SettingsEnv, service_settings, settings_env

# Read by a library inside the service's process rather than by its Settings.
LIBRARY_VARIABLES = {
    "model_server": {"HF_TOKEN"},  # huggingface_hub: private or gated models
    "bot": set(),
}
POSTGRES_IMAGE_VARIABLES = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def withheld(service: str) -> set[str]:
    """The other services' secrets: compose blanks them, since ``.env`` hands every line to both."""
    others = [settings_env(cls) for name, cls in service_settings().items() if name != service]
    return {
        name
        for reads in others
        for name, info in reads.names.items()
        if "SecretStr" in str(info.annotation) and not settings_env(settings_class(service)).reads(name)
    }


def settings_class(service: str) -> type[BaseSettings]:
    return service_settings()[service]


def environment(stack: dict[str, Any], service: str) -> dict[str, str]:
    """What the service's container gets (the fixtures' stacks are resolved from .env.example)."""
    env = stack["services"][service].get("environment") or {}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def build_settings(cls: type[BaseSettings], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """``cls`` as the service builds it in its container: from exactly ``env``, no .env file."""
    reads = settings_env(cls)
    for name in list(os.environ):
        if reads.reads(name):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return cls(_env_file=None)  # type: ignore[call-arg]


@pytest.mark.parametrize("service", ["bot", "model_server"])
def test_every_variable_compose_passes_is_read(compose: dict, compose_cpu: dict, service: str) -> None:
    reads: SettingsEnv = settings_env(settings_class(service))
    for stack in (compose, compose_cpu):
        blanked = {name for name, value in environment(stack, service).items() if not value}
        blanked &= withheld(service)
        passed = set(environment(stack, service)) - blanked
        unread = {v for v in passed if not reads.reads(v)} - LIBRARY_VARIABLES[service]
        assert not unread, f"{service} reads none of {sorted(unread)}"


def test_db_gets_only_what_the_postgres_image_reads(compose: dict) -> None:
    assert set(environment(compose, "db")) <= POSTGRES_IMAGE_VARIABLES


@pytest.mark.parametrize("service", ["bot", "model_server"])
def test_every_required_setting_is_provided(compose: dict, service: str) -> None:
    reads = settings_env(settings_class(service))
    required = {name for name, info in reads.names.items() if info.is_required()}
    assert required <= set(environment(compose, service))


def test_bot_settings_from_compose_point_at_the_db_service(
    compose: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = build_settings(settings_class("bot"), environment(compose, "bot"), monkeypatch)
    db = environment(compose, "db")
    url = settings.sqlalchemy_url
    assert url.get_backend_name() == "postgresql"
    assert url.host == "db" and "db" in compose["services"]
    assert url.port == 5432
    assert (url.username, url.password, url.database) == (
        db["POSTGRES_USER"],
        db["POSTGRES_PASSWORD"],
        db["POSTGRES_DB"],
    )
    assert settings.bot_token.get_secret_value() == FILLED_IN["BOT_TOKEN"]


@pytest.mark.parametrize("cpu", [False, True], ids=["gpu", "cpu"])
def test_bot_reaches_the_model_server_where_it_listens(
    compose: dict, compose_cpu: dict, cpu: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = compose_cpu if cpu else compose
    server = build_settings(settings_class("model_server"), environment(stack, "model_server"), monkeypatch)
    bot = build_settings(settings_class("bot"), environment(stack, "bot"), monkeypatch)
    target = urlsplit(bot.model_server_url)
    assert (target.hostname, target.port) == ("model_server", server.port)
    assert server.host == "0.0.0.0", "listen on the container's network, not its loopback"
    assert bot.context_size == server.context_size
    if cpu:
        assert server.device == "cpu"
