"""`komas dlq`: dead letters."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import typer

from events.wire import dumps
from worker.cli._common import ask_worker, fail, with_database
from worker.config import get_config

dlq_app = typer.Typer(
    help="Dead letters: events that could not be applied, with payload and reason.", no_args_is_help=True
)


@dlq_app.command("list")
def dlq_list(
    include_replayed: bool = typer.Option(False, "--all", help="Also show dead letters already replayed."),
    limit: int = typer.Option(50, min=1, help="Show at most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    """List dead letters, newest first, with the size of each payload (of which at most 64 KiB are kept).

    Example: [bold]komas dlq list --limit 20[/bold]
    """
    from rich.console import Console
    from rich.table import Table

    from worker.store.managers import DeadLetterManager

    letters = with_database(lambda: DeadLetterManager.list_all(include_replayed=include_replayed, limit=limit))
    if as_json:
        for letter in letters:
            typer.echo(dumps(letter.to_dict()).decode())
        return
    table = Table(title=f"{len(letters)} dead letter(s)")
    for column in ("id", "event", "type", "payload", "attempts", "last seen", "replayed", "reason"):
        table.add_column(column)
    for letter in letters:
        table.add_row(
            str(letter.id),
            letter.event_id or "-",
            letter.event_type or "-",
            f"{letter.payload_size:,} B" + (" (cut)" if letter.payload_truncated else ""),
            str(letter.attempts),
            letter.last_seen_at.isoformat(timespec="seconds"),
            letter.replayed_at.isoformat(timespec="seconds") if letter.replayed_at else "",
            letter.reason[:120],
        )
    Console().print(table)


#: `komas dlq replay` exit codes besides 0 (every event applied, or applied before) and 2 (usage).
REPLAY_FAILED = 1  # an event was dead-lettered again or refused, or an id names no dead letter
REPLAY_QUEUED = 3  # no worker answered in time: the replay is queued and runs when a worker does

#: How a replayed event's outcome is told, and whether it counts as failed again.
_SAYS: dict[str, tuple[str, bool]] = {
    "applied": ("applied", False),
    "duplicate": ("duplicate (applied before)", False),
    "parked": ("parked: waits for its dependency (dead-lettered again if it never comes)", False),
    "rejected": ("refused again", True),
    "dead_lettered": ("dead-lettered again", True),
    "pending": ("queued: not settled yet (the worker re-enqueued it)", False),
}


@dataclass
class LetterOutcome:
    """What became of one replayed dead letter: a line per event it held, and whether any failed again."""

    letter_id: int
    lines: list[str] = field(default_factory=list)
    failed: bool = False
    queued: bool = False


async def replay_and_wait(letter_ids: list[int] | None, timeout: float) -> tuple[dict[str, Any], list[LetterOutcome]]:
    """Have the worker replay dead letters, then wait (in all at most `timeout` s) for each replayed event.

    Raises `WorkerDidNotAnswer` when the worker does not even take the replay in time.
    """
    from worker.runtime.client import arq_pool, job_result

    config = get_config()
    deadline = time.monotonic() + timeout
    async with arq_pool(config) as pool:
        job = await pool.enqueue_job("dlq_replay", letter_ids, _queue_name=config.queue, _expires=config.job_ttl_s)
        assert job is not None  # a fresh random job id never collides
        result: dict[str, Any] = await job_result(pool, config.queue, job.job_id, timeout)
        outcomes: list[LetterOutcome] = []
        for replayed in result["replayed"]:
            letter = LetterOutcome(replayed["id"])
            outcomes.append(letter)
            for job in replayed["jobs"]:
                await _report_job(pool, config.queue, job, letter, deadline, timeout)
    return result, outcomes


async def _report_job(
    pool: Any, queue: str, job: dict[str, Any], letter: LetterOutcome, deadline: float, timeout: float
) -> None:
    """Wait for one replay job and note what became of each of its events."""
    from worker.apply.outcomes import event_outcome
    from worker.runtime.client import ResultGone, WorkerDidNotAnswer, job_result

    try:
        answer = await job_result(pool, queue, job["job_id"], deadline - time.monotonic())
    except WorkerDidNotAnswer:
        letter.queued = True
        letter.lines.append(f"queued as job {job['job_id']}: no answer within {timeout:g}s")
        return
    except ResultGone as exc:
        letter.queued = True
        letter.lines.append(str(exc))
        return
    for event_id in job["event_ids"]:
        found = event_outcome(answer, event_id)
        status = found.status if found is not None else "pending"
        said, failed = _SAYS[status]
        reason = f": {found.reason}" if found is not None and found.reason else ""
        letter.lines.append(f"event {event_id}: {said}{reason}")
        letter.failed |= failed
        letter.queued |= status == "pending"


@dlq_app.command("replay")
def dlq_replay(
    letter_ids: list[int] = typer.Argument(None, help="Ids of the dead letters to replay."),
    replay_all: bool = typer.Option(False, "--all", help="Replay every dead letter not replayed yet."),
    timeout: float = typer.Option(30.0, help="Seconds to wait for the outcome of every replayed event."),
) -> None:
    """Publish dead letters again and wait for what becomes of each event.

    Each one is reported as applied, duplicate (applied before), parked, or dead-lettered again
    with the reason. Exit code 0 when none failed again, 1 when one did (or an id names no dead
    letter), 3 when no worker answered within --timeout: the replay is then queued and runs when
    a worker does.

    Example: [bold]komas dlq replay 12 13[/bold] or [bold]komas dlq replay --all[/bold]
    """
    from worker.runtime.client import WorkerDidNotAnswer

    if bool(letter_ids) == replay_all:
        raise fail("give dead-letter ids or --all (not both)", 2)
    try:
        result, outcomes = asyncio.run(replay_and_wait(None if replay_all else list(letter_ids), timeout))
    except WorkerDidNotAnswer as exc:
        raise fail(f"replay queued, not done: {exc}", REPLAY_QUEUED) from None
    except (OSError, ConnectionError) as exc:
        raise fail(f"cannot reach Redis at {get_config().redis_url}: {exc}") from None
    for letter in outcomes:
        for line in letter.lines:
            typer.echo(f"dead letter {letter.letter_id}: {line}")
    for skipped in result["skipped"]:
        typer.echo(f"dead letter {skipped['id']}: skipped: {skipped['reason']}")
    failed = [letter.letter_id for letter in outcomes if letter.failed]
    queued = [letter.letter_id for letter in outcomes if letter.queued]
    typer.echo(f"replayed {len(outcomes)}: {len(failed)} failed again, {len(queued)} not settled yet")
    if result["missing"]:
        typer.echo(f"no such dead letter: {result['missing']}", err=True)
    if failed or result["missing"]:
        raise typer.Exit(REPLAY_FAILED)
    if queued:
        raise typer.Exit(REPLAY_QUEUED)


@dlq_app.command("drop")
def dlq_drop(
    letter_id: int = typer.Argument(..., help="Id of the dead letter to delete."),
    timeout: float = typer.Option(30.0, help="Seconds to wait for the worker's answer."),
) -> None:
    """Delete a dead letter for good.

    Example: [bold]komas dlq drop 12[/bold]
    """
    result = ask_worker("dlq_drop", letter_id, timeout=timeout)
    if not result["dropped"]:
        raise fail(f"no dead letter {letter_id}")
    typer.echo(f"dropped dead letter {letter_id}")
