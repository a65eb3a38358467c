"""`komas bench` with tiny sizes: every workload runs end to end and leaves exactly its events behind.

Never about timings (a loaded CI machine would make them flaky): only that the figures are there,
positive, and that each scratch database holds what was published, applied once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from events import SignalClosed, SignalCreated
from worker.bench import workloads
from worker.bench.observe import percentiles_ms
from worker.bench.workloads import Seeded
from worker.cli import app
from worker.config import get_config

SEEDED = Seeded(bot_ids=tuple(range(1, workloads.BOTS + 1)), preset_ids=tuple(range(1, workloads.PRESETS + 1)))
EVENTS, NAIVE_EVENTS, NOOP_JOBS = 60, 10, 20
RUN_KEYS = {"events", "jobs", "events_per_s", "elapsed_s", "publish_s", "latency_ms", "worker_rss_mb", "database"}


@pytest.fixture
def bench_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("KOMAS_REDIS_URL", redis_url)
    get_config.cache_clear()
    yield
    get_config.cache_clear()


def run_bench(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["bench", *args, "--json"])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def assert_applied_once(run: dict[str, Any], events: int) -> dict[str, int]:
    assert run.keys() >= RUN_KEYS
    assert run["events"] == events
    assert run["events_per_s"] > 0
    assert run["jobs"] >= 1
    assert run["worker_rss_mb"]["peak"] > 0
    database: dict[str, int] = run["database"]
    assert database["processed_events"] == events
    assert database["dead_letters"] == database["parked_events"] == 0
    return database


def assert_workload_effect(name: str, database: dict[str, int], events: int) -> None:
    if name == "bulk":
        assert database["signals"] + database["backtest_results"] == events
    elif name == "lifecycle":
        assert database["signals"] == database["closed_signals"] == database["bot_stats_signals"] == events // 2
    else:
        assert database["signals"] == events


@pytest.mark.usefixtures("bench_env")
def test_every_workload_applies_exactly_its_events() -> None:
    report = run_bench(
        "all",
        "--events",
        str(EVENTS),
        "--naive-events",
        str(NAIVE_EVENTS),
        "--noop-jobs",
        str(NOOP_JOBS),
        "--rate",
        "300",
    )
    assert {"cpu", "cores", "python", "sqlite", "redis"} <= report["machine"].keys()
    assert [result["workload"] for result in report["workloads"]] == list(workloads.WORKLOADS)
    for result in report["workloads"]:
        name = result["workload"]
        assert_workload_effect(name, assert_applied_once(result["ours"], EVENTS), EVENTS)
        assert_workload_effect(name, assert_applied_once(result["naive"], NAIVE_EVENTS), NAIVE_EVENTS)
        assert result["naive"]["jobs"] == NAIVE_EVENTS  # one job per event
        assert set(result["ours"]["latency_ms"]) == {"p50", "p95", "p99", "max"}
        assert result["ratios"]["ours_vs_naive"] > 0
        assert result["targets"]
        assert all(isinstance(target["met"], bool) for target in result["targets"])
    fan_in = next(result for result in report["workloads"] if result["workload"] == "fan-in")
    assert fan_in["noop"]["jobs"] == NOOP_JOBS
    assert fan_in["noop"]["jobs_per_s"] > 0


@pytest.mark.usefixtures("bench_env")
def test_memory_workload_reports_rss_at_start_and_end() -> None:
    report = run_bench("memory", "--events", "1500")
    (result,) = report["workloads"]
    run = result["ours"]
    assert_applied_once(run, 1500)
    assert "naive" not in result
    assert run["latency_ms"] == {}  # not tracked for a million events
    rss = run["worker_rss_mb"]
    assert 0 < rss["ready"] <= rss["peak"]
    assert 0 < rss["end"] <= rss["peak"]


def test_workloads_are_deterministic_and_ordered() -> None:
    first = workloads.lifecycle(200, SEEDED, seed=7)
    again = workloads.lifecycle(200, SEEDED, seed=7)
    assert [event.event_id for event in first] == [event.event_id for event in again]
    assert len(first) == 200
    created_at: dict[str, int] = {}
    for index, event in enumerate(first):
        assert isinstance(event, SignalCreated | SignalClosed)
        uid = event.signal_uid
        if isinstance(event, SignalCreated):
            created_at[uid] = index
        else:
            assert created_at[uid] < index  # a close never precedes its create
    bulk = workloads.bulk(2500, SEEDED, seed=7, chunk=1000)
    assert [len(call) for call in bulk] == [1000, 1000, 500]
    assert {event.type for event in bulk[0]} == {"backtest.finished"}
    assert {event.type for event in bulk[1]} == {"signal.created"}
    streams = workloads.fan_in(1000, SEEDED, seed=7)
    assert len(streams) == workloads.FAN_IN_PRODUCERS
    assert sum(len(stream) for stream in streams) == 1000
    assert sum(len(chunk) for chunk in workloads.memory(2500, SEEDED, seed=7)) == 2500


def test_percentiles_use_the_nearest_rank() -> None:
    latencies = [n / 1000 for n in range(1, 101)]  # 1 ms .. 100 ms
    assert percentiles_ms(latencies) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert percentiles_ms([]) == {}


@pytest.mark.usefixtures("bench_env")
def test_ops_workload_backs_up_and_purges_under_load() -> None:
    rows, events = 20_000, 1_000
    report = run_bench("ops", "--rows", str(rows), "--events", str(events))
    assert {"cpu", "cores", "python", "sqlite", "redis"} <= report["machine"].keys()
    (result,) = report["workloads"]
    assert result["workload"] == "ops"
    backup, purge, database = result["backup"], result["purge"], result["database"]
    assert database["rows"] == rows
    assert database["bytes"] > 0
    for run in (backup["idle"], backup["under_load"]):
        assert run["ok"] is True
        assert run["check"] == "ok"
        assert run["seconds"] > 0
        assert run["bytes"] > 0
    assert backup["report"]["counts"]["processed_events"] >= rows + events  # the filled rows and the baseline's
    assert backup["baseline"]["events"] == events
    assert backup["baseline"]["events_per_s"] > 0
    during = backup["during"]
    assert during["events_published"] >= events
    assert 0 <= during["events_in_window"] <= during["events_published"]
    assert during["window_s"] > 0
    assert purge["ok"] is True
    assert purge["rows_deleted"] == purge["rows_purgeable"] == rows
    assert purge["seconds"] > 0
    assert purge["baseline"]["events"] == events  # fewer than the default 2,500
    assert set(purge["baseline"]["latency_ms"]) == {"p50", "p95", "p99", "max"}
    assert purge["during"]["events_published"] >= purge["during"]["events_in_window"]
    # Every published event applied once; of the filled ones only their effects remain (their ids were purged).
    applied = events + during["events_published"] + events + purge["during"]["events_published"]
    counts = database["counts"]
    assert counts["processed_events"] == applied
    assert counts["signals"] + counts["backtest_results"] == rows + applied
    assert counts["dead_letters"] == counts["parked_events"] == 0
    assert result["worker"]["jobs_failed"] == 0
    names = [target["target"] for target in result["targets"]]
    assert len(names) == 4
    assert all(isinstance(target["met"], bool) for target in result["targets"])
    verified = next(target for target in result["targets"] if target["target"].startswith("backup under load"))
    assert verified["met"] is True
    deleted = next(target for target in result["targets"] if target["target"].startswith("purge deleted"))
    assert deleted["met"] is True


def test_ops_is_not_part_of_all() -> None:
    assert "ops" not in workloads.WORKLOADS
    assert "ops" in workloads.ALL_WORKLOADS
