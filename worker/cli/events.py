"""`komas events`: the contract, for producers in other languages."""

from __future__ import annotations

import json

import typer
from pydantic import TypeAdapter

events_app = typer.Typer(help="The event contract: JSON Schema of every event type.", no_args_is_help=True)


@events_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the whole event catalogue (one union over `type`).

    Example: [bold]komas events schema > komas-events.schema.json[/bold]
    """
    from events.catalogue import Event

    document = TypeAdapter(Event).json_schema()
    for ref in document["discriminator"]["mapping"].values():
        # pydantic leaves `type` optional because each model has it as a default; on the wire it is the
        # tag the worker dispatches on, and without it a payload can match one branch and still be refused.
        definition = document["$defs"][ref.removeprefix("#/$defs/")]
        definition["required"] = ["type", *(name for name in definition.get("required", []) if name != "type")]
    document["title"] = "Komas event"
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    typer.echo(json.dumps(document, indent=2, sort_keys=True))
