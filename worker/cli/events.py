"""`komas events`: the contract, for producers in other languages."""

from __future__ import annotations

import json

import typer

events_app = typer.Typer(help="The event contract: JSON Schema of every event type.", no_args_is_help=True)


@events_app.command("schema")
def schema() -> None:
    """Print the JSON Schema (standard draft 2020-12) of the whole event catalogue: one union over `type`.

    It is the contract: what it accepts is exactly what the worker and POST /api/events accept (an
    `event_id` on every event, strict types, timestamps as ISO 8601 text with a zone in 2000-2099,
    integers of 64 bits, no lone surrogates, free-form objects nested at most 32 deep, at most
    KOMAS_MAX_EVENT_BYTES per event). Standard validators (Python jsonschema, Ajv in strict mode)
    compile it unchanged.

    Example: [bold]komas events schema > komas-events.schema.json[/bold]
    """
    from events.schema import catalogue_schema

    typer.echo(json.dumps(catalogue_schema(), indent=2, sort_keys=True))
