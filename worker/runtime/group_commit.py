"""Group commit: many concurrent jobs, one writer, one transaction (and one fsync) for all of them.

With `synchronous=FULL` every commit waits for the disk, so a transaction per job caps the worker
at a few hundred commits per second however small the jobs are. Jobs instead hand their validated
events to the `GroupCommitter`; its single writer task takes everything waiting, applies it in one
transaction and answers each job with its own outcome. While it commits, the next group gathers.

A group that fails is never a reason to fail its members: with more than one submission, each is
told to run again on its own (`RunAlone`), so the usual isolation (bisecting down to the bad event)
happens per job, and a transient failure (locked database) reaches each job as it would have alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from events.catalogue import BaseEvent

log = logging.getLogger("komas.worker")

#: Applies events in one transaction; returns per event whether it was applied, and command answers.
ApplyFn = Callable[[list[BaseEvent]], Awaitable[tuple[list[bool], dict[str, Any]]]]

#: A group takes whole submissions until it holds at least this many events.
DEFAULT_MAX_GROUP_EVENTS = 5000
#: How long a round may wait for jobs that have started but not yet handed in their events.
DEFAULT_GATHER_S = 0.002


class RunAlone(Exception):
    """The group this submission was in failed; apply it again on its own to find out why."""


@dataclass
class _Submission:
    events: list[BaseEvent]
    future: asyncio.Future[tuple[list[bool], dict[str, Any]]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def _answer(submission: _Submission, result: tuple[list[bool], dict[str, Any]] | BaseException) -> None:
    """Resolve a submission unless its job stopped waiting (cancelled)."""
    if submission.future.done():
        return
    if isinstance(result, BaseException):
        submission.future.set_exception(result)
    else:
        submission.future.set_result(result)


class GroupCommitter:
    """One writer task applying the events of all waiting jobs in one transaction per round."""

    def __init__(
        self,
        apply: ApplyFn,
        *,
        max_group_events: int = DEFAULT_MAX_GROUP_EVENTS,
        gather_s: float = DEFAULT_GATHER_S,
    ) -> None:
        self._apply = apply
        self._max_group_events = max_group_events
        self._gather_s = gather_s
        self._waiting: deque[_Submission] = deque()
        self._wakeup = asyncio.Event()
        #: Jobs that started and have not yet handed in their events (or finished without any).
        self._coming = 0
        self._arrived = asyncio.Event()
        #: Set inside `expecting()` until the job hands in its events (per task: each job is one).
        self._announced: contextvars.ContextVar[bool] = contextvars.ContextVar("komas_announced", default=False)
        self._task: asyncio.Task[None] | None = None
        #: Rounds committed and submissions served, for status and benchmarks.
        self.rounds = 0
        self.submissions = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="komas-group-commit")

    async def stop(self) -> None:
        """Stop the writer; anything still waiting is told to run alone (its job applies it itself)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        while self._waiting:
            _answer(self._waiting.popleft(), RunAlone("the group committer stopped"))

    @contextlib.contextmanager
    def expecting(self) -> Iterator[None]:
        """Around a job's work: a round about to start waits briefly for the events of jobs inside it.

        arq starts jobs one after the other, a fraction of a millisecond apart; without this a
        fast writer would commit each single-event job on its own, one fsync each.
        """
        self._coming += 1
        token = self._announced.set(True)
        try:
            yield
        finally:
            if self._announced.get():
                self._coming -= 1
                self._arrived.set()
            self._announced.reset(token)

    @property
    def waiting(self) -> int:
        """Submissions queued for the next round."""
        return len(self._waiting)

    async def apply(self, events: Sequence[BaseEvent]) -> tuple[list[bool], dict[str, Any]]:
        """Apply `events` in the next group; raises `RunAlone` if that group failed, else what it raised."""
        if self._task is None or self._task.done():
            return await self._apply(list(events))
        submission = _Submission(list(events))
        self._waiting.append(submission)
        if self._announced.get():
            self._announced.set(False)
            self._coming -= 1
        self._wakeup.set()
        self._arrived.set()
        return await submission.future

    def _take_group(self) -> list[_Submission]:
        group: list[_Submission] = []
        size = 0
        while self._waiting and (not group or size + len(self._waiting[0].events) <= self._max_group_events):
            submission = self._waiting.popleft()
            if submission.future.done():  # its job was cancelled while waiting
                continue
            group.append(submission)
            size += len(submission.events)
        return group

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._waiting:
                await self._gather()
                group = self._take_group()
                if group:
                    await self._commit(group)

    async def _gather(self) -> None:
        """Wait (at most `gather_s`) while jobs still working have not handed in their events."""
        deadline = asyncio.get_running_loop().time() + self._gather_s
        while self._coming > 0 and sum(len(waiting.events) for waiting in self._waiting) < self._max_group_events:
            self._arrived.clear()
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)

    async def _commit(self, group: list[_Submission]) -> None:
        events = [event for submission in group for event in submission.events]
        try:
            flags, results = await self._apply(events)
        except Exception as exc:
            if len(group) == 1:
                _answer(group[0], exc)
            else:
                log.info("a group of %d jobs failed (%s); each runs again on its own", len(group), exc)
                for submission in group:
                    _answer(submission, RunAlone(str(exc)))
            return
        except BaseException:  # cancelled by stop(): the transaction rolled back, the jobs apply it themselves
            for submission in group:
                _answer(submission, RunAlone("the group committer stopped"))
            raise
        self.rounds += 1
        self.submissions += len(group)
        start = 0
        for submission in group:
            end = start + len(submission.events)
            own_results: dict[str, Any] = {}
            if results:  # command answers only; trading batches have none
                own_ids = {str(event.event_id) for event in submission.events}
                own_results = {event_id: answer for event_id, answer in results.items() if event_id in own_ids}
            _answer(submission, (flags[start:end], own_results))
            start = end
