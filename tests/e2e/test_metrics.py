"""The worker's Prometheus metrics count what a test published, and pass `promtool check metrics`."""

from __future__ import annotations

import shutil
import socket
import subprocess
import urllib.request
from typing import Any

import pytest
from prometheus_client import generate_latest

from events.wire import dumps, encode_job
from tests.e2e.conftest import E2E
from tests.e2e.test_worker_e2e import created, make_bot
from worker.runtime import metrics


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def counts() -> dict[tuple[str, str], float]:
    return {
        (event_type, outcome): sample("komas_events_total", type=event_type, outcome=outcome)
        for event_type in ("signal.created", "other")
        for outcome in metrics.OUTCOMES
    }


async def test_events_are_counted_by_type_and_outcome_as_published(e2e: E2E) -> None:
    bot_id = await make_bot("metrics")
    good = [created(bot_id, f"m:{n}") for n in range(7)]
    invalid = {**created(bot_id, "m:bad").to_wire(), "entry_price": -1.0}
    dangling = created(bot_id + 1000, "m:orphan")
    strange = {"type": "made.up", "event_id": "0b6f4bd4-4bd5-4a5c-9a3e-4b4f2b1f7f4e"}
    before, jobs_before = counts(), sample("komas_batch_size_events_count")
    raw: list[Any] = [event.to_wire() for event in good] + [invalid, dangling.to_wire(), strange]
    await e2e.enqueue_raw(encode_job([dumps(event) for event in raw]).body)
    await e2e.enqueue_raw(encode_job([dumps(event.to_wire()) for event in good[:3]]).body)  # published again
    await e2e.run_worker()
    after = counts()
    delta = {key: after[key] - before[key] for key in after if after[key] != before[key]}
    assert delta == {
        ("signal.created", "applied"): 7,
        ("signal.created", "duplicate"): 3,
        ("signal.created", "dead_lettered"): 1,
        ("signal.created", "parked"): 1,
        ("other", "dead_lettered"): 1,  # a type the catalogue does not know is never a label of its own
    }
    assert sample("komas_batch_size_events_count") - jobs_before == 2
    assert sample("komas_enqueue_to_commit_seconds_count") >= 2


def test_promtool_accepts_the_exposition() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian's prometheus package; .ci/run installs it)")
    metrics.EVENTS.labels("signal.created", "applied").inc(0)
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=generate_latest(metrics.REGISTRY), capture_output=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_worker_serves_its_metrics_over_http() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert metrics.serve(port) is True
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    assert "komas_events_total" in body
    assert "komas_queue_depth_jobs" in body
    assert metrics.serve(port) is False  # taken: a second worker on this host goes on without
