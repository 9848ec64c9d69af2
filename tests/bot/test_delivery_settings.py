"""BOT_MODE=webhook needs its URL and secret; a mistake is one line per problem, without the secret."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from benchmarks.support.processes import REPO
from bot.settings import Settings


def test_polling_needs_nothing_more() -> None:
    assert Settings(bot_mode="polling").webhook_secret is None


def test_webhook_mode_with_url_and_secret() -> None:
    settings = Settings(bot_mode="webhook", webhook_base_url="https://b.example", webhook_secret="s_1-A")
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
