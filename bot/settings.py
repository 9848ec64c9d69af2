"""Configuration of the Telegram bot, read from the environment (see docs/architecture.md, the bot)."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from dialogue.format import CONTEXT_SIZE

TELEGRAM_API_URL = "https://api.telegram.org"
# The languages the bot speaks: one catalogue each under bot/locales (Russian is the message ids).
Language = Literal["ru", "en"]
_DB_PARTS = ("db_user", "db_password", "db_host", "db_port", "db_name")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Required by `python -m bot` (Telegram polling); optional here so that the
    # terminal chat can reuse the same settings without a token.
    bot_token: SecretStr | None = None
    telegram_api_url: str = TELEGRAM_API_URL
    model_server_url: str = "http://model_server:80"
    # The model server's API_KEY; sent as a bearer token when set.
    model_server_api_key: SecretStr | None = None

    # DATABASE_URL wins; else DB_* parts build a PostgreSQL URL; else SQLite.
    database_url: SecretStr | None = None
    db_user: str = "postgres"
    db_password: SecretStr | None = None
    db_host: str = "db"
    db_port: int = 5432
    db_name: str = "user_context"
    sqlite_path: Path = Path("bot_context.sqlite3")
    # Start-up retries of SELECT 1, so that compose start order works.
    db_connect_attempts: int = Field(5, ge=1)
    # Client-side bound of connecting, pool checkout and every statement: a frozen
    # server answers nothing, so a server-side statement_timeout alone never fires.
    db_timeout_s: float = Field(5.0, gt=0)

    context_size: int = Field(CONTEXT_SIZE, ge=1)
    # Seconds between looks at the model server's /health for a swapped model (0: never).
    model_watch_s: float = Field(60.0, ge=0)

    asr_backend: Literal["faster-whisper", "google"] = "faster-whisper"
    asr_model: str = Field("small", description="Whisper size name (hub) or a local CTranslate2 model dir")
    asr_language: str = "ru"
    asr_device: str = "cpu"
    asr_compute_type: str = "int8"
    asr_beam_size: int = Field(5, ge=1)
    asr_threads: int = Field(1, ge=1, description="recognitions running at once")

    voice_max_seconds: int = Field(120, ge=1)
    voice_max_bytes: int = Field(5 * 1024 * 1024, ge=1)
    answer_timeout_s: float = Field(60.0, gt=0, description="time the model server may take per answer")
    # The answer grows on screen as the model writes it (docs/groups.md); false: sent whole, via /answer.
    stream_answers: bool = True
    # Requests in flight to the model server; the server batches concurrent ones.
    model_max_concurrency: int = Field(16, ge=1)

    rate_limit_messages: int = Field(8, ge=1, description="messages a user may send per period")
    rate_limit_period_s: float = Field(10.0, gt=0)

    # Where the bot speaks in groups: see bot/telegram/filters.py.
    group_reply_mode: Literal["mention", "all", "off"] = "mention"
    # Comma-separated ids; empty lets everyone in. Both lists must let a message through.
    allowed_user_ids: Annotated[list[int], NoDecode] = []
    allowed_chat_ids: Annotated[list[int], NoDecode] = []
    context_retention_days: int = Field(30, ge=0, description="0 keeps conversations until /forget")
    # Unset: each user's Telegram language_code picks Russian or English.
    bot_language: Language | None = None

    # Learning from groups (docs/groups.md): a chat's admin turns it on; this is the default elsewhere.
    learning_default: bool = False
    # The key of the corpus's author keys (HMAC-SHA256 of the sender id): needed wherever learning is on.
    corpus_secret: SecretStr | None = None
    corpus_retention_days: int = Field(365, ge=0, description="0 keeps the corpus until deleted")

    # Delivery: polling (one process) or webhook (one or more replicas behind a proxy).
    bot_mode: Literal["polling", "webhook"] = "polling"
    webhook_base_url: str | None = Field(None, description="public https origin Telegram posts to")
    webhook_path: str = "/telegram/webhook"
    webhook_host: str = "0.0.0.0"  # the container's interface; the proxy is in front
    webhook_port: int = Field(8080, ge=1, le=65535)
    webhook_secret: SecretStr | None = Field(
        None, description="X-Telegram-Bot-Api-Secret-Token; required in webhook mode"
    )
    # GET /healthz (bot/intake/health.py), on WEBHOOK_HOST; unset: no health server.
    health_port: int | None = Field(None, ge=1, le=65535)
    # On SIGTERM: time the messages in hand get to finish; the rest stay in the inbox.
    shutdown_grace_s: float = Field(20.0, ge=0)

    log_level: str = "INFO"

    @field_validator("bot_language", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # compose passes `BOT_LANGUAGE=` when .env leaves it empty

    @field_validator("allowed_user_ids", "allowed_chat_ids", mode="before")
    @classmethod
    def _comma_separated_ids(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return [int(part) for part in value.split(",") if part.strip()]
            except ValueError:
                # Without the value: error lines never quote one (dialogue.settings_errors).
                raise ValueError("expected comma-separated numeric ids") from None
        return value

    @model_validator(mode="after")
    def _learning_needs_a_secret(self) -> Settings:
        if self.learning_default and not self.corpus_secret_value:
            raise ValueError("LEARNING_DEFAULT=on needs CORPUS_SECRET (the key of the corpus's author keys)")
        return self

    @property
    def corpus_secret_value(self) -> str:
        return self.corpus_secret.get_secret_value() if self.corpus_secret else ""

    @model_validator(mode="after")
    def _webhook_needs_url_and_secret(self) -> Settings:
        if self.bot_mode != "webhook":
            return self
        if not self.webhook_base_url:
            raise ValueError("BOT_MODE=webhook needs WEBHOOK_BASE_URL (the public https origin)")
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        # Telegram's own rule for secret_token.
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ValueError("BOT_MODE=webhook needs WEBHOOK_SECRET: 1-256 characters of A-Z a-z 0-9 _ -")
        if not self.webhook_path.startswith("/"):
            raise ValueError("WEBHOOK_PATH must start with /")
        # Loopback is a local test of one replica: no certificate, and SQLite's file will do.
        if _is_loopback(self.webhook_base_url):
            return self
        if urlsplit(self.webhook_base_url).scheme != "https":
            raise ValueError("BOT_MODE=webhook needs an https WEBHOOK_BASE_URL (Telegram posts to no other)")
        if self.sqlalchemy_url.get_backend_name() == "sqlite":
            raise ValueError(
                "BOT_MODE=webhook needs PostgreSQL (DATABASE_URL or DB_*): replicas share the inbox "
                "through its locks; SQLite only with a loopback WEBHOOK_BASE_URL"
            )
        return self

    @property
    def sqlalchemy_url(self) -> URL:
        """Async SQLAlchemy URL (asyncpg / aiosqlite). ``str()`` of it masks the password."""
        if self.database_url is not None:
            return _async_driver(make_url(self.database_url.get_secret_value()))
        if self.model_fields_set & set(_DB_PARTS):
            return URL.create(
                "postgresql+asyncpg",
                username=self.db_user,
                password=self.db_password.get_secret_value() if self.db_password else None,
                host=self.db_host,
                port=self.db_port,
                database=self.db_name,
            )
        return URL.create("sqlite+aiosqlite", database=str(self.sqlite_path))


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _async_driver(url: URL) -> URL:
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    raise ValueError(f"unsupported database backend {backend!r}: use PostgreSQL or SQLite")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests reset them with ``get_settings.cache_clear()``."""
    return Settings()
