"""How the processes log: text or one JSON object a line (`KOMAS_LOG_FORMAT`), and quiet by default.

At INFO the worker says what it applied at most every few seconds (see `worker.runtime.jobs`), and
nothing while idle: arq's own line per job and per health check, and Alembic's start-up chatter,
show only at DEBUG. Warnings and errors always show. A record's `job_id` and `event_id` (given with
`extra=`) become fields of its JSON object.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

#: Loggers that talk at INFO about routine work: quiet unless KOMAS_LOG_LEVEL=DEBUG.
CHATTY = ("arq.worker", "arq.jobs", "arq.connections", "alembic.runtime.migration", "alembic.runtime.plugins")
#: Record attributes carried into the JSON object when set.
FIELDS = ("job_id", "event_id", "operation")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: timestamp (UTC, ISO 8601), level, logger, message, ids, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str, fmt: str = "text") -> None:
    """Set up the root logger for a `komas` process (replacing any handler set before)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in CHATTY:
        logging.getLogger(name).setLevel(quiet)
