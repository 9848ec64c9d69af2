"""BOT_MODE=webhook needs URL, secret, https and PostgreSQL; a mistake is one line, without the secret.

Loopback (127.0.0.0/8, localhost, [::1]) is a local test of one replica: plain
http and SQLite are accepted there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from benchmarks.support.processes import REPO
from bot.settings import Settings

POSTGRES = "postgresql://bot:pw-must-not-leak@db/user_context"
SECRET = "webhook_secret_must_not_leak"


def test_polling_needs_nothing_more() -> None:
    assert Settings(bot_mode="polling").webhook_secret is None


def test_webhook_mode_with_url_and_secret() -> None:
    settings = Settings(
        bot_mode="webhook",
        webhook_base_url="https://b.example",
        webhook_secret="s_1-A",
        database_url=POSTGRES,
    )
    assert settings.webhook_port == 8080 and settings.webhook_path == "/telegram/webhook"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"webhook_secret": "abc"}, "WEBHOOK_BASE_URL"),
        ({"webhook_base_url": "https://b.example"}, "WEBHOOK_SECRET"),
        ({"webhook_base_url": "https://b.example", "webhook_secret": "has space"}, "WEBHOOK_SECRET"),
    ],
)
def test_webhook_mode_refuses_what_is_missing(fields: dict[str, str], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        Settings(bot_mode="webhook", **fields)


def test_bad_webhook_settings_stop_the_bot_with_one_line_and_no_secret(tmp_path: object) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "BOT_TOKEN": "123:not-checked-yet",
        "BOT_MODE": "webhook",
        "WEBHOOK_SECRET": "secret with spaces must not leak",
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "WEBHOOK_BASE_URL" in result.stderr
    assert "must not leak" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def run_bot(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m bot`` with exactly ``env`` (no .env of the checkout: it runs elsewhere)."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "BOT_TOKEN": "123:not-checked-yet", **env}
    return subprocess.run(
        [sys.executable, "-m", "bot"], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("url", "database", "reason"),
    [
        ("http://bot.example.org", {"DATABASE_URL": POSTGRES}, "https WEBHOOK_BASE_URL"),
        ("https://bot.example.org", {}, "PostgreSQL"),
        # A name that merely starts like loopback is a public host.
        ("http://127.0.0.1.example.org", {"DATABASE_URL": POSTGRES}, "https WEBHOOK_BASE_URL"),
        ("https://localhost.example.org", {"SQLITE_PATH": "x.sqlite3"}, "PostgreSQL"),
    ],
)
def test_webhook_mode_refuses_plain_http_and_sqlite_with_one_line(
    url: str, database: dict[str, str], reason: str, tmp_path: Path
) -> None:
    env = {"BOT_MODE": "webhook", "WEBHOOK_BASE_URL": url, "WEBHOOK_SECRET": SECRET, **database}
    result = run_bot(env, tmp_path)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("bot: invalid settings: BOT_MODE=webhook needs") and reason in line, line
    assert "must-not-leak" not in result.stderr + result.stdout
    assert SECRET not in result.stderr + result.stdout
    assert not list(tmp_path.iterdir()), "refused before any database file was made"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://127.10.0.2", "http://localhost:8080", "http://[::1]:8080"]
)
def test_loopback_lifts_the_https_and_postgresql_rules_for_one_local_replica(url: str) -> None:
    settings = Settings(bot_mode="webhook", webhook_base_url=url, webhook_secret="s_1-A", _env_file=None)  # type: ignore[call-arg]
    assert settings.sqlalchemy_url.get_backend_name() == "sqlite"
