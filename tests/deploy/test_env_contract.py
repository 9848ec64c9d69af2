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
from dotenv import dotenv_values
from pydantic_settings import BaseSettings

from tests.deploy.support import ENV_EXAMPLE, SettingsEnv, environment, interpolate, settings_env

# Read by a library inside the service's process rather than by its Settings.
LIBRARY_VARIABLES = {
    "model_server": {"HF_TOKEN"},  # huggingface_hub: private or gated models
    "bot": set(),
}
POSTGRES_IMAGE_VARIABLES = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}
FILLED_IN = {"BOT_TOKEN": "123456:test-token", "DB_PASSWORD": "s3cret-pw"}


def settings_class(service: str) -> type[BaseSettings]:
    if service == "bot":
        from bot.settings import Settings as BotSettings

        return BotSettings
    from model_server.settings import Settings as ServerSettings

    return ServerSettings


def compose_env(compose: dict[str, Any], service: str) -> dict[str, str]:
    """The service's environment after interpolation with a filled-in .env.example."""
    dot_env = {k: v or "" for k, v in dotenv_values(ENV_EXAMPLE).items()} | FILLED_IN
    env = interpolate(environment(compose["services"][service]), dot_env)
    return {key: str(value) for key, value in env.items()}


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
        passed = set(environment(stack["services"][service]))
        unread = {v for v in passed if not reads.reads(v)} - LIBRARY_VARIABLES[service]
        assert not unread, f"{service} reads none of {sorted(unread)}"


def test_db_gets_only_what_the_postgres_image_reads(compose: dict) -> None:
    assert set(environment(compose["services"]["db"])) <= POSTGRES_IMAGE_VARIABLES


@pytest.mark.parametrize("service", ["bot", "model_server"])
def test_every_required_setting_is_provided(compose: dict, service: str) -> None:
    reads = settings_env(settings_class(service))
    required = {name for name, info in reads.names.items() if info.is_required()}
    assert required <= set(environment(compose["services"][service]))


def test_bot_settings_from_compose_point_at_the_db_service(
    compose: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = build_settings(settings_class("bot"), compose_env(compose, "bot"), monkeypatch)
    db = interpolate(environment(compose["services"]["db"]), FILLED_IN | {"DB_USER": "bot"})
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
    server = build_settings(settings_class("model_server"), compose_env(stack, "model_server"), monkeypatch)
    bot = build_settings(settings_class("bot"), compose_env(stack, "bot"), monkeypatch)
    target = urlsplit(bot.model_server_url)
    assert (target.hostname, target.port) == ("model_server", server.port)
    assert server.host == "0.0.0.0", "listen on the container's network, not its loopback"
    assert bot.context_size == server.context_size
    if cpu:
        assert server.device == "cpu"
