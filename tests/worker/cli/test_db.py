"""`komas db upgrade` and `komas db current` on a real SQLite file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.worker.cli.conftest import Cli
from worker.store.migrate import head_revision
from worker.store.models import Base

HEAD = head_revision()


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def test_upgrade_creates_the_schema_on_a_fresh_file(cli: Cli) -> None:
    assert HEAD is not None
    assert not cli.database_path.exists()
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"database at revision {HEAD}"
    assert set(Base.metadata.tables) | {"alembic_version"} <= tables(cli.database_path)


def test_upgrade_twice_changes_nothing(cli: Cli) -> None:
    assert cli("db", "upgrade").exit_code == 0
    before = tables(cli.database_path)
    again = cli("db", "upgrade")
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == f"database at revision {HEAD}"
    assert tables(cli.database_path) == before


def test_current_before_and_after_upgrade(cli: Cli) -> None:
    fresh = cli("db", "current")
    assert fresh.exit_code == 0, fresh.output
    assert fresh.stdout.split() == ["current:", "none", "latest:", str(HEAD)]
    assert not cli.database_path.exists()  # looking does not create an empty database file
    assert cli("db", "upgrade").exit_code == 0
    upgraded = cli("db", "current")
    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.stdout.split() == ["current:", str(HEAD), "latest:", str(HEAD)]


def test_upgrade_to_an_unknown_revision_fails_cleanly(cli: Cli) -> None:
    result = cli("db", "upgrade", "no-such-revision")
    assert result.exit_code != 0
    assert "no-such-revision" in result.stderr
    assert "Traceback" not in result.output
