"""`komas ops restore FILE`: put a backup back in place of the SQLite database, with the worker stopped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer

from worker.cli._common import fail
from worker.config import Config, get_config


async def _worker_running(config: Config) -> bool:
    """Whether a worker holds the writer lease of this database, or waits to take it (a standby)."""
    import redis.asyncio as aioredis

    from worker.runtime.lease import lease_status

    client = aioredis.Redis.from_url(config.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        status = await lease_status(client, config.database_url, config.writer_partition)
    finally:
        await client.aclose()
    return status["active"] is not None or bool(status["standbys"])


def restore_command(
    file: Path = typer.Argument(..., help="The backup to restore (a .db file, e.g. from data/backups/)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    force: bool = typer.Option(
        False, "--force", help="Restore even when Redis cannot be reached to tell whether a worker runs."
    ),
) -> None:
    """Replace the SQLite database with a backup; the worker must be stopped.

    The file is checked first (a SQLite database, integrity_check clean, a schema revision of ours),
    the current database is backed up, the backup is migrated if it is older, then put in place.
    Events applied after the backup was taken, published again with their ids, apply once.

    Example: [bold]komas ops restore data/backups/komas-20260101T000000000000Z.db[/bold]
    """
    import redis.exceptions

    from worker.ops.maintenance import OpRefused, database_file
    from worker.ops.restore import restore

    config = get_config()
    try:
        running = asyncio.run(_worker_running(config))
    except (redis.exceptions.RedisError, OSError) as exc:
        if not force:
            raise fail(
                f"cannot tell whether a worker runs: Redis at {config.redis_url} does not answer ({exc}). "
                "Stop every `komas up` / `komas worker` of this database, then run again with --force"
            ) from None
        running = False
    if running:
        from worker.ops.restore import WORKER_RUNNING

        raise fail(WORKER_RUNNING)
    try:
        database = database_file(config)
        # PostgreSQL: nothing to confirm, the restore refuses at once.
        if (
            database is not None
            and not yes
            and not typer.confirm(f"Replace the database {database} with {file}? (the current one is backed up first)")
        ):
            raise fail("nothing was restored")
        result = asyncio.run(restore(config, file, worker_running=running))
    except OpRefused as exc:
        raise fail(str(exc)) from None
    typer.echo(json.dumps(result, indent=2))
    raise typer.Exit(0 if result.get("ok") else 1)
