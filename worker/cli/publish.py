"""`komas publish`: put events on the queue from the command line or a JSON-lines file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from events import EventValidationError, PublishError, parse_event
from events.catalogue import BaseEvent
from events.wire import Limits, encode_event
from worker.cli._common import fail
from worker.config import get_config


@dataclass(frozen=True)
class _Line:
    """A validated event and where it came from, so a failure can say which lines went out."""

    number: int
    event: BaseEvent
    had_id: bool


def _limits() -> Limits:
    config = get_config()
    return Limits(max_event_bytes=config.max_event_bytes, max_batch=config.max_batch, job_ttl_s=config.job_ttl_s)


def _validate(payload: Any, limits: Limits) -> BaseEvent:
    """Everything the publisher would refuse, refused before anything is sent (size included)."""
    event = parse_event(payload, wire=False)  # a line without event_id gets one here (printed)
    encode_event(event, limits)
    return event


def _read_lines(path: Path, limits: Limits) -> list[_Line]:
    """Validate every line first, so a bad line 9,000 does not leave 8,999 published."""
    lines: list[_Line] = []
    problems: list[str] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                problems.append(f"line {number}: not UTF-8 (byte {exc.start + 1})")
                continue
            if not text.strip():
                continue
            try:
                payload = json.loads(text.rstrip("\r\n"))  # so a column in an error is on this line
                lines.append(
                    _Line(number, _validate(payload, limits), isinstance(payload, dict) and "event_id" in payload)
                )
            except json.JSONDecodeError as exc:
                problems.append(f"line {number}: not JSON ({exc.msg}, column {exc.colno})")
            except EventValidationError as exc:
                problems.append(f"line {number}: {exc}")
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise fail(f"{path}: {len(problems)} bad line(s), nothing published:\n  {shown}{more}", 2)
    return lines


def _from_data(event_type: str, data: str | None, limits: Limits) -> BaseEvent:
    try:
        fields: Any = json.loads(data or "{}")
    except json.JSONDecodeError as exc:
        raise fail(f"--data is not JSON: {exc.msg} (column {exc.colno})", 2) from None
    if not isinstance(fields, dict):
        raise fail("--data must be a JSON object", 2)
    if fields.get("type", event_type) != event_type:
        raise fail(f"--data has type {fields['type']!r} but TYPE is {event_type!r}", 2)
    payload = {**fields, "type": event_type}
    payload.setdefault("source", "cli")
    try:
        return _validate(payload, limits)
    except EventValidationError as exc:
        raise fail(str(exc), 2) from None


def publish(
    event_type: str = typer.Argument(None, metavar="TYPE", help="Event type, e.g. signal.created (with --data)."),
    data: str = typer.Option(None, "--data", "-d", help="The event's fields as a JSON object."),
    file: Path = typer.Option(
        None, "--file", "-f", exists=True, dir_okay=False, help="A file of JSON events, one per line."
    ),
    batch: int = typer.Option(500, min=1, help="Events per job when publishing a file."),
) -> None:
    """Publish one event, or every event of a JSON-lines file (with a progress bar).

    Every event is validated before anything is sent: a bad line names its number and nothing goes out.
    Give each line an event_id so the file can safely be published again.

    Examples: [bold]komas publish bot.toggled --data '{"bot_id": 1, "active": true}'[/bold]
    and [bold]komas publish -f data/samples/trading.jsonl[/bold]
    """
    from events.publisher import SyncPublisher

    if (file is None) == (event_type is None) or (file is not None and data is not None):
        raise fail("give either TYPE with --data, or --file", 2)
    limits = _limits()
    lines = _read_lines(file, limits) if file is not None else [_Line(0, _from_data(event_type, data, limits), True)]
    config = get_config()
    with SyncPublisher.connect(config.redis_url, queue=config.queue, limits=limits) as publisher:
        sent, error = _publish_with_progress(publisher, lines, batch, show=file is not None)
    if error is not None and file is not None:
        raise fail(_partial_report(file, lines, sent, error))
    if error is not None:
        # The publisher's "same event_id is safe" needs the id: a new command line would make a new one.
        raise fail(f'{error}\n  To retry, add "event_id": "{lines[0].event.event_id}" to --data so it applies once.')
    if file is None:
        typer.echo(f"published {lines[0].event.type} {lines[0].event.event_id}")
    else:
        typer.echo(f"published {len(lines)} events to {config.queue!r}")


def _publish_with_progress(publisher: Any, lines: list[_Line], batch: int, *, show: bool) -> tuple[int, str | None]:
    """Publish in batches of `batch`; stop at the first refused batch: (events acknowledged, the error or None)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("publishing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not show, transient=True) as progress:
        task = progress.add_task("publish", total=len(lines))
        for start in range(0, len(lines), batch):
            chunk = lines[start : start + batch]
            try:
                publisher.publish_many([line.event for line in chunk])
            except (PublishError, EventValidationError) as exc:
                return start, str(exc)
            progress.advance(task, len(chunk))
    return len(lines), None


def _partial_report(file: Path, lines: list[_Line], sent: int, error: str) -> str:
    """What went out, what did not, and whether publishing the file again is safe."""
    done = f" (lines {lines[0].number}-{lines[sent - 1].number})" if sent else ""
    report = (
        f"{file}: published {sent} of {len(lines)} events{done}; not published from line {lines[sent].number} on: "
        f"{error}"
    )
    without_id = [line.number for line in lines[:sent] if not line.had_id]
    if without_id:
        return report + (
            f"\n  {len(without_id)} published line(s) without event_id (first: line {without_id[0]}) got a new id: "
            f"publishing the whole file again would apply them twice; publish from line {lines[sent].number} on only."
        )
    return report + "\n  Publishing the file again is safe: each event_id is applied once."
