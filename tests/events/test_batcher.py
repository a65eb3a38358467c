"""The lingering batcher turns many concurrent single publishes into few jobs."""

from __future__ import annotations

import asyncio

import fakeredis
import pytest

from events import BotToggled, EventValidationError, LingeringPublisher, Publisher, PublishError
from events.wire import JOB_KEY_PREFIX, loads

QUEUE = "komas:test:batcher"


async def _jobs(client: fakeredis.FakeAsyncRedis) -> list[list[dict[str, object]]]:
    job_ids = await client.zrange(QUEUE, 0, -1)
    return [loads(await client.get(JOB_KEY_PREFIX + job_id.decode()))["a"][0] for job_id in job_ids]


async def test_concurrent_publishes_share_jobs_and_each_caller_gets_its_ack() -> None:
    client = fakeredis.FakeAsyncRedis()
    events = [BotToggled(bot_id=1 + i % 5, active=i % 2 == 0) for i in range(200)]
    async with LingeringPublisher(Publisher(client, queue=QUEUE), linger_ms=50, max_events=100) as batcher:
        job_ids = await asyncio.gather(*(batcher.publish(event) for event in events))
    jobs = await _jobs(client)
    assert len(jobs) == 2  # 200 events, 100 per job: not 200 jobs
    assert sorted(str(e["event_id"]) for job in jobs for e in job) == sorted(str(e.event_id) for e in events)
    assert len(set(job_ids)) == 2
    await client.aclose()


async def test_a_lone_event_is_sent_after_the_linger_time() -> None:
    client = fakeredis.FakeAsyncRedis()
    async with LingeringPublisher(Publisher(client, queue=QUEUE), linger_ms=1) as batcher:
        job_id = await batcher.publish(BotToggled(bot_id=1, active=True))
    assert await client.exists(JOB_KEY_PREFIX + job_id)
    await client.aclose()


async def test_an_invalid_event_is_refused_to_its_caller_only() -> None:
    client = fakeredis.FakeAsyncRedis()
    async with LingeringPublisher(Publisher(client, queue=QUEUE), linger_ms=1) as batcher:
        with pytest.raises(EventValidationError, match="bot_id"):
            batcher.submit({"type": "bot.toggled", "bot_id": 0, "active": True})
        await batcher.publish(BotToggled(bot_id=2, active=False))
    assert len(await _jobs(client)) == 1
    await client.aclose()


async def test_a_failed_send_fails_every_caller_of_that_batch() -> None:
    client = fakeredis.FakeAsyncRedis()
    await client.aclose()
    broken = fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer())
    broken.connection_pool.connection_kwargs["server"].connected = False
    batcher = LingeringPublisher(Publisher(broken, queue=QUEUE), linger_ms=1)
    futures = [batcher.submit(BotToggled(bot_id=3, active=True)) for _ in range(3)]
    await batcher.flush()
    for future in futures:
        with pytest.raises(PublishError, match="were not taken"):
            future.result()
