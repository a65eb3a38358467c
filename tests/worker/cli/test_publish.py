"""`komas publish`: one event from `--data`, or a JSON-lines file; nothing half-sent, every refusal names its cause."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from events import PublishError
from events.publisher import SyncPublisher
from events.wire import JOB_KEY_PREFIX
from tests.services import free_port
from tests.worker.cli.conftest import Komas

SAMPLES = Path(__file__).resolve().parents[3] / "data" / "samples"
SAMPLE = SAMPLES / "trading.jsonl"


def queued_events(komas: Komas) -> list[dict[str, Any]]:
    """The events waiting on the test's queue, in queue order, read back from the arq job bodies."""
    events: list[dict[str, Any]] = []
    for job_id in komas.queued_job_ids():
        body = komas.client.get(JOB_KEY_PREFIX + job_id)
        assert isinstance(body, bytes)
        job = json.loads(body)
        assert job["f"] == "apply_events"
        events += job["a"][0]
    return events


def sample_lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]


# --- one event -----------------------------------------------------------------------------------


def test_one_event_from_data_is_queued_with_its_id(komas: Komas) -> None:
    result = komas("publish", "bot.toggled", "--data", '{"bot_id": 7, "active": true}')
    assert result.exit_code == 0, result.output
    words = result.stdout.split()
    assert words[:2] == ["published", "bot.toggled"]
    (event,) = queued_events(komas)
    assert event["event_id"] == words[2]
    assert (event["type"], event["bot_id"], event["active"], event["source"]) == ("bot.toggled", 7, True, "cli")


def test_a_given_source_and_event_id_are_kept(komas: Komas) -> None:
    event_id = "8d6f0d3e-4b1c-4c38-a8a0-2a3c4b5d6e7f"
    data = json.dumps({"bot_id": 1, "active": False, "source": "ops:alice", "event_id": event_id})
    assert komas("publish", "bot.toggled", "-d", data).exit_code == 0
    (event,) = queued_events(komas)
    assert (event["event_id"], event["source"]) == (event_id, "ops:alice")


def test_a_cache_event_says_who_sent_it_and_where_its_candles_come_from(komas: Komas) -> None:
    """cache.upsert's `data_source` is where the candles come from (default binance); `source` is the sender."""
    result = komas("publish", "cache.upsert", "--data", '{"symbol": "BTCUSDT", "timeframe": "1h"}')
    assert result.exit_code == 0, result.output
    (event,) = queued_events(komas)
    assert (event["source"], event["data_source"]) == ("cli", "binance")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["bot.toggled", "--data", "{bot_id: 1}"], "--data is not JSON"),
        (["bot.toggled", "--data", "[1, 2]"], "--data must be a JSON object"),
        (["bot.exploded", "--data", '{"bot_id": 1}'], "bot.exploded"),
        (["bot.toggled", "--data", '{"bot_id": "one", "active": true}'], "bot_id"),
        (["bot.toggled", "--data", '{"bot_id": 1}'], "active"),
        (["bot.toggled", "--data", '{"bot_id": 1, "active": true, "colour": "red"}'], "colour"),
        (
            [
                "signal.closed",
                "--data",
                '{"signal_uid": "s1", "exit_price": 1, "exit_reason": "tp", "pnl_percent": NaN}',
            ],
            "pnl_percent",
        ),
        (["bot.toggled", "--data", '{"type": "bot.delete", "bot_id": 1}'], "type"),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "unknown-type",
        "wrong-type",
        "missing-field",
        "extra-field",
        "nan",
        "type-clash",
    ],
)
def test_bad_input_exits_2_naming_the_problem_and_sends_nothing(komas: Komas, args: list[str], named: str) -> None:
    result = komas("publish", *args)
    assert result.exit_code == 2, result.output
    assert named in result.stderr
    assert result.stderr.startswith("komas: ")
    assert "Traceback" not in result.output
    assert komas.client.zcard(komas.queue) == 0


@pytest.mark.parametrize(
    "args",
    [[], ["bot.toggled", "--file", str(SAMPLE)], ["--file", str(SAMPLE), "--data", "{}"]],
    ids=["nothing", "type-and-file", "file-and-data"],
)
def test_type_with_data_or_a_file_not_both(komas: Komas, args: list[str]) -> None:
    result = komas("publish", *args)
    assert result.exit_code == 2
    assert "--file" in result.stderr
    assert komas.client.zcard(komas.queue) == 0


# --- a file --------------------------------------------------------------------------------------


def test_a_file_is_queued_in_batches_in_file_order(komas: Komas) -> None:
    result = komas("publish", "-f", str(SAMPLE), "--batch", "3")
    assert result.exit_code == 0, result.output
    lines = sample_lines()
    assert f"published {len(lines)} events" in result.stdout
    assert komas.client.zcard(komas.queue) == 2  # 3 + 1
    assert [event["event_id"] for event in queued_events(komas)] == [line["event_id"] for line in lines]


def test_a_bad_line_names_the_line_and_nothing_is_sent(komas: Komas, tmp_path: Path) -> None:
    lines = [json.dumps(line) for line in sample_lines()]
    lines.insert(1, "")  # blank lines are skipped but still counted
    lines.insert(2, '{"type": "bot.toggled", "bot_id": 1')  # line 3: cut short
    lines.append(json.dumps({"type": "bot.toggled", "bot_id": -1, "active": True}))  # line 7: bad field
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")

    result = komas("publish", "-f", str(path))

    assert result.exit_code == 2, result.output
    assert "2 bad line(s), nothing published" in result.stderr
    assert "line 3: not JSON (Expecting ',' delimiter, column 36)" in result.stderr
    assert "line 7: " in result.stderr
    assert "bot_id" in result.stderr.split("line 7: ")[1]
    assert komas.client.zcard(komas.queue) == 0


def test_a_file_that_is_not_utf8_is_refused_cleanly(komas: Komas, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(SAMPLE.read_bytes() + b'{"type": "bot.toggled", "source": "\xff\xfe"}\n')
    result = komas("publish", "-f", str(path))
    assert result.exit_code == 2, result.output
    assert "line 5" in result.stderr
    assert "UTF-8" in result.stderr
    assert "Traceback" not in result.output
    assert komas.client.zcard(komas.queue) == 0


def fail_on_call(monkeypatch: pytest.MonkeyPatch, failing_call: int) -> list[int]:
    """Make the publisher's `failing_call`-th batch fail as Redis would; returns the batch sizes seen."""
    real = SyncPublisher.publish_many
    calls: list[int] = []

    def publish_many(self: SyncPublisher, events: list[Any]) -> list[str]:
        calls.append(len(events))
        if len(calls) == failing_call:
            raise PublishError("Redis did not acknowledge (simulated)")
        return real(self, events)

    monkeypatch.setattr(SyncPublisher, "publish_many", publish_many)
    return calls


def test_a_failure_half_way_says_what_was_sent_and_where_to_resume(
    komas: Komas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis may fail between two batches: the ones before are queued, and the user is told which."""
    calls = fail_on_call(monkeypatch, 2)
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in [*sample_lines(), *sample_lines()[:1]]) + "\n")

    result = komas("publish", "-f", str(path), "--batch", "2")

    assert result.exit_code == 1, result.output
    assert calls == [2, 2]
    message = " ".join(result.stderr.split())
    assert "published 2 of 5 events (lines 1-2); not published from line 3 on" in message
    assert "simulated" in message
    assert "Publishing the file again is safe" in message  # every line carries its event_id
    assert [event["event_id"] for event in queued_events(komas)] == [line["event_id"] for line in sample_lines()[:2]]


def test_lines_without_event_id_are_warned_about_on_failure(
    komas: Komas, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines without `event_id` get a new id at each publish: publishing the file again would apply them twice."""
    fail_on_call(monkeypatch, 2)
    path = tmp_path / "events.jsonl"
    toggles = [{"type": "bot.toggled", "bot_id": 1, "active": n % 2 == 0} for n in range(3)]
    path.write_text("\n".join(json.dumps(toggle) for toggle in toggles) + "\n")

    result = komas("publish", "-f", str(path), "--batch", "2")

    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert "published 2 of 3 events" in message
    assert "2 published line(s) without event_id" in message
    assert "publish from line 3 on only" in message
    assert len(queued_events(komas)) == 2


def test_redis_not_answering_is_one_clear_line(komas: Komas, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOMAS_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    result = komas("publish", "bot.toggled", "--data", '{"bot_id": 1, "active": true}')
    assert result.exit_code == 1
    assert "did not acknowledge 1 event(s)" in result.stderr
    assert "Traceback" not in result.output
    retry_hint = result.stderr.split('add "event_id": "')[1].split('"')[0]
    assert str(uuid.UUID(retry_hint)) == retry_hint  # the id to publish it again with, so it applies once
