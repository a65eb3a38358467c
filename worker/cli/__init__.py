"""The `komas` command line: run the system, publish, look at it, operate it.

Typer builds every command's `--help` from these docstrings and the type-checked options.
"""

from __future__ import annotations

import typer

from worker.cli.bench import bench
from worker.cli.db import db_app
from worker.cli.dlq import dlq_app
from worker.cli.events import events_app
from worker.cli.ops import ops_app
from worker.cli.publish import publish
from worker.cli.run import up, worker
from worker.cli.serve import api
from worker.cli.status import status
from worker.config import ConfigError, get_config

app = typer.Typer(
    name="komas",
    help="Komas persistence core: apply trading events from Redis to the database, and operate it.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,  # a traceback must never print secrets held in variables
)


def _version(asked: bool) -> None:
    if asked:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"komas {version('komas')}")
        except PackageNotFoundError:  # run from a tree that was never installed
            typer.echo("komas (not installed)")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Komas persistence core: apply trading events from Redis to the database, and operate it."""


app.command()(up)
app.command()(worker)
app.command()(api)
app.command()(publish)
app.command()(status)
app.add_typer(db_app, name="db")
app.add_typer(events_app, name="events")
app.add_typer(dlq_app, name="dlq")
app.add_typer(ops_app, name="ops")
app.command()(bench)


def main() -> None:
    """Console entry point: configuration errors end in one clear line and exit code 2."""
    try:
        get_config()
    except ConfigError as exc:
        typer.echo(f"komas: {exc}", err=True)
        raise SystemExit(2) from None
    app()
