"""Ajv in strict mode (what JavaScript producers use) compiles the schema unchanged and agrees on examples.

Needs Node.js and npm (it installs `ajv` once into a directory of the system's temp dir); skips
with the reason when they or the registry are not there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from events.schema import catalogue_schema
from tests.events.test_catalogue import EXAMPLES

CHECK = """
const Ajv2020 = require("ajv/dist/2020");
const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const validate = new Ajv2020({strict: true}).compile(input.schema);
console.log(JSON.stringify(input.instances.map((instance) => validate(instance))));
"""


@pytest.fixture(scope="module")
def ajv_dir() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are not installed: Ajv cannot be run")
    directory = Path(tempfile.gettempdir()) / "komas-ajv-8"
    if not (directory / "node_modules" / "ajv").exists():
        directory.mkdir(exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--silent", "--prefix", str(directory), "ajv@8"], capture_output=True, timeout=180
        )
        if done.returncode != 0:
            pytest.skip(f"npm could not install ajv: {done.stderr.decode(errors='replace')[-300:]}")
    return directory


def test_ajv_strict_compiles_the_schema_and_agrees(ajv_dir: Path) -> None:
    valid = [payload for payload, _ in EXAMPLES.values()]
    no_id = {key: value for key, value in valid[0].items() if key != "event_id"}
    string_number = {**valid[0], "entry_price": "123.5"}
    epoch = {**valid[3], "occurred_at": 1_700_000_000}
    instances = [*valid, no_id, string_number, epoch]
    script = ajv_dir / "check.js"
    script.write_text(CHECK)
    done = subprocess.run(
        ["node", str(script)],
        input=json.dumps({"schema": catalogue_schema(), "instances": instances}).encode(),
        capture_output=True,
        cwd=ajv_dir,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")  # strict mode throws on what it refuses
    assert json.loads(done.stdout) == [True] * len(valid) + [False, False, False]
