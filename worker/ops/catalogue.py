"""The maintenance operations by name, with the options each takes: what `komas ops NAME` and
`POST /api/ops/{name}` enqueue and the worker runs (`worker.runtime.jobs.maintenance`).

Every operation answers a JSON object with `ok`; a refusal (PostgreSQL, no room, a bad option) is an
answer with `ok: false` and an `error` that says why and what to do, never a failed job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from worker.config import Config
from worker.ops import maintenance, retention, stats
from worker.ops.maintenance import OpRefused


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class NoOptions(_Options):
    pass


class BackupOptions(_Options):
    full: bool = Field(default=False, description="Check the backup with integrity_check instead of quick_check.")
    keep: int | None = Field(default=None, ge=1, description="Backups to keep (default KOMAS_BACKUP_KEEP).")


class IntegrityOptions(_Options):
    full: bool = Field(default=False, description="integrity_check instead of quick_check.")


class PurgeOptions(_Options):
    dry_run: bool = Field(default=False, description="Count what would go; delete nothing.")


class StatsOptions(_Options):
    check: bool = Field(default=False, description="Only report the bots whose counters differ.")


@dataclass(frozen=True)
class Operation:
    summary: str
    options: type[_Options]
    run: Callable[[Config, dict[str, Any]], Awaitable[dict[str, Any]]]


OPERATIONS: dict[str, Operation] = {
    "backup": Operation(
        "online, consistent, verified backup to the backup directory",
        BackupOptions,
        lambda config, o: maintenance.backup(config, full=o["full"], keep=o["keep"]),
    ),
    "checkpoint": Operation("WAL checkpoint (TRUNCATE)", NoOptions, lambda config, o: maintenance.checkpoint(config)),
    "optimize": Operation("PRAGMA optimize", NoOptions, lambda config, o: maintenance.optimize(config)),
    "vacuum": Operation("full VACUUM", NoOptions, lambda config, o: maintenance.vacuum(config)),
    "integrity": Operation(
        "integrity check (changes nothing)",
        IntegrityOptions,
        lambda config, o: maintenance.integrity(config, full=o["full"]),
    ),
    "purge": Operation(
        "retention: old processed_events, replayed dead letters, old closed signals",
        PurgeOptions,
        lambda config, o: retention.purge(config, dry_run=o["dry_run"]),
    ),
    "rebuild-stats": Operation(
        "recompute every bot's counters from its signals",
        StatsOptions,
        lambda config, o: stats.rebuild_stats(config, check=o["check"]),
    ),
}


def refusal(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}


async def run_operation(config: Config, name: Any, options: Any) -> dict[str, Any]:
    """Run one operation by name with its options; a refusal comes back as `{"ok": false, "error": ...}`."""
    operation = OPERATIONS.get(name) if isinstance(name, str) else None
    if operation is None:
        return refusal(f"unknown operation {str(name)[:60]!r}; known: {', '.join(OPERATIONS)}")
    try:
        checked = operation.options.model_validate(options or {}).model_dump()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in exc.errors())
        return refusal(f"{name}: {problems}")
    try:
        return {"operation": name, **await operation.run(config, checked)}
    except OpRefused as exc:
        return {"operation": name, **refusal(str(exc))}
