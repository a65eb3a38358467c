"""Publishers: the arq job they write (JSON, batched, bounded), and how they fail.

Fast tests use fakeredis; the few at the end talk to the real Redis (their own queue, cleaned up).
"""

from __future__ import annotations

import contextlib
import json
import math
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import fakeredis
import pytest
import redis
import redis.asyncio as aioredis

from events import (
    BacktestFinished,
    BaseEvent,
    BotToggled,
    EventValidationError,
    Publisher,
    PublishError,
    SignalClosed,
    SignalCreated,
    SyncPublisher,
)
from events.publisher import EventLike
from events.wire import DEFAULT_JOB_TTL_S, DEFAULT_MAX_BATCH, DEFAULT_QUEUE, JOB_FUNCTION, Limits, dumps
from tests.services import free_port

QUEUE = "komas:test:publisher"


def signal_created(n: int = 0, **fields: Any) -> SignalCreated:
    values: dict[str, Any] = {
        "signal_uid": f"sig-{n}",
        "bot_id": 1,
        "symbol": "BTCUSDT",
        "timeframe": "5m",
        "direction": "long",
        "entry_price": 100.0 + n,
        "source": "bot:1",
    }
    return SignalCreated(**{**values, **fields})


def mixed_events() -> list[EventLike]:
    return [
        signal_created(1),
        SignalClosed(signal_uid="sig-1", exit_price=101.0, exit_reason="tp1", pnl_percent=1.0),
        BotToggled(bot_id=1, active=False),
        BacktestFinished(
            preset_id=1,
            symbol="BTCUSDT",
            timeframe="1h",
            win_rate=55.0,
            profit_factor=1.3,
            total_profit_percent=12.5,
            max_drawdown_percent=4.0,
            sharpe_ratio=1.1,
            total_trades=42,
        ),
        {"type": "bot.toggled", "bot_id": 2, "active": True, "source": "api"},
    ]


@dataclass
class Harness:
    """One publisher (async or sync, behind the same awaitable calls) and a view of its Redis."""

    kind: str
    publish: Callable[[EventLike], Awaitable[str]]
    publish_many: Callable[[Iterable[EventLike]], Awaitable[list[str]]]
    view: Any  # fakeredis.FakeRedis on the same server
    queue: str

    def job_ids(self) -> list[str]:
        return [member.decode() for member in self.view.zrange(self.queue, 0, -1)]

    def job(self, job_id: str) -> dict[str, Any]:
        body = self.view.get(f"arq:job:{job_id}")
        assert body is not None, f"no job key for {job_id}"
        decoded: dict[str, Any] = json.loads(body)
        return decoded

    def events_of(self, job_id: str) -> list[dict[str, Any]]:
        args = self.job(job_id)["a"]
        assert isinstance(args, list)
        assert len(args) == 1
        events: list[dict[str, Any]] = args[0]
        return events


Factory = Callable[..., Harness]


@pytest.fixture(params=["async", "sync"])
def make(request: pytest.FixtureRequest) -> Factory:
    server = fakeredis.FakeServer()

    def build(limits: Limits | None = None, queue: str = QUEUE, connected: bool = True) -> Harness:
        server.connected = connected
        if request.param == "async":
            apub = Publisher(fakeredis.FakeAsyncRedis(server=server), queue=queue, limits=limits)

            async def one(event: EventLike) -> str:
                return await apub.publish(event)

            async def many(events: Iterable[EventLike]) -> list[str]:
                return await apub.publish_many(events)

        else:
            spub = SyncPublisher(fakeredis.FakeRedis(server=server), queue=queue, limits=limits)

            async def one(event: EventLike) -> str:
                return spub.publish(event)

            async def many(events: Iterable[EventLike]) -> list[str]:
                return spub.publish_many(events)

        return Harness(request.param, one, many, fakeredis.FakeRedis(server=server), queue)

    return build


# --- the job written -----------------------------------------------------------------------------


async def test_publish_writes_one_arq_job_and_one_queue_entry(make: Factory) -> None:
    harness = make()
    event = signal_created(1, indicator_values={"rsi": 30.5})
    before_ms = int(time.time() * 1000)
    job_id = await harness.publish(event)
    after_ms = int(time.time() * 1000)

    assert len(job_id) == 40
    int(job_id, 16)  # hex: process prefix, sequence, random tail (see `ordered_job_ids`)
    keys = {key.decode() for key in harness.view.keys("*")}
    assert keys == {QUEUE, f"arq:job:{job_id}"}

    job = harness.job(job_id)
    assert set(job) == {"t", "f", "a", "k", "et"}
    assert job["t"] is None
    assert job["f"] == JOB_FUNCTION == "apply_events"
    assert job["a"] == [[event.to_wire()]]
    assert job["k"] == {}
    assert isinstance(job["et"], int)
    assert before_ms <= job["et"] <= after_ms
    assert harness.view.zscore(QUEUE, job_id) == job["et"]


async def test_the_body_is_plain_json_never_pickle(make: Factory) -> None:
    harness = make()
    job_id = await harness.publish(signal_created(1, indicator_values={"name": "Ünïcode ✓"}))
    body: bytes = harness.view.get(f"arq:job:{job_id}")
    assert body.startswith(b'{"t":null,"f":"apply_events"')
    assert not body.startswith(b"\x80")  # pickle's protocol header
    assert json.loads(body.decode("utf-8"))["a"][0][0]["indicator_values"] == {"name": "Ünïcode ✓"}


async def test_a_dict_is_validated_and_completed_with_the_envelope(make: Factory) -> None:
    harness = make()
    job_id = await harness.publish({"type": "bot.toggled", "bot_id": 4, "active": True})
    (event,) = harness.events_of(job_id)
    assert event["type"] == "bot.toggled"
    assert event["bot_id"] == 4
    assert event["schema_version"] == 1
    assert event["source"] == "unknown"
    assert len(event["event_id"]) == 36
    assert event["occurred_at"].endswith("Z")


async def test_publish_many_puts_many_events_in_one_job(make: Factory) -> None:
    harness = make()
    events = mixed_events()
    job_ids = await harness.publish_many(events)
    assert len(job_ids) == 1
    assert harness.job_ids() == job_ids
    written = harness.events_of(job_ids[0])
    assert [event["type"] for event in written] == [
        "signal.created",
        "signal.closed",
        "bot.toggled",
        "backtest.finished",
        "bot.toggled",
    ]
    for original, sent in zip(events[:4], written, strict=False):
        assert isinstance(original, SignalCreated | SignalClosed | BotToggled | BacktestFinished)
        assert sent == original.to_wire()


async def test_publish_many_accepts_a_generator(make: Factory) -> None:
    harness = make()
    job_ids = await harness.publish_many(signal_created(n) for n in range(3))
    assert [event["signal_uid"] for event in harness.events_of(job_ids[0])] == ["sig-0", "sig-1", "sig-2"]


async def test_publish_many_of_nothing_writes_nothing(make: Factory) -> None:
    harness = make()
    assert await harness.publish_many([]) == []
    assert harness.view.dbsize() == 0


@pytest.mark.parametrize(("count", "max_batch"), [(3, 3), (4, 3), (10, 3), (7, 1), (25, 10)])
async def test_more_events_than_max_batch_are_split_into_jobs(make: Factory, count: int, max_batch: int) -> None:
    harness = make(Limits(max_batch=max_batch))
    events = [signal_created(n) for n in range(count)]
    job_ids = await harness.publish_many(events)

    assert len(job_ids) == math.ceil(count / max_batch)
    assert len(set(job_ids)) == len(job_ids)
    assert sorted(harness.job_ids()) == sorted(job_ids)
    sizes = [len(harness.events_of(job_id)) for job_id in job_ids]
    assert all(size == max_batch for size in sizes[:-1])
    assert sum(sizes) == count
    in_order = [event["signal_uid"] for job_id in job_ids for event in harness.events_of(job_id)]
    assert in_order == [f"sig-{n}" for n in range(count)]


async def test_the_default_batch_limit_is_1000(make: Factory) -> None:
    assert Limits().max_batch == DEFAULT_MAX_BATCH == 1000
    harness = make(Limits())
    events = [BotToggled(bot_id=1, active=n % 2 == 0) for n in range(2001)]
    job_ids = await harness.publish_many(events)
    assert [len(harness.events_of(job_id)) for job_id in job_ids] == [1000, 1000, 1]


async def test_the_job_key_expires_after_the_job_ttl(make: Factory) -> None:
    harness = make(Limits())
    job_id = await harness.publish(signal_created())
    ttl_ms = harness.view.pttl(f"arq:job:{job_id}")
    assert DEFAULT_JOB_TTL_S == 30 * 24 * 3600
    assert DEFAULT_JOB_TTL_S * 1000 - 10_000 < ttl_ms <= DEFAULT_JOB_TTL_S * 1000
    assert harness.view.ttl(QUEUE) == -1  # the queue itself never expires


async def test_a_custom_job_ttl_is_used(make: Factory) -> None:
    harness = make(Limits(job_ttl_s=90))
    job_ids = await harness.publish_many([signal_created(n) for n in range(3)])
    ttl_ms = harness.view.pttl(f"arq:job:{job_ids[0]}")
    assert 80_000 < ttl_ms <= 90_000


def test_the_queue_defaults_to_komas_events_or_komas_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    client = fakeredis.FakeRedis()
    assert SyncPublisher(client).queue == DEFAULT_QUEUE == "komas:events"
    monkeypatch.setenv("KOMAS_QUEUE", "komas:elsewhere")
    assert SyncPublisher(client).queue == "komas:elsewhere"
    assert Publisher(fakeredis.FakeAsyncRedis()).queue == "komas:elsewhere"


# --- refusals before anything is written ---------------------------------------------------------


async def test_an_oversized_event_is_refused_before_anything_is_written(make: Factory) -> None:
    harness = make(Limits(max_event_bytes=2_000))
    small = signal_created(1)
    big = signal_created(2, indicator_values={"blob": "x" * 3_000})
    with pytest.raises(EventValidationError) as info:
        await harness.publish_many([small, big, signal_created(3)])
    message = str(info.value)
    assert str(big.event_id) in message
    assert "exceeds the limit of 2000 bytes" in message
    assert harness.view.dbsize() == 0


async def test_the_size_limit_is_inclusive(make: Factory) -> None:
    event = signal_created(1, indicator_values={"blob": "y" * 500})
    size = len(dumps(event.to_wire()))
    assert len(await make(Limits(max_event_bytes=size)).publish_many([event])) == 1
    with pytest.raises(EventValidationError, match="exceeds"):
        await make(Limits(max_event_bytes=size - 1)).publish_many([event])


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"type": "bot.toggled", "bot_id": 0, "active": True}, "bot_id"),
        ({"type": "bot.toggled", "bot_id": 1, "active": True, "extra": 1}, "extra"),
        ({"type": "bot.exploded", "bot_id": 1}, "type"),
        (
            {
                "type": "signal.created",
                "signal_uid": "u",
                "bot_id": 1,
                "symbol": "BTCUSDT",
                "timeframe": "1h",
                "direction": "long",
                "entry_price": 1.0,
                "indicator_values": {"x": math.nan},
            },
            "indicator_values.x",
        ),
    ],
)
async def test_invalid_dicts_are_refused_and_nothing_is_written(make: Factory, bad: dict[str, Any], field: str) -> None:
    harness = make()
    with pytest.raises(EventValidationError) as info:
        await harness.publish_many([signal_created(1), bad])
    assert field in str(info.value)
    assert harness.view.dbsize() == 0


async def test_something_that_is_not_an_event_is_refused(make: Factory) -> None:
    harness = make()
    with pytest.raises(EventValidationError, match="expected a JSON object"):
        await harness.publish(["not", "an", "event"])  # type: ignore[arg-type]
    assert harness.view.dbsize() == 0


async def test_nan_nested_in_a_model_is_refused_not_published_as_null(make: Factory) -> None:
    harness = make()
    with pytest.raises(ValueError, match=r"indicator_values\.rsi"):
        await harness.publish(signal_created(1, indicator_values={"rsi": math.nan}))
    assert harness.view.dbsize() == 0


async def test_nan_put_into_a_model_after_validation_is_not_published_as_null(make: Factory) -> None:
    harness = make()
    event = signal_created(1, indicator_values={"rsi": 30.0})
    event.indicator_values["rsi"] = math.nan
    with contextlib.suppress(EventValidationError, ValueError):
        await harness.publish(event)
    assert harness.view.dbsize() == 0


async def test_redis_refusing_the_write_raises_publish_error(make: Factory) -> None:
    harness = make(connected=False)
    with pytest.raises(PublishError) as info:
        await harness.publish_many(mixed_events())
    message = str(info.value)
    assert "did not acknowledge 5 event(s)" in message
    assert QUEUE in message
    assert "were not taken" in message
    assert isinstance(info.value.__cause__, redis.ConnectionError)


# --- against the real Redis ----------------------------------------------------------------------


#: redis-py's sync client, typed loosely: its stubs say every command may return an Awaitable.
SyncRedis = Any


@pytest.fixture
def real_redis(redis_url: str, queue_name: str) -> Iterator[SyncRedis]:
    """A client of the shared Redis; at the end the test's queue and its job keys are deleted."""
    client: SyncRedis = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        job_ids = [member.decode() for member in client.zrange(queue_name, 0, -1)]
        client.delete(queue_name, *(f"arq:job:{job_id}" for job_id in job_ids))
        client.close()


def check_written(client: SyncRedis, queue: str, job_ids: list[str], events: list[EventLike]) -> None:
    assert sorted(member.decode() for member in client.zrange(queue, 0, -1)) == sorted(job_ids)
    sent = []
    for job_id in job_ids:
        body = client.get(f"arq:job:{job_id}")
        assert body is not None
        job = json.loads(body)
        assert job["f"] == "apply_events"
        assert client.zscore(queue, job_id) == job["et"]
        assert 0 < client.pttl(f"arq:job:{job_id}") <= DEFAULT_JOB_TTL_S * 1000
        sent.extend(job["a"][0])
    assert [event["type"] for event in sent] == [
        event.type if isinstance(event, BaseEvent) else event["type"] for event in events
    ]


async def test_publisher_round_trip_on_real_redis(real_redis: SyncRedis, redis_url: str, queue_name: str) -> None:
    events = mixed_events()
    async with Publisher.connect(redis_url, queue=queue_name, limits=Limits(max_batch=2)) as publisher:
        first = await publisher.publish(signal_created(9))
        many = await publisher.publish_many(events)
    assert len(many) == 3
    check_written(real_redis, queue_name, [first, *many], [signal_created(9), *events])


def test_sync_publisher_round_trip_on_real_redis(real_redis: SyncRedis, redis_url: str, queue_name: str) -> None:
    events = mixed_events()
    with SyncPublisher.connect(redis_url, queue=queue_name) as publisher:
        first = publisher.publish(signal_created(9))
        many = publisher.publish_many(events)
    assert len(many) == 1
    check_written(real_redis, queue_name, [first, *many], [signal_created(9), *events])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (kernel backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def check_not_taken(error: PublishError, port: int, count: int) -> None:
    message = str(error)
    assert "were not taken" in message
    assert f"127.0.0.1:{port}" in message
    assert f"{count} event(s)" in message


async def test_publisher_raises_publish_error_when_redis_is_unreachable(queue_name: str) -> None:
    port = free_port()
    started = time.monotonic()
    async with Publisher.connect(f"redis://127.0.0.1:{port}", queue=queue_name, timeout=0.5) as publisher:
        with pytest.raises(PublishError) as info:
            await publisher.publish_many(mixed_events())
    assert time.monotonic() - started < 5
    check_not_taken(info.value, port, 5)


def test_sync_publisher_raises_publish_error_when_redis_is_unreachable(queue_name: str) -> None:
    port = free_port()
    with (
        SyncPublisher.connect(f"redis://127.0.0.1:{port}", queue=queue_name, timeout=0.5) as publisher,
        pytest.raises(PublishError) as info,
    ):
        publisher.publish(signal_created())
    check_not_taken(info.value, port, 1)


async def test_publisher_gives_up_after_its_timeout_when_redis_does_not_answer(
    silent_port: int, queue_name: str
) -> None:
    started = time.monotonic()
    async with Publisher.connect(f"redis://127.0.0.1:{silent_port}", queue=queue_name, timeout=0.5) as publisher:
        with pytest.raises(PublishError) as info:
            await publisher.publish(signal_created())
    assert time.monotonic() - started < 3
    check_not_taken(info.value, silent_port, 1)


def test_sync_publisher_gives_up_after_its_timeout_when_redis_does_not_answer(
    silent_port: int, queue_name: str
) -> None:
    started = time.monotonic()
    with (
        SyncPublisher.connect(f"redis://127.0.0.1:{silent_port}", queue=queue_name, timeout=0.5) as publisher,
        pytest.raises(PublishError) as info,
    ):
        publisher.publish_many([signal_created(1), signal_created(2)])
    assert time.monotonic() - started < 3
    check_not_taken(info.value, silent_port, 2)


async def test_publish_error_never_shows_the_redis_password(queue_name: str) -> None:
    port = free_port()
    url = f"redis://komas:s3cr3t-pw@127.0.0.1:{port}/0"
    async with Publisher.connect(url, queue=queue_name, timeout=0.5) as publisher:
        with pytest.raises(PublishError) as async_info:
            await publisher.publish(signal_created())
    with (
        SyncPublisher.connect(url, queue=queue_name, timeout=0.5) as sync_publisher,
        pytest.raises(PublishError) as sync_info,
    ):
        sync_publisher.publish(signal_created())
    for info in (async_info, sync_info):
        assert "s3cr3t-pw" not in str(info.value)
        assert f"redis://***@127.0.0.1:{port}/0" in str(info.value)


async def test_async_publisher_accepts_a_real_async_client(redis_url: str, queue_name: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        job_id = await Publisher(client, queue=queue_name).publish(signal_created())
        assert await client.zscore(queue_name, job_id) is not None
        assert (await client.get(f"arq:job:{job_id}") or b"").startswith(b'{"t":null')
    finally:
        job_ids = [member.decode() for member in await client.zrange(queue_name, 0, -1)]
        await client.delete(queue_name, *(f"arq:job:{job_id}" for job_id in job_ids))
        await client.aclose()
