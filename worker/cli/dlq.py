"""`komas dlq`: dead letters."""

from __future__ import annotations

import typer

from events.wire import dumps
from worker.cli._common import ask_worker, fail, with_database

dlq_app = typer.Typer(
    help="Dead letters: events that could not be applied, with payload and reason.", no_args_is_help=True
)


@dlq_app.command("list")
def dlq_list(
    include_replayed: bool = typer.Option(False, "--all", help="Also show dead letters already replayed."),
    limit: int = typer.Option(50, min=1, help="Show at most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines instead of a table."),
) -> None:
    """List dead letters, newest first.

    Example: [bold]komas dlq list --limit 20[/bold]
    """
    from rich.console import Console
    from rich.table import Table

    from worker.managers import DeadLetterManager

    letters = with_database(lambda: DeadLetterManager.list_all(include_replayed=include_replayed, limit=limit))
    if as_json:
        for letter in letters:
            typer.echo(dumps(letter.to_dict()).decode())
        return
    table = Table(title=f"{len(letters)} dead letter(s)")
    for column in ("id", "event", "type", "attempts", "last seen", "replayed", "reason"):
        table.add_column(column)
    for letter in letters:
        table.add_row(
            str(letter.id),
            letter.event_id or "-",
            letter.event_type or "-",
            str(letter.attempts),
            letter.last_seen_at.isoformat(timespec="seconds"),
            letter.replayed_at.isoformat(timespec="seconds") if letter.replayed_at else "",
            letter.reason[:120],
        )
    Console().print(table)


@dlq_app.command("replay")
def dlq_replay(
    letter_ids: list[int] = typer.Argument(None, help="Ids of the dead letters to replay."),
    replay_all: bool = typer.Option(False, "--all", help="Replay every dead letter not replayed yet."),
    timeout: float = typer.Option(30.0, help="Seconds to wait for the worker's answer."),
) -> None:
    """Publish dead letters again; an event already applied stays a no-op.

    Example: [bold]komas dlq replay 12 13[/bold] or [bold]komas dlq replay --all[/bold]
    """
    if bool(letter_ids) == replay_all:
        raise fail("give dead-letter ids or --all (not both)", 2)
    result = ask_worker("dlq_replay", None if replay_all else list(letter_ids), timeout=timeout)
    typer.echo(f"replayed: {result['replayed']}")
    for skipped in result["skipped"]:
        typer.echo(f"skipped {skipped['id']}: {skipped['reason']}")
    if result["missing"]:
        typer.echo(f"no such dead letter: {result['missing']}", err=True)
        raise typer.Exit(1)


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
