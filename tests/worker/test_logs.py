"""`KOMAS_LOG_FORMAT=json`: one JSON object a line; routine chatter of arq and Alembic only at DEBUG."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from worker.logs import configure


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in ("arq.worker", "alembic.runtime.migration")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def test_json_lines_carry_level_logger_message_and_ids(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure("INFO", "json")
    logging.getLogger("komas.worker").warning(
        "event %s dead-lettered", "e-1", extra={"event_id": "e-1", "job_id": "j-9"}
    )
    logging.getLogger("arq.worker").info("  0.01s → cron:retry_parked_job()")  # routine: not at INFO
    logging.getLogger("komas.worker").debug("not at INFO either")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "komas.worker"
    assert entry["message"] == "event e-1 dead-lettered"
    assert (entry["event_id"], entry["job_id"]) == ("e-1", "j-9")
    assert entry["timestamp"].endswith("+00:00")


def test_debug_shows_arqs_own_lines_in_text(restored_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    configure("DEBUG", "text")
    logging.getLogger("arq.worker").info("recording health")
    assert "INFO arq.worker: recording health" in capsys.readouterr().err
