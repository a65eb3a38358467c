"""Publishers: put events on the Komas queue as arq jobs, JSON only.

`Publisher` is for asyncio code, `SyncPublisher` (same methods, no await) for code that is not async,
such as the optimizer's process pools. A call returns only once Redis has acknowledged the write; if
it cannot within `timeout`, `PublishError` says the events were not taken (re-publishing the same
events is always safe: the worker applies each `event_id` once).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import redis
import redis.asyncio as aioredis

from events.catalogue import BaseEvent, parse_event
from events.errors import PublishError
from events.wire import (
    DEFAULT_QUEUE,
    JOB_KEY_PREFIX,
    EncodedJob,
    Limits,
    chunked,
    encode_event,
    encode_job,
    ordered_job_ids,
)

EventLike = BaseEvent | Mapping[str, Any]
DEFAULT_TIMEOUT_S = 5.0


def default_queue() -> str:
    """The queue producers use unless told otherwise: `KOMAS_QUEUE`, else `komas:events`."""
    return os.environ.get("KOMAS_QUEUE") or DEFAULT_QUEUE


def prepare_jobs(events: Iterable[EventLike], limits: Limits) -> list[EncodedJob]:
    """Validate and encode events, at most `limits.max_batch` per job. Raises before anything is sent."""
    encoded = (encode_event(parse_event(event, wire=False), limits) for event in events)
    job_ids = ordered_job_ids()
    return [encode_job(chunk, job_id=next(job_ids)) for chunk in chunked(encoded, limits.max_batch)]


class _PublisherBase:
    def __init__(self, *, queue: str | None, limits: Limits | None, url: str) -> None:
        self.queue = queue or default_queue()
        self.limits = limits or Limits.from_env()
        self._url = url

    def _failure(self, jobs: list[EncodedJob], exc: BaseException) -> PublishError:
        count = sum(job.size for job in jobs)
        return PublishError(
            f"Redis at {self._url} did not acknowledge {count} event(s) on queue {self.queue!r} "
            f"({type(exc).__name__}: {exc}). They were not taken; publishing the same events again "
            "(same event_id) is safe."
        )

    def _ttl_ms(self) -> int:
        return self.limits.job_ttl_s * 1000


class Publisher(_PublisherBase):
    """Async publisher: `async with Publisher.connect(url) as pub: await pub.publish(event)`."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        queue: str | None = None,
        limits: Limits | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        url: str = "redis",
    ) -> None:
        super().__init__(queue=queue, limits=limits, url=url)
        self._redis = client
        self._timeout = timeout

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        redis_url: str,
        *,
        queue: str | None = None,
        limits: Limits | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> AsyncIterator[Publisher]:
        """Open a connection pool for the block's duration."""
        client = aioredis.Redis.from_url(
            redis_url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        try:
            yield cls(client, queue=queue, limits=limits, timeout=timeout, url=_redact(redis_url))
        finally:
            await client.aclose()

    async def publish(self, event: EventLike) -> str:
        """Publish one event as one job; returns the job id."""
        return (await self.publish_many([event]))[0]

    async def publish_many(self, events: Iterable[EventLike]) -> list[str]:
        """Publish events in as few jobs as the batch limit allows, atomically; returns the job ids."""
        jobs = prepare_jobs(events, self.limits)
        if not jobs:
            return []
        try:
            async with asyncio.timeout(self._timeout):
                async with self._redis.pipeline(transaction=True) as pipe:
                    for job in jobs:
                        pipe.set(JOB_KEY_PREFIX + job.job_id, job.body, px=self._ttl_ms())
                        pipe.zadd(self.queue, {job.job_id: job.score})
                    await pipe.execute()
        except (redis.RedisError, OSError, TimeoutError) as exc:
            raise self._failure(jobs, exc) from exc
        return [job.job_id for job in jobs]


class SyncPublisher(_PublisherBase):
    """Blocking twin of `Publisher`: `with SyncPublisher.connect(url) as pub: pub.publish(event)`."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        queue: str | None = None,
        limits: Limits | None = None,
        url: str = "redis",
    ) -> None:
        super().__init__(queue=queue, limits=limits, url=url)
        self._redis = client

    @classmethod
    @contextmanager
    def connect(
        cls,
        redis_url: str,
        *,
        queue: str | None = None,
        limits: Limits | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> Iterator[SyncPublisher]:
        """Open a connection pool for the block's duration."""
        client = redis.Redis.from_url(
            redis_url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        try:
            yield cls(client, queue=queue, limits=limits, url=_redact(redis_url))
        finally:
            client.close()

    def publish(self, event: EventLike) -> str:
        """Publish one event as one job; returns the job id."""
        return self.publish_many([event])[0]

    def publish_many(self, events: Iterable[EventLike]) -> list[str]:
        """Publish events in as few jobs as the batch limit allows, atomically; returns the job ids."""
        jobs = prepare_jobs(events, self.limits)
        if not jobs:
            return []
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                for job in jobs:
                    pipe.set(JOB_KEY_PREFIX + job.job_id, job.body, px=self._ttl_ms())
                    pipe.zadd(self.queue, {job.job_id: job.score})
                pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise self._failure(jobs, exc) from exc
        return [job.job_id for job in jobs]


def _redact(url: str) -> str:
    """Never print a Redis password in an error message."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
