"""docker-compose.yaml and its CPU override, as Docker Compose itself resolves them."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dotenv import dotenv_values

from tests.deploy import config_table
from tests.deploy.dockerfile import DOCKERFILES, dockerfile_stages
from tests.deploy.support import (
    CPU_STACK,
    ENV_EXAMPLE,
    FILLED_IN,
    GPU_STACK,
    ROOT,
    WEBHOOK_FILLED_IN,
    WEBHOOK_STACK,
    compose_config,
    compose_variables,
    go_duration_s,
    run_compose,
)

SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET", re.IGNORECASE)


def image_env(dockerfile: Path, name: str) -> str:
    """The value an ENV instruction of the image's final stage sets for ``name``."""
    for instruction in dockerfile_stages(dockerfile)[-1].instructions:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                key, _, value = pair.partition("=")
                if key == name:
                    return value
    raise AssertionError(f"{dockerfile} sets no {name}")


def env_of(service: dict[str, Any]) -> dict[str, Any]:
    return dict(service.get("environment") or {})


def test_three_services_on_one_network(services: dict[str, Any]) -> None:
    assert set(services) == {"bot", "model_server", "db"}
    networks = {tuple(service["networks"]) for service in services.values()}
    assert len(networks) == 1 and len(next(iter(networks))) == 1, networks


def test_db_is_pinned_persistent_healthchecked_and_private(services: dict[str, Any], compose: dict) -> None:
    db = services["db"]
    repo, _, tag = db["image"].partition(":")
    assert repo == "postgres" and re.match(r"\d+\.\d+", tag), f"pin a postgres version, not {db['image']!r}"
    assert env_of(db)["POSTGRES_DB"] == "user_context"
    [data] = [v for v in db["volumes"] if v["target"] == "/var/lib/postgresql/data"]
    assert data["type"] == "volume" and data["source"] in compose["volumes"], "a named data volume"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert not db.get("ports"), "PostgreSQL must not be published on the host"


def test_db_healthcheck_command_runs_pg_isready(services: dict[str, Any]) -> None:
    """The healthcheck as the container's shell runs it."""
    if shutil.which("pg_isready") is None:
        pytest.skip("pg_isready is not installed")
    kind, command = services["db"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    # `config` prints a literal $ escaped, as the file has it; the container gets one $.
    command = command.replace("$$", "$")
    env = {**os.environ, "POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres", "PGHOST": "127.0.0.1"}
    up = subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=30)
    assert up.returncode == 0, up
    down = subprocess.run(["sh", "-c", command], env={**env, "PGPORT": "1"}, capture_output=True, timeout=30)
    assert down.returncode != 0


def test_model_server_gets_a_gpu_and_keeps_weights_in_a_volume(services: dict, compose: dict) -> None:
    server = services["model_server"]
    assert server["build"]["dockerfile"] == "model_server/Dockerfile"
    devices = server["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    hf_home = image_env(DOCKERFILES["model_server"], "HF_HOME")
    [cache] = [v for v in server["volumes"] if v["target"] == hf_home]
    assert cache["type"] == "volume" and cache["source"] in compose["volumes"], f"HF cache ({hf_home})"


def test_model_server_healthcheck_waits_for_the_first_download(services: dict[str, Any]) -> None:
    check = services["model_server"]["healthcheck"]
    assert check["test"][:2] == ["CMD", "python"], "no curl in the image: use python"
    assert "/health" in " ".join(check["test"])
    assert go_duration_s(check["start_period"]) >= 15 * 60, "the first start downloads the weights"


@pytest.mark.parametrize("cpu", [False, True], ids=["gpu", "cpu"])
def test_published_ports_bind_only_the_hosts_loopback(compose: dict, compose_cpu: dict, cpu: bool) -> None:
    for name, service in (compose_cpu if cpu else compose)["services"].items():
        for port in service.get("ports") or []:
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes {port} beyond the host"


def test_bot_waits_for_its_dependencies_and_restarts(services: dict[str, Any]) -> None:
    bot = services["bot"]
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert "model_server" in bot["depends_on"]
    assert bot["restart"] == "unless-stopped"
    assert {"BOT_TOKEN", "DB_USER", "DB_PASSWORD", "MODEL_SERVER_URL", "TELEGRAM_API_URL"} <= set(env_of(bot))


def test_secrets_reach_the_services_from_the_environment_and_never_the_build() -> None:
    secrets = {"BOT_TOKEN": "424242:from-env", "DB_PASSWORD": "pw-from-env", "HF_TOKEN": "hf_from_env"}
    for files in (GPU_STACK, CPU_STACK):
        services = compose_config(files, secrets)["services"]
        assert env_of(services["bot"])["BOT_TOKEN"] == secrets["BOT_TOKEN"]
        assert env_of(services["bot"])["DB_PASSWORD"] == secrets["DB_PASSWORD"]
        assert env_of(services["db"])["POSTGRES_PASSWORD"] == secrets["DB_PASSWORD"]
        assert env_of(services["model_server"])["HF_TOKEN"] == secrets["HF_TOKEN"]
        for name, service in services.items():
            args = (service.get("build") or {}).get("args") or {}
            assert not [a for a in args if SECRET_NAME.search(a)], f"{name}: a secret as a build argument"


@pytest.mark.parametrize("variable", sorted(FILLED_IN))
def test_a_missing_secret_stops_compose_with_a_clear_message(variable: str) -> None:
    env = {k: v for k, v in FILLED_IN.items() if k != variable}
    result = run_compose(GPU_STACK, "config", "--quiet", env=env, env_file=ENV_EXAMPLE)
    assert result.returncode != 0
    assert variable in result.stderr and ".env" in result.stderr, result.stderr


def test_env_example_documents_every_variable_compose_uses() -> None:
    used = compose_variables(GPU_STACK) | compose_variables(CPU_STACK) | compose_variables(WEBHOOK_STACK)
    documented = set(dotenv_values(ENV_EXAMPLE))
    assert used <= documented, f"missing from .env.example: {used - documented}"
    # The rest reach the services through env_file: each is a setting of docs/configuration.md.
    unused = documented - used - set(config_table.variables())
    assert not unused, f"neither in compose nor a documented setting: {unused}"
    assert "COMPOSE_FILE=docker-compose.yaml:docker-compose.cpu.yaml" in ENV_EXAMPLE.read_text()


def test_cpu_override_drops_the_gpu_and_builds_cpu_torch(compose_cpu: dict[str, Any], compose: dict) -> None:
    server = compose_cpu["services"]["model_server"]
    assert "deploy" not in server or not server["deploy"].get("resources")
    assert server["build"]["args"]["TORCH_INDEX_URL"].endswith("/whl/cpu")
    assert server["image"] != compose["services"]["model_server"]["image"], "CPU and GPU images differ"
    assert env_of(server)["DEVICE"] == "cpu"


def test_webhook_override_runs_replicas_behind_a_pinned_proxy() -> None:
    config = compose_config(WEBHOOK_STACK, FILLED_IN | WEBHOOK_FILLED_IN | {"BOT_REPLICAS": "3"})
    bot, proxy = config["services"]["bot"], config["services"]["proxy"]
    assert bot["deploy"]["replicas"] == 3
    assert bot["environment"]["BOT_MODE"] == "webhook"
    assert bot["environment"]["WEBHOOK_BASE_URL"] == "https://bot.example.org"
    assert not bot.get("ports"), "replicas publish no port; the proxy is the way in"
    repo, _, tag = proxy["image"].partition(":")
    assert repo == "caddy" and re.match(r"\d+\.\d+\.\d+", tag), proxy["image"]
    assert proxy["networks"].keys() == bot["networks"].keys()
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    assert "dynamic a bot 8080" in caddyfile and bot["environment"]["WEBHOOK_PORT"] == "8080"
    assert "handle /telegram/webhook" in caddyfile


@pytest.mark.parametrize("variable", ["WEBHOOK_SECRET", "WEBHOOK_DOMAIN"])
def test_webhook_override_refuses_to_start_without(variable: str) -> None:
    env = FILLED_IN | WEBHOOK_FILLED_IN
    del env[variable]
    result = run_compose(WEBHOOK_STACK, "config", "--quiet", env=env)
    assert result.returncode != 0 and variable in result.stderr


def test_bot_gets_time_to_drain_on_stop(compose: dict[str, Any]) -> None:
    bot = compose["services"]["bot"]
    grace = float(env_of(bot)["SHUTDOWN_GRACE_S"])
    assert go_duration_s(bot["stop_grace_period"]) >= grace + 3, "docker stop must not kill the drain"


def test_bot_is_healthy_only_when_its_healthz_says_so_and_the_proxy_waits_for_that() -> None:
    """tests/bot/test_health.py runs this healthcheck against a bot that is starting, then ready."""
    config = compose_config(WEBHOOK_STACK, FILLED_IN | WEBHOOK_FILLED_IN)
    bot, proxy = config["services"]["bot"], config["services"]["proxy"]
    check = bot["healthcheck"]
    assert check["test"][:2] == ["CMD", "python"] and "/healthz" in check["test"][-1]
    assert "HEALTH_PORT" in check["test"][-1] and env_of(bot)["HEALTH_PORT"]
    assert go_duration_s(check["start_period"]) >= 5 * 60, "the first start downloads the speech model"
    assert proxy["depends_on"]["bot"]["condition"] == "service_healthy"
    # Caddy checks no dynamic upstream itself: a refused replica is retried on another one.
    assert re.search(r"lb_try_duration \d+s", (ROOT / "deploy" / "Caddyfile").read_text())
