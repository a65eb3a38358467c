"""`komas publish`: put events on the queue from the command line or a JSON-lines file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from events import EventValidationError, PublishError, parse_event
from events.catalogue import BaseEvent
from worker.cli._common import fail
from worker.config import get_config


def _read_lines(path: Path) -> list[BaseEvent]:
    """Validate every line first, so a bad line 9,000 does not leave 8,999 published."""
    events: list[BaseEvent] = []
    problems: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                events.append(parse_event(json.loads(line)))
            except json.JSONDecodeError as exc:
                problems.append(f"line {number}: not JSON ({exc.msg})")
            except EventValidationError as exc:
                problems.append(f"line {number}: {exc}")
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise fail(f"{path}: {len(problems)} bad line(s), nothing published:\n  {shown}{more}", 2)
    return events


def publish(
    event_type: str = typer.Argument(None, metavar="TYPE", help="Event type, e.g. signal.created (with --data)."),
    data: str = typer.Option(None, "--data", "-d", help="The event's fields as a JSON object."),
    file: Path = typer.Option(
        None, "--file", "-f", exists=True, dir_okay=False, help="A file of JSON events, one per line."
    ),
    batch: int = typer.Option(500, min=1, help="Events per job when publishing a file."),
) -> None:
    """Publish one event, or every event of a JSON-lines file (with a progress bar).

    Examples: [bold]komas publish bot.toggled --data '{"bot_id": 1, "active": true}'[/bold]
    and [bold]komas publish -f data/samples/trading.jsonl[/bold]
    """
    from events.publisher import SyncPublisher

    if (file is None) == (event_type is None):
        raise fail("give either TYPE with --data, or --file", 2)
    if file is not None:
        events = _read_lines(file)
    else:
        try:
            fields: Any = json.loads(data or "{}")
        except json.JSONDecodeError as exc:
            raise fail(f"--data is not JSON: {exc.msg}", 2) from None
        if not isinstance(fields, dict):
            raise fail("--data must be a JSON object", 2)
        try:
            events = [parse_event({**fields, "type": event_type, "source": fields.get("source", "cli")})]
        except EventValidationError as exc:
            raise fail(str(exc), 2) from None
    config = get_config()
    try:
        with SyncPublisher.connect(config.redis_url, queue=config.queue) as publisher:
            _publish_with_progress(publisher, events, batch, show=file is not None)
    except (PublishError, EventValidationError) as exc:
        raise fail(str(exc)) from None
    for event in events if len(events) == 1 else []:
        typer.echo(f"published {event.type} {event.event_id}")
    if len(events) != 1:
        typer.echo(f"published {len(events)} events to {config.queue!r}")


def _publish_with_progress(publisher: Any, events: list[BaseEvent], batch: int, *, show: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not show, transient=True) as progress:
        task = progress.add_task("publish", total=len(events))
        for start in range(0, len(events), batch):
            chunk = events[start : start + batch]
            publisher.publish_many(chunk)
            progress.advance(task, len(chunk))
