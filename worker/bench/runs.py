"""The workloads as runs: how each one publishes, which baselines it is measured against, and its targets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from events import LingeringPublisher
from events.catalogue import BaseEvent
from worker.bench import workloads
from worker.bench.harness import (
    MEMORY_BACKLOG,
    PUBLISH_CHUNK,
    BenchOptions,
    Producer,
    Progress,
    Publish,
    measure,
    measure_noop,
)
from worker.bench.workloads import Seeded

#: Makes a progress callback for one (workload, variant) run, given its label and total.
ProgressFactory = Callable[[str, int], Progress]

DEFAULT_EVENTS = {
    "bulk": 100_000,
    "lifecycle": 20_000,
    "fan-in": 20_000,
    "latency": 2_500,
    "memory": 1_000_000,
    "ops": 100_000,  # bulk events of each measured phase; the database holds `Sizes.rows` before
}
DEFAULT_ROWS = 1_000_000
DEFAULT_NAIVE_EVENTS = 1_000
DEFAULT_NOOP_JOBS = 3_000
DESCRIPTIONS = {
    "bulk": "optimizer: backtest results and signal creates, publish_many of 1,000 events a call",
    "lifecycle": "50 bots: signal created then closed (bot stats), one stream, publish_many of 1,000",
    "fan-in": "200 concurrent producers, each publishing single signal creates (ours: LingeringPublisher)",
    "latency": "single signal creates published one by one at a fixed rate; publish → commit",
    "memory": "small events (bot toggles) through the worker; its RSS at start and end",
    "ops": "backup during bulk, purge during the latency workload, on a database of {rows:,} events",
}


@dataclass(frozen=True)
class Sizes:
    """How many events each variant of a workload gets."""

    events: int
    naive_events: int
    noop_jobs: int
    #: ops: the events the database holds before the worker starts.
    rows: int = DEFAULT_ROWS


def _many(events_of: Callable[[Seeded], list[BaseEvent]]) -> Callable[[Seeded], Publish]:
    """A plan publishing a stream sequentially, `PUBLISH_CHUNK` events per call."""

    def plan(seeded: Seeded) -> Publish:
        events = events_of(seeded)

        async def publish(producer: Producer, _committed: Callable[[], int]) -> None:
            for start in range(0, len(events), PUBLISH_CHUNK):
                await producer.many(events[start : start + PUBLISH_CHUNK])

        return publish

    return plan


def bulk_plan(n: int, seed: int) -> Callable[[Seeded], Publish]:
    def plan(seeded: Seeded) -> Publish:
        calls = workloads.bulk(n, seeded, seed=seed, chunk=PUBLISH_CHUNK)

        async def publish(producer: Producer, _committed: Callable[[], int]) -> None:
            for call in calls:
                await producer.many(call)

        return publish

    return plan


def fan_in_plan(n: int, seed: int, linger_ms: float) -> Callable[[Seeded], Publish]:
    def plan(seeded: Seeded) -> Publish:
        streams = workloads.fan_in(n, seeded, seed=seed)

        async def publish(producer: Producer, _committed: Callable[[], int]) -> None:
            batcher = LingeringPublisher(producer.publisher, linger_ms=linger_ms) if linger_ms > 0 else None

            async def one_producer(stream: list[BaseEvent]) -> None:
                for event in stream:
                    await producer.single(event, batcher if producer.variant == "ours" else None)

            await asyncio.gather(*(one_producer(stream) for stream in streams))

        return publish

    return plan


def latency_plan(n: int, seed: int, rate: float) -> Callable[[Seeded], Publish]:
    def plan(seeded: Seeded) -> Publish:
        events = workloads.paced(n, seeded, seed=seed)

        async def publish(producer: Producer, _committed: Callable[[], int]) -> None:
            start = time.perf_counter()
            sends: list[asyncio.Task[None]] = []
            for index, event in enumerate(events):
                delay = start + index / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                # Open loop: a slow acknowledgement does not lower the offered rate.
                sends.append(asyncio.create_task(producer.single(event)))
            await asyncio.gather(*sends)

        return publish

    return plan


def memory_plan(n: int, seed: int) -> Callable[[Seeded], Publish]:
    def plan(seeded: Seeded) -> Publish:
        async def publish(producer: Producer, committed: Callable[[], int]) -> None:
            sent = 0
            for chunk in workloads.memory(n, seeded, seed=seed, chunk=PUBLISH_CHUNK):
                # Redis is not under test: keep the backlog bounded (the count comes from the watcher thread).
                while sent - committed() > MEMORY_BACKLOG:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                await producer.many(chunk)
                sent += len(chunk)

        return publish

    return plan


def plan_for(name: str, n: int, options: BenchOptions) -> Callable[[Seeded], Publish]:
    seed = options.seed
    if name == "bulk":
        return bulk_plan(n, seed)
    if name == "lifecycle":
        return _many(lambda seeded: workloads.lifecycle(n, seeded, seed=seed))
    if name == "fan-in":
        return fan_in_plan(n, seed, options.linger_ms)
    if name == "latency":
        return latency_plan(n, seed, options.rate)
    if name == "memory":
        return memory_plan(n, seed)
    raise ValueError(f"unknown workload {name!r}")


def _even(name: str, n: int) -> int:
    """Lifecycle events come in pairs (create, close)."""
    return n - n % 2 if name == "lifecycle" else n


async def run_workload(name: str, sizes: Sizes, options: BenchOptions, progress: ProgressFactory) -> dict[str, Any]:
    """Ours, then the naive design (and arq's no-op rate for fan-in), then the ratios and targets.

    `ops` is a run of its own (`worker.bench.under_load`): its baselines are the same worker without the operation.
    """
    if name == "ops":
        from worker.bench.under_load import run_ops

        description = DESCRIPTIONS[name].format(rows=sizes.rows)
        return await run_ops(sizes.rows, sizes.events, options, progress, description=description)
    result: dict[str, Any] = {"workload": name, "description": DESCRIPTIONS[name]}
    events = _even(name, sizes.events)
    result["ours"] = await measure(
        "ours",
        events,
        plan_for(name, events, options),
        options,
        progress(f"{name} · ours", events),
        track_ids=name != "memory",
    )
    if name != "memory" and sizes.naive_events > 0:
        naive = _even(name, sizes.naive_events)
        result["naive"] = await measure(
            "naive", naive, plan_for(name, naive, options), options, progress(f"{name} · naive", naive)
        )
        result["naive"]["max_jobs"] = options.naive_max_jobs
    if name == "fan-in" and sizes.noop_jobs > 0:
        result["noop"] = await measure_noop(sizes.noop_jobs, options, progress(f"{name} · arq no-op", sizes.noop_jobs))
    result["ratios"] = ratios(result)
    result["targets"] = targets(name, result, options)
    return result


def _rate(run: dict[str, Any] | None, key: str = "events_per_s") -> float | None:
    value = (run or {}).get(key)
    return float(value) if value else None


def ratios(result: dict[str, Any]) -> dict[str, float | None]:
    ours, naive, noop = _rate(result.get("ours")), _rate(result.get("naive")), _rate(result.get("noop"), "jobs_per_s")
    found: dict[str, float | None] = {}
    if "naive" in result:
        found["ours_vs_naive"] = round(ours / naive, 1) if ours and naive else None
    if "noop" in result:
        found["ours_vs_arq_noop"] = round(ours / noop, 2) if ours and noop else None
    return found


def _target(name: str, value: float | None, goal: float, *, below: bool = False, unit: str = "") -> dict[str, Any]:
    met = value is not None and (value < goal if below else value >= goal)
    return {
        "target": name,
        "value": value,
        "goal": goal,
        "comparison": "<" if below else ">=",
        "unit": unit,
        "met": met,
    }


def targets(name: str, result: dict[str, Any], options: BenchOptions) -> list[dict[str, Any]]:
    """The issue's targets for this workload, each with the measured value and whether it is met."""
    ours = result["ours"]
    rate = _rate(ours)
    found: list[dict[str, Any]] = []
    if name == "bulk":
        found.append(_target(f"events/s (synchronous={ours.get('synchronous')})", rate, 25_000, unit="events/s"))
        found.append(_target("x naive design", result["ratios"].get("ours_vs_naive"), 100, unit="x"))
    elif name == "lifecycle":
        found.append(_target("events/s", rate, 12_000, unit="events/s"))
    elif name == "fan-in":
        found.append(_target("x arq no-op job rate", result["ratios"].get("ours_vs_arq_noop"), 0.9, unit="x"))
    elif name == "latency":
        p99 = ours["latency_ms"].get("p99")
        found.append(_target(f"publish→commit p99 at {options.rate:g} events/s", p99, 20, below=True, unit="ms"))
    elif name == "memory":
        found.append(
            _target(
                f"worker peak RSS after {ours['events']:,} events",
                ours["worker_rss_mb"]["peak"],
                150,
                below=True,
                unit="MB",
            )
        )
    return found
