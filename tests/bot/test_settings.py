from __future__ import annotations

import pytest

from bot.settings import Settings, get_settings
from dialogue.format import CONTEXT_SIZE

ENV_NAMES = (
    "DATABASE_URL",
    "DB_USER",
    "DB_PASSWORD",
    "DB_HOST",
    "DB_PORT",
    "DB_NAME",
    "BOT_TOKEN",
    "CONTEXT_SIZE",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file


def test_defaults_use_embedded_sqlite_and_shared_context_size() -> None:
    settings = Settings()
    assert settings.sqlalchemy_url.drivername == "sqlite+aiosqlite"
    assert settings.context_size == CONTEXT_SIZE
    assert settings.model_server_url == "http://model_server:80"
    assert settings.bot_token is None


def test_db_parts_build_postgres_url_with_hidden_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_PASSWORD", "p@ss:word/1")
    monkeypatch.setenv("DB_HOST", "db.local")
    url = Settings().sqlalchemy_url
    assert url.drivername == "postgresql+asyncpg"
    assert (url.host, url.port, url.database) == ("db.local", 5432, "user_context")
    assert url.password == "p@ss:word/1"
    assert "p@ss" not in str(url) and "p@ss" not in repr(Settings())


def test_database_url_gets_async_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:secret@h:6543/d")
    monkeypatch.setenv("DB_HOST", "ignored")
    url = Settings().sqlalchemy_url
    assert (url.drivername, url.host, url.port, url.database) == ("postgresql+asyncpg", "h", 6543, "d")


def test_token_is_secret_and_settings_cache_resets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "123:SECRET")
    get_settings.cache_clear()
    settings = get_settings()
    assert get_settings() is settings
    assert "SECRET" not in repr(settings)
    assert settings.bot_token is not None and settings.bot_token.get_secret_value() == "123:SECRET"
    monkeypatch.setenv("CONTEXT_SIZE", "5")
    get_settings.cache_clear()
    assert get_settings().context_size == 5
    get_settings.cache_clear()


def test_allow_lists_are_comma_separated_and_bad_ids_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_USER_IDS", "5, 7,")
    monkeypatch.setenv("ALLOWED_CHAT_IDS", "-1001234567890")
    monkeypatch.setenv("BOT_LANGUAGE", "")  # what compose passes for an empty .env line
    settings = Settings()
    assert settings.allowed_user_ids == [5, 7] and settings.allowed_chat_ids == [-1001234567890]
    assert settings.bot_language is None and settings.group_reply_mode == "mention"
    assert settings.context_retention_days == 30
    monkeypatch.setenv("ALLOWED_USER_IDS", "5,alice")
    with pytest.raises(ValueError, match="comma-separated numeric ids"):
        Settings()


def test_the_model_servers_api_key_is_read_and_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().model_server_api_key is None
    monkeypatch.setenv("MODEL_SERVER_API_KEY", "model-KEY-42")
    settings = Settings()
    assert settings.model_server_api_key is not None
    assert settings.model_server_api_key.get_secret_value() == "model-KEY-42"
    assert "model-KEY-42" not in repr(settings) and "model-KEY-42" not in str(settings.model_dump())
