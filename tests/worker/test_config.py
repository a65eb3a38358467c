"""Configuration: the defaults, every KOMAS_* variable read, and bad values named in the error."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from events.wire import DEFAULT_JOB_TTL_S, DEFAULT_MAX_BATCH, DEFAULT_MAX_EVENT_BYTES, DEFAULT_QUEUE
from worker.config import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, Config, ConfigError, load_config

DEFAULTS: dict[str, Any] = {
    "database_url": DEFAULT_DATABASE_URL,
    "redis_url": DEFAULT_REDIS_URL,
    "queue": DEFAULT_QUEUE,
    "busy_timeout_ms": 5000,
    "max_event_bytes": DEFAULT_MAX_EVENT_BYTES,
    "max_batch": DEFAULT_MAX_BATCH,
    "max_jobs": 64,
    "poll_delay_s": 0.01,
    "job_timeout_s": 300,
    "lock_ttl_s": 10,
    "max_crashes": 5,
    "park_timeout_s": 600,
    "job_ttl_s": DEFAULT_JOB_TTL_S,
    "api_token": None,
    "api_token_reads": False,
    "api_max_body_bytes": 1024 * 1024,
    "api_body_timeout_s": 10.0,
    "api_wait_s": 5.0,
    "api_idempotency_ttl_s": 86400,
    "api_min_free_bytes": 64 * 1024 * 1024,
    "api_host": "127.0.0.1",
    "api_port": 8000,
    "log_level": "INFO",
    "writer_lease_ttl_s": 10.0,
    "writer_partition": "main",
    "metrics_port": 9108,
    "log_format": "text",
    "backup_dir": None,
    "backup_keep": 7,
    "retention_signals_days": 0,
    "retention_dead_letters_days": 30,
    "dedup_window_s": 35 * 86400,
    "cron_backup_hours": 24,
    "cron_checkpoint_minutes": 60,
    "cron_checkpoint_wal_bytes": 64 * 1024 * 1024,
    "cron_optimize_hours": 24,
    "cron_purge_hours": 24,
}

#: For each field: what to put in its variable and what the field then holds.
READ: dict[str, tuple[str, Any]] = {
    "database_url": ("postgresql+asyncpg://komas:pw@db:5432/komas", "postgresql+asyncpg://komas:pw@db:5432/komas"),
    "redis_url": ("rediss://cache:6380/2", "rediss://cache:6380/2"),
    "queue": ("komas:other", "komas:other"),
    "busy_timeout_ms": ("0", 0),
    "max_event_bytes": ("1024", 1024),
    "max_batch": ("7", 7),
    "max_jobs": ("3", 3),
    "poll_delay_s": ("0.25", 0.25),
    "job_timeout_s": ("60", 60),
    "lock_ttl_s": ("3", 3),
    "max_crashes": ("1", 1),
    "park_timeout_s": ("30", 30),
    "job_ttl_s": ("3600", 3600),
    "api_token": ("s3cret", "s3cret"),
    "api_token_reads": ("true", True),
    "api_max_body_bytes": ("2048", 2048),
    "api_body_timeout_s": ("2.5", 2.5),
    "api_wait_s": ("0.5", 0.5),
    "api_idempotency_ttl_s": ("60", 60),
    "api_min_free_bytes": ("0", 0),
    "api_host": ("0.0.0.0", "0.0.0.0"),
    "api_port": ("0", 0),
    "log_level": ("DEBUG", "DEBUG"),
    "writer_lease_ttl_s": ("4.5", 4.5),
    "writer_partition": ("eu", "eu"),
    "metrics_port": ("0", 0),
    "log_format": ("json", "json"),
    "backup_dir": ("/srv/komas/backups", "/srv/komas/backups"),
    "backup_keep": ("14", 14),
    "retention_signals_days": ("365", 365),
    "retention_dead_letters_days": ("0", 0),
    "dedup_window_s": ("4000000", 4_000_000),
    "cron_backup_hours": ("6", 6),
    "cron_checkpoint_minutes": ("0", 0),
    "cron_checkpoint_wal_bytes": ("0", 0),
    "cron_optimize_hours": ("12", 12),
    "cron_purge_hours": ("0", 0),
}

BAD: list[tuple[str, str, str]] = [
    ("DATABASE_URL", "not a url", "not a database URL"),
    ("DATABASE_URL", "mysql+aiomysql://u@h/db", "not supported"),
    ("DATABASE_URL", "sqlite:///data/komas.db", "not supported"),  # the sync driver would block the loop
    ("DATABASE_URL", "postgresql://u@h/db", "not supported"),
    ("REDIS_URL", "http://127.0.0.1:6379", "redis://"),
    ("QUEUE", "", "at least 1"),
    ("BUSY_TIMEOUT_MS", "-1", "greater than or equal to 0"),
    ("MAX_EVENT_BYTES", "0", "greater than 0"),
    ("MAX_BATCH", "-5", "greater than 0"),
    ("MAX_JOBS", "many", "valid integer"),
    ("POLL_DELAY_S", "0", "greater than 0"),
    ("POLL_DELAY_S", "60", "less than or equal to 5"),
    ("JOB_TIMEOUT_S", "-1", "greater than 0"),
    ("LOCK_TTL_S", "2", "greater than or equal to 3"),
    ("MAX_CRASHES", "0", "greater than or equal to 1"),
    ("PARK_TIMEOUT_S", "-600", "greater than 0"),
    ("JOB_TTL_S", "1.5", "valid integer"),
    ("API_TOKEN_READS", "perhaps", "valid boolean"),
    ("API_MAX_BODY_BYTES", "-1", "greater than 0"),
    ("API_WAIT_S", "-0.1", "greater than 0"),
    ("API_TOKEN", "", "set but empty"),
    ("API_TOKEN", "  \t ", "set but empty"),
    ("API_BODY_TIMEOUT_S", "0", "greater than 0"),
    ("API_IDEMPOTENCY_TTL_S", "0", "greater than 0"),
    ("API_MIN_FREE_BYTES", "-1", "greater than or equal to 0"),
    ("API_PORT", "70000", "less than or equal to 65535"),
    ("API_PORT", "-1", "greater than or equal to 0"),
    ("LOG_LEVEL", "VERBOSE", "pattern"),
    ("LOG_LEVEL", "", "pattern"),
    ("BACKUP_KEEP", "0", "greater than or equal to 1"),
    ("METRICS_PORT", "65536", "less than or equal to 65535"),
    ("LOG_FORMAT", "xml", "'text' or 'json'"),
    ("CRON_BACKUP_HOURS", "25", "less than or equal to 24"),
    ("RETENTION_SIGNALS_DAYS", "-1", "greater than or equal to 0"),
    ("DEDUP_WINDOW_S", "0", "greater than 0"),
]


def plain(value: Any) -> Any:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def test_defaults() -> None:
    """With no KOMAS_* variable set (conftest clears them) every field has its documented default."""
    config = load_config()
    assert {name: plain(getattr(config, name)) for name in Config.model_fields} == DEFAULTS


def test_every_field_is_covered_here() -> None:
    """A new setting must come with a default, a read and a bad-value case in this file."""
    assert set(DEFAULTS) == set(READ) == set(Config.model_fields)
    assert {name.lower() for name, _, _ in BAD} <= set(Config.model_fields)


@pytest.mark.parametrize("field", sorted(READ))
def test_each_variable_is_read(monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    raw, expected = READ[field]
    assert plain(getattr(load_config(), field)) != expected  # the case tests something
    monkeypatch.setenv(f"KOMAS_{field.upper()}", raw)
    assert plain(getattr(load_config(), field)) == expected


def test_api_token_is_kept_out_of_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOMAS_API_TOKEN", "s3cret")
    assert "s3cret" not in repr(load_config())


@pytest.mark.parametrize(("name", "raw", "reason"), BAD, ids=[f"{n}={r!r}" for n, r, _ in BAD])
def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, raw: str, reason: str) -> None:
    monkeypatch.setenv(f"KOMAS_{name}", raw)
    with pytest.raises(ConfigError) as caught:
        load_config()
    message = str(caught.value)
    assert f"KOMAS_{name}:" in message
    assert reason in message
    assert message.count("KOMAS_") == 1  # only the bad variable is blamed


def test_several_bad_values_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOMAS_DATABASE_URL", "oracle://x")
    monkeypatch.setenv("KOMAS_MAX_BATCH", "-1")
    monkeypatch.setenv("KOMAS_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError) as caught:
        load_config()
    for name in ("KOMAS_DATABASE_URL", "KOMAS_MAX_BATCH", "KOMAS_LOG_LEVEL"):
        assert name in str(caught.value)


def test_config_error_is_a_value_error() -> None:
    """Callers that catch ValueError (CLI argument handling) catch it too."""
    assert issubclass(ConfigError, ValueError)


def test_unrelated_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOMAS_NOT_A_SETTING", "whatever")
    assert load_config().queue == DEFAULT_QUEUE


def test_a_dedup_window_a_redelivery_could_outlive_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOMAS_JOB_TTL_S", "3600")
    monkeypatch.setenv("KOMAS_PARK_TIMEOUT_S", "600")
    monkeypatch.setenv("KOMAS_DEDUP_WINDOW_S", "4200")
    with pytest.raises(ConfigError) as caught:
        load_config()
    message = str(caught.value)
    assert "KOMAS_DEDUP_WINDOW_S (4200) must be longer than KOMAS_JOB_TTL_S + KOMAS_PARK_TIMEOUT_S (4200)" in message
    monkeypatch.setenv("KOMAS_DEDUP_WINDOW_S", "4201")
    assert load_config().dedup_window_s == 4201
