"""Configuration from the environment (`KOMAS_*`), validated once at start.

A bad value stops the process with a message that names the variable, instead of failing later
somewhere deep in a connection attempt.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from events.wire import DEFAULT_JOB_TTL_S, DEFAULT_MAX_BATCH, DEFAULT_MAX_EVENT_BYTES, DEFAULT_QUEUE

ENV_PREFIX = "KOMAS_"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/komas.db"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


class ConfigError(ValueError):
    """A `KOMAS_*` variable holds a value we cannot use; the message names it."""


class Config(BaseSettings):
    """Everything the worker, API and CLI read from the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str = Field(default=DEFAULT_DATABASE_URL, description="SQLAlchemy async URL.")
    redis_url: str = Field(default=DEFAULT_REDIS_URL, description="Redis holding the arq queue.")
    queue: str = Field(default=DEFAULT_QUEUE, min_length=1, description="Name of the arq queue.")
    busy_timeout_ms: int = Field(default=5000, ge=0, description="SQLite busy_timeout for every connection.")
    max_event_bytes: int = Field(default=DEFAULT_MAX_EVENT_BYTES, gt=0)
    max_batch: int = Field(default=DEFAULT_MAX_BATCH, gt=0)
    max_jobs: int = Field(
        default=64,
        gt=0,
        description="arq jobs a worker runs at once (their events share one commit; 2 MiB of job bodies at most).",
    )
    poll_delay_s: float = Field(
        default=0.01, gt=0, le=5, description="Pause between looks at the queue when it is idle (arq's is 0.5 s)."
    )
    job_timeout_s: int = Field(default=300, gt=0, description="Longest one job may run before arq cancels it.")
    lock_ttl_s: int = Field(
        default=10,
        ge=3,
        description="In-progress lock of a running job, renewed every third of it: a killed job re-runs after it.",
    )
    max_crashes: int = Field(
        default=5, ge=1, description="Crashes of one job before it is split, and a single event dead-lettered."
    )
    park_timeout_s: int = Field(
        default=600, gt=0, description="How long an event waits for a missing dependency before dead-lettering."
    )
    job_ttl_s: int = Field(default=DEFAULT_JOB_TTL_S, gt=0, description="How long a queued job waits for a worker.")
    writer_lease_ttl_s: float = Field(
        default=10.0,
        ge=1,
        le=60,
        description="Writer lease TTL (renewed every third of it): a standby takes over within it if the writer dies.",
    )
    writer_partition: str = Field(
        default="main", min_length=1, max_length=64, description="The partition this worker writes (its lease)."
    )
    api_token: SecretStr | None = Field(
        default=None, description="Bearer token for API writes; without one the API listens on loopback only."
    )
    api_token_reads: bool = Field(default=False, description="Require the token for reads too.")
    api_max_body_bytes: int = Field(default=1024 * 1024, gt=0, description="Larger request bodies get 413.")
    api_body_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="A request head, then its body, not received within this closes the connection (body: 408).",
    )
    api_wait_s: float = Field(default=5.0, gt=0, description="How long a write waits for the worker before 202.")
    api_idempotency_ttl_s: int = Field(
        default=24 * 3600, gt=0, description="How long a write's first answer is kept for retries with its key."
    )
    api_min_free_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="/health answers 503 when the SQLite database's disk has less free space than this.",
    )
    api_host: str = Field(default="127.0.0.1", description="Where `komas api` and `komas up` listen.")
    api_port: int = Field(default=8000, ge=0, le=65535)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    log_format: Literal["text", "json"] = Field(default="text", description="json: one JSON object a line.")

    metrics_port: int = Field(
        default=9108, ge=0, le=65535, description="Where `komas worker` serves /metrics (0: not served)."
    )

    # --- maintenance (`komas ops`, and its schedule) ---
    backup_dir: str | None = Field(
        default=None, description="Where `backup` writes; default: backups/ next to the SQLite database."
    )
    backup_keep: int = Field(default=7, ge=1, description="Backups kept; older ones are removed by each backup.")
    retention_signals_days: int = Field(
        default=0, ge=0, description="purge: closed and cancelled signals older than this (0: never, history is kept)."
    )
    retention_dead_letters_days: int = Field(
        default=30, ge=0, description="purge: replayed dead letters older than this (0: never)."
    )
    dedup_window_s: int = Field(
        default=35 * 86400,
        gt=0,
        description="purge: processed_events older than this; longer than a job can wait plus the park timeout.",
    )
    cron_backup_hours: int = Field(default=24, ge=0, le=24, description="A backup every N hours (0: off).")
    cron_checkpoint_minutes: int = Field(default=60, ge=0, le=60, description="A WAL checkpoint every N min (0: off).")
    cron_checkpoint_wal_bytes: int = Field(
        default=64 * 1024 * 1024, ge=0, description="Also checkpoint as soon as the WAL is larger (0: off)."
    )
    cron_optimize_hours: int = Field(default=24, ge=0, le=24, description="PRAGMA optimize every N hours (0: off).")
    cron_purge_hours: int = Field(default=24, ge=0, le=24, description="A purge every N hours (0: off).")

    @model_validator(mode="after")
    def _check_dedup_window(self) -> Config:
        """A purge must never forget an event id that can still arrive: a job waits in Redis up to
        `job_ttl_s`, and a parked event is retried up to `park_timeout_s` later."""
        floor = self.job_ttl_s + self.park_timeout_s
        if self.dedup_window_s <= floor:
            raise ValueError(
                f"KOMAS_DEDUP_WINDOW_S ({self.dedup_window_s}) must be longer than KOMAS_JOB_TTL_S + "
                f"KOMAS_PARK_TIMEOUT_S ({floor}): a job delivered after its events' ids were purged "
                "would apply them again"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc})") from None
        if url.drivername not in _SUPPORTED_DRIVERS:
            raise ValueError(f"driver {url.drivername!r} is not supported; use one of {_SUPPORTED_DRIVERS}")
        return value

    @field_validator("api_token")
    @classmethod
    def _check_api_token(cls, value: SecretStr | None) -> SecretStr | None:
        """Set but empty is a mistake (a blank line in an env file), never "no token": refuse to start."""
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("is set but empty: give a token, or unset the variable to listen on loopback only")
        return value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value


def load_config() -> Config:
    """Read and validate the environment, turning pydantic's report into one line per bad variable."""
    try:
        return Config()
    except ValidationError as exc:
        problems = [
            f"{ENV_PREFIX}{str(err['loc'][0]).upper()}: {err['msg']} (got {err.get('input')!r})"
            if err["loc"]
            else str(err["msg"]).removeprefix("Value error, ")
            for err in exc.errors(include_url=False)
        ]
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_config() -> Config:
    """The process-wide configuration, read once."""
    return load_config()
