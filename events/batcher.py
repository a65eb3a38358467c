"""Lingering batcher: many single `publish` calls become few jobs (like Kafka's `linger.ms`).

A busy producer (200 tasks each publishing one event) would otherwise send one arq job per event,
and arq costs about nine Redis round trips per job. The batcher holds events for at most
`linger_ms`, or until `max_events` are waiting, then sends them as one job; every caller's `publish`
returns when the job holding its event is acknowledged by Redis (or raises `PublishError`).
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from events.catalogue import parse_event
from events.publisher import EventLike, Publisher


class LingeringPublisher:
    """`async with LingeringPublisher(pub, linger_ms=5) as batcher: await batcher.publish(event)`."""

    def __init__(self, publisher: Publisher, *, linger_ms: float = 5.0, max_events: int | None = None) -> None:
        self._publisher = publisher
        self._linger_s = linger_ms / 1000
        self._max_events = max_events or publisher.limits.max_batch
        self._pending: list[tuple[EventLike, asyncio.Future[str]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    async def publish(self, event: EventLike) -> str:
        """Queue one event; returns the job id once Redis acknowledged the job that carries it."""
        return await self.submit(event)

    def submit(self, event: EventLike) -> asyncio.Future[str]:
        """Queue one event without waiting; the future resolves to the job id (or the publish error)."""
        parse_event(event, wire=False)  # refuse an invalid event now, to its own caller, not to its batch mates
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((event, future))
        if len(self._pending) >= self._max_events:
            self._start_flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._linger_s, self._start_flush)
        return future

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        if batch:
            task = asyncio.create_task(self._send(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _send(self, batch: list[tuple[EventLike, asyncio.Future[str]]]) -> None:
        try:
            job_ids = await self._publisher.publish_many([event for event, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        job_id = job_ids[0] if len(job_ids) == 1 else ",".join(job_ids)
        for _, future in batch:
            if not future.done():
                future.set_result(job_id)

    async def flush(self) -> None:
        """Send what is waiting now and wait for every send in flight."""
        self._start_flush()
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)

    async def __aenter__(self) -> LingeringPublisher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with contextlib.suppress(Exception):
            await self.flush()
