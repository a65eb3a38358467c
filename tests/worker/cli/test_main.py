"""`worker.cli.main`, the console entry point: a bad `KOMAS_*` value is one line naming it, exit code 2."""

from __future__ import annotations

import pytest

from tests.worker.cli.conftest import Cli
from worker.cli import main
from worker.config import get_config


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KOMAS_MAX_JOBS", "zero"),
        ("KOMAS_LOCK_TTL_S", "1"),
        ("KOMAS_REDIS_URL", "http://127.0.0.1:6379"),
        ("KOMAS_DATABASE_URL", "mysql://localhost/komas"),
        ("KOMAS_LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_variable_stops_with_exit_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    monkeypatch.setattr("sys.argv", ["komas", "status"])
    get_config.cache_clear()
    try:
        with pytest.raises(SystemExit) as stopped:
            main()
    finally:
        get_config.cache_clear()
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("komas: invalid configuration: ")
    assert variable in err
    assert value in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_good_variables_reach_the_command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("KOMAS_MAX_JOBS", "3")
    monkeypatch.setattr("sys.argv", ["komas", "events", "schema"])
    get_config.cache_clear()
    try:
        with pytest.raises(SystemExit) as stopped:
            main()
        assert get_config().max_jobs == 3
    finally:
        get_config.cache_clear()
    assert stopped.value.code == 0
    assert '"title": "Komas event"' in capsys.readouterr().out


def test_version_and_short_help(cli: Cli) -> None:
    from importlib.metadata import version

    shown = cli("--version")
    assert shown.exit_code == 0
    assert shown.stdout.strip() == f"komas {version('komas')}"
    assert cli("-V").stdout == shown.stdout
    short, long = cli("-h"), cli("--help")
    assert short.exit_code == long.exit_code == 0
    assert short.stdout == long.stdout
    assert "ops" in short.stdout
    assert cli("ops", "-h").exit_code == 0
