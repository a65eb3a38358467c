"""Every command's `--help` works and shows an example; new commands are covered without editing this file."""

from __future__ import annotations

import pytest
import typer
from typer.core import TyperCommand, TyperGroup

from tests.worker.cli.conftest import Cli
from worker.cli import app

Command = TyperGroup | TyperCommand


def command_paths(command: Command, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Command]]:
    """Every group and command under `command`, as (argv path, command), walking the tree typer builds."""
    found: list[tuple[tuple[str, ...], Command]] = [(path, command)]
    if isinstance(command, TyperGroup):
        for name, sub in sorted(command.commands.items()):
            assert isinstance(sub, TyperGroup | TyperCommand), f"{name}: not built by typer"
            found += command_paths(sub, (*path, name))
    return found


ALL = command_paths(typer.main.get_group(app))
LEAVES = [(path, command) for path, command in ALL if isinstance(command, TyperCommand)]


def test_the_walk_finds_the_commands_the_readme_promises() -> None:
    names = {" ".join(path) for path, _ in ALL}
    expected = {"worker", "up", "publish", "status", "db", "db upgrade", "db current", "events schema", "dlq list"}
    assert expected <= names


@pytest.mark.parametrize(("path", "command"), ALL, ids=[" ".join(path) or "komas" for path, _ in ALL])
def test_help_exits_0_and_says_what_it_does(cli: Cli, path: tuple[str, ...], command: Command) -> None:
    result = cli(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    assert command.help, f"komas {' '.join(path)} has no help text"
    assert command.help.split(".")[0].split(":")[0].strip()[:30] in " ".join(result.output.split())


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[" ".join(path) for path, _ in LEAVES])
def test_every_command_shows_an_example(cli: Cli, path: tuple[str, ...], command: Command) -> None:
    result = cli(*path, "--help")
    assert result.exit_code == 0, result.output
    assert "Example" in result.output
    assert f"komas {path[0]}" in result.output  # the example is a komas command line
