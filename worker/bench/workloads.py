"""Event generators of the benchmark: deterministic for a seed, so ours and the naive design see the same kind of load.

Every generator takes the ids of the bots and presets seeded in the scratch database and returns
ready, validated events (built before the clock starts: building them is the producer's business,
publishing them is ours).
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from events import BacktestFinished, BaseEvent, BotToggled, SignalClosed, SignalCreated

#: What `komas bench` runs, in the order it runs them (`memory` and `ops` are on demand only: they take minutes).
WORKLOADS = ("bulk", "lifecycle", "fan-in", "latency")
ALL_WORKLOADS = (*WORKLOADS, "memory", "ops")
BOTS = 50
PRESETS = 20
FAN_IN_PRODUCERS = 200
BASE_TIME = datetime(2025, 1, 1, tzinfo=UTC)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT", "XRPUSDT")
TIMEFRAMES = ("5m", "15m", "1h", "4h")


@dataclass(frozen=True)
class Seeded:
    """Ids of what the scratch database holds before the first event."""

    bot_ids: tuple[int, ...]
    preset_ids: tuple[int, ...]


class _Maker:
    """Builds events from one random stream: ids, times and values all follow from the seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.count = 0

    def envelope(self, source: str) -> dict[str, object]:
        self.count += 1
        return {
            "event_id": uuid.UUID(int=self.rng.getrandbits(128), version=4),
            "occurred_at": BASE_TIME + timedelta(milliseconds=self.count),
            "source": source,
        }

    def created(self, bot_id: int, uid: str) -> SignalCreated:
        rng = self.rng
        entry = round(rng.uniform(10, 60_000), 4)
        return SignalCreated(
            **self.envelope(f"bot:{bot_id}"),
            signal_uid=uid,
            bot_id=bot_id,
            symbol=rng.choice(SYMBOLS),
            timeframe=rng.choice(TIMEFRAMES),
            direction=rng.choice(("long", "short")),
            entry_price=entry,
            stop_loss=round(entry * 0.97, 4),
            take_profits=[{"percent": 1.5, "amount": 50.0, "price": round(entry * 1.015, 4)}],
            indicator_values={"rsi": round(rng.uniform(0, 100), 2), "atr": round(rng.uniform(0, 5), 3)},
        )

    def closed(self, uid: str) -> SignalClosed:
        pnl = round(self.rng.uniform(-5, 5), 3)
        return SignalClosed(
            **self.envelope("bot"),
            signal_uid=uid,
            exit_price=round(self.rng.uniform(10, 60_000), 4),
            exit_reason="tp1" if pnl > 0 else "sl",
            pnl_percent=pnl,
        )

    def backtest(self, preset_id: int) -> BacktestFinished:
        rng = self.rng
        return BacktestFinished(
            **self.envelope("optimizer"),
            preset_id=preset_id,
            symbol=rng.choice(SYMBOLS),
            timeframe=rng.choice(TIMEFRAMES),
            win_rate=round(rng.uniform(20, 80), 2),
            profit_factor=round(rng.uniform(0.5, 3), 3),
            total_profit_percent=round(rng.uniform(-30, 90), 2),
            max_drawdown_percent=round(rng.uniform(1, 40), 2),
            sharpe_ratio=round(rng.uniform(-1, 3), 3),
            total_trades=rng.randrange(10, 2000),
            params={"period": rng.randrange(5, 50), "mult": round(rng.uniform(1, 4), 2)},
        )

    def toggled(self, bot_id: int) -> BotToggled:
        return BotToggled(**self.envelope("ops"), bot_id=bot_id, active=bool(self.rng.getrandbits(1)))


def bulk(n: int, seeded: Seeded, *, seed: int, chunk: int = 1000, prefix: str = "bulk") -> list[list[BaseEvent]]:
    """The optimizer's `publish_many` calls: `chunk` events each, backtest results and signal creates by turns.

    Signal uids are `{prefix}-{number}`: two streams with different prefixes (and seeds) never collide.
    """
    maker = _Maker(seed)
    calls: list[list[BaseEvent]] = []
    for number, start in enumerate(range(0, n, chunk)):
        size = min(chunk, n - start)
        if number % 2 == 0:
            calls.append([maker.backtest(maker.rng.choice(seeded.preset_ids)) for _ in range(size)])
        else:
            bots = seeded.bot_ids
            calls.append([maker.created(maker.rng.choice(bots), f"{prefix}-{start + i}") for i in range(size)])
    return calls


def lifecycle(n: int, seeded: Seeded, *, seed: int, lag: int = 2) -> list[BaseEvent]:
    """Every bot creates signals and closes each `lag` steps later: one stream, creates always before their close.

    `n` is rounded down to an even number (a create and a close per signal).
    """
    maker = _Maker(seed)
    bots = seeded.bot_ids
    signals = n // 2
    per_bot = [signals // len(bots) + (1 if index < signals % len(bots) else 0) for index in range(len(bots))]
    events: list[BaseEvent] = []
    for step in range(max(per_bot, default=0) + lag):
        for index, bot_id in enumerate(bots):
            if step < per_bot[index]:
                events.append(maker.created(bot_id, f"life-{bot_id}-{step}"))
            if lag <= step < per_bot[index] + lag:
                events.append(maker.closed(f"life-{bot_id}-{step - lag}"))
    return events


def fan_in(n: int, seeded: Seeded, *, seed: int, producers: int = FAN_IN_PRODUCERS) -> list[list[BaseEvent]]:
    """One list of single signal creates per producer (`n` spread over `producers`)."""
    maker = _Maker(seed)
    streams: list[list[BaseEvent]] = [[] for _ in range(min(producers, max(n, 1)))]
    for i in range(n):
        producer = i % len(streams)
        bot_id = seeded.bot_ids[producer % len(seeded.bot_ids)]
        streams[producer].append(maker.created(bot_id, f"fan-{producer}-{i}"))
    return streams


def paced(n: int, seeded: Seeded, *, seed: int, prefix: str = "lat") -> list[BaseEvent]:
    """Single signal creates, for the latency run at a fixed rate."""
    return list(itertools.islice(paced_stream(seeded, seed=seed, prefix=prefix), n))


def paced_stream(seeded: Seeded, *, seed: int, prefix: str = "lat") -> Iterator[BaseEvent]:
    """The same single signal creates as `paced`, without end (for a run as long as an operation takes)."""
    maker = _Maker(seed)
    for i in itertools.count():
        yield maker.created(seeded.bot_ids[i % len(seeded.bot_ids)], f"{prefix}-{i}")


def memory(n: int, seeded: Seeded, *, seed: int, chunk: int = 1000) -> Iterator[list[BaseEvent]]:
    """Small events (bot toggles), made chunk by chunk so a million of them never sit in memory at once."""
    maker = _Maker(seed)
    for start in range(0, n, chunk):
        yield [maker.toggled(maker.rng.choice(seeded.bot_ids)) for _ in range(min(chunk, n - start))]


def count_types(events: Sequence[BaseEvent]) -> dict[str, int]:
    """How many events of each type: what the scratch database must hold afterwards."""
    counts: dict[str, int] = {}
    for event in events:
        counts[event.type] = counts.get(event.type, 0) + 1
    return counts
