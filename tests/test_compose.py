"""docker-compose.yml matches what the code reads: services, commands, volumes, environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url
from typer.main import get_command

from worker.cli import app
from worker.config import ENV_PREFIX, Config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def _komas_commands() -> set[str]:
    group = get_command(app)
    return set(group.commands)  # type: ignore[attr-defined]


def test_services_are_redis_worker_and_api(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"redis", "worker", "api"}


def test_redis_persists_with_append_only_file_on_a_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "healthcheck" in redis


def test_the_worker_is_the_single_writer(compose: dict[str, Any]) -> None:
    assert compose["services"]["worker"]["deploy"]["replicas"] == 1


def test_commands_are_real_komas_commands(compose: dict[str, Any]) -> None:
    commands = _komas_commands()
    for name in ("worker", "api"):
        command = compose["services"][name]["command"]
        assert command[0] == "komas"
        assert command[1] in commands, f"{name}: `komas {command[1]}` does not exist"


def test_environment_names_only_settings_the_code_reads(compose: dict[str, Any]) -> None:
    known = {ENV_PREFIX + field.upper() for field in Config.model_fields}
    for name in ("worker", "api"):
        environment = compose["services"][name]["environment"]
        assert set(environment) <= known, set(environment) - known
        Config(
            **{
                key.removeprefix(ENV_PREFIX).lower(): value
                for key, value in environment.items()
                if "${" not in str(value)
            }
        )  # every value is valid for the code


def test_the_database_lives_on_the_shared_data_volume(compose: dict[str, Any]) -> None:
    for name in ("worker", "api"):
        service = compose["services"][name]
        database = make_url(service["environment"]["KOMAS_DATABASE_URL"]).database
        assert database is not None
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}
        assert any(database.startswith(path + "/") and mounts[path] == "komas-data" for path in mounts)
    assert set(compose["volumes"]) >= {"komas-data", "redis-data"}


def test_the_api_needs_a_token_because_it_listens_beyond_loopback(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    assert "0.0.0.0" in api["command"]
    assert "KOMAS_API_TOKEN" in api["environment"]


def test_dockerfile_installs_both_packages() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY events" in dockerfile
    assert "COPY worker" in dockerfile
