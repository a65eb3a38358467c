"""`KomasWorker`: arq's `Worker`, taking and ending the jobs one poll finds together.

arq claims each queued job in four Redis round trips, starts it in one more, runs it as a task of
its own and ends it in a seven-command transaction: for single-event jobs that cost more than the
job (the README's performance section, items 5 and 12, has the figures). This worker skips the jobs
it runs without asking, claims the due ones a poll found with one script (`lua/claim_jobs.lua`:
arq's checks, atomically) and reads their bodies in the same round trip. Jobs on their first try are
run together as one *unit*: one round trip counts their tries, one lock renewal covers them, they
run concurrently (so their events share one commit) and one script ends each wave of them that
finishes together. Anything else (a retried job, a cron job, an expired one) runs through arq's own
`run_job`, exactly as before, so a job that crashed the worker is retried alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from arq import Retry, Worker
from arq.jobs import deserialize_job_raw, serialize_result
from arq.utils import ms_to_datetime, timestamp_ms
from arq.worker import Function

from worker.runtime.claims import Claimed, Finish, JobScripts
from worker.runtime.heartbeat import LOCK_KEPT, locks_kept_alive
from worker.runtime.jobs import BatchReport, dead_letter

log = logging.getLogger("komas.worker")

#: Most bytes of job bodies one claim reads (the first job is taken whatever its size when nothing runs).
CLAIM_MAX_BYTES = 1 << 20
#: Most bytes of job bodies running at once: a bound on the worker's memory however high `max_jobs` is
#: (a decoded and validated batch takes about ten times its JSON). 2 MiB is about four batches of a
#: thousand signal creates: more did not make big batches faster, and took 20 MB more at peak.
INFLIGHT_MAX_BYTES = 2 << 20


@dataclass(frozen=True)
class UnitJob:
    """A claimed first-try job, decoded, ready to run in a unit."""

    claimed: Claimed
    function: Function
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    enqueue_time_ms: int


class KomasWorker(Worker):
    """arq's `Worker`, starting and ending jobs with fewer Redis round trips (see the module)."""

    #: How long to wait between looks at a queue that has been idle (arq's `poll_delay` is used while busy).
    idle_poll_delay_s: float = 0.0
    _idle_polls = 0
    _scripts: JobScripts | None = None
    _bytes_running = 0
    #: Functions whose jobs never join a unit (long ones: see `_unit_job`); set by `runner.build_worker`.
    run_alone: frozenset[str] = frozenset()

    @property
    def scripts(self) -> JobScripts:
        if self._scripts is None:
            self._scripts = JobScripts(self.pool, self.queue_name)
        return self._scripts

    # Overrides arq 0.28 `Worker._poll_iteration` (arq/worker.py), calling it first.
    async def _poll_iteration(self) -> None:
        """arq's poll, then a longer pause the longer the queue stays idle.

        A fixed pause trades latency for idle CPU: at 500 single-event jobs/s the 10 ms pause was
        most of an event's time in the queue. While jobs arrive or run the worker looks again after
        `poll_delay` (a few ms); once nothing has happened for a few looks the pause grows, doubling,
        up to `idle_poll_delay_s`.
        """
        started = self._jobs_started()
        await super()._poll_iteration()
        if self._jobs_started() != started or any(not task.done() for task in self.tasks.values()):
            self._idle_polls = 0
            return
        self._idle_polls += 1
        extra = min(self.poll_delay_s * 2 ** min(self._idle_polls, 16), self.idle_poll_delay_s) - self.poll_delay_s
        if extra > 0:
            await asyncio.sleep(extra)

    # Overrides arq 0.28 `Worker.finish_job` (arq/worker.py): the same keys and writes, as one script.
    async def finish_job(
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        """arq's `finish_job` (used by its `run_job`), the same writes in one atomic script."""
        end = Finish(job_id, finish, result_data, result_timeout_s, keep_result_forever, incr_score, keep_in_progress)
        await self.scripts.finish([end])

    # Overrides arq 0.28 `Worker.start_jobs` (arq/worker.py): its checks (in progress, due, tries) in
    # `lua/claim_jobs.lua`; its `sem`, `job_counter` and `tasks` bookkeeping kept as arq keeps them.
    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Claim the due jobs among `job_ids` that nobody runs, as many as there are free slots, and start them."""
        free = self.max_jobs - self.job_counter
        candidates: list[str] = []
        foreign: list[bytes] = []
        for job_id_b in job_ids:
            if len(candidates) >= free:
                break
            try:
                job_id = job_id_b.decode()
            except UnicodeDecodeError:
                foreign.append(job_id_b)
                continue
            running = self.tasks.get(job_id)
            if running is None or running.done():
                candidates.append(job_id)
        if foreign:
            self._dead_letter_foreign(foreign)
        if not candidates:
            return
        claimed = await self.scripts.claim(
            candidates,
            now_ms=timestamp_ms(),
            lock_ms=int(self.in_progress_timeout_s * 1000),
            budget_bytes=max(0, min(CLAIM_MAX_BYTES, INFLIGHT_MAX_BYTES - self._bytes_running)),
            one_may_exceed=self.job_counter == 0,
        )
        unit: list[UnitJob] = []
        for job in claimed:
            await self.sem.acquire()  # never waits: there were `free` slots, and this loop does not yield before
            self.job_counter += 1
            ready = self._unit_job(job)
            if ready is not None:
                unit.append(ready)
                continue
            task = self.loop.create_task(self._guarded(job.job_id, self.run_job(job.job_id, job.score)))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job.job_id] = task
        if unit:
            self._start_unit(unit)

    async def _guarded(self, what: str, running: Coroutine[Any, Any, None]) -> None:
        """Run a job (or a unit) so that nothing it raises reaches arq's poll loop, which would stop the worker.

        Our jobs end in a result whatever their input; this is the net under the machinery: the
        job keeps its place in the queue and runs again once its lock lapses (its tries counted,
        so `KOMAS_MAX_CRASHES` applies), and every other job goes on.
        """
        try:
            await running
        except Exception:
            log.exception("job %s: running it failed; it runs again once its lock lapses", what)

    def _dead_letter_foreign(self, job_ids: list[bytes]) -> None:
        """Jobs whose id is not UTF-8: stored whole as dead letters, then removed from the queue (see claims)."""
        key = "foreign:" + ",".join(repr(job_id) for job_id in job_ids)
        running = self.tasks.get(key)
        if running is None or running.done():
            self.tasks[key] = self.loop.create_task(self._guarded(key, self._store_foreign(job_ids)))

    async def _store_foreign(self, job_ids: list[bytes]) -> None:
        taken = await self.scripts.take_foreign(job_ids, lock_ms=int(self.in_progress_timeout_s * 1000))
        for job_id, body in taken.items():
            await dead_letter(BatchReport(), body, f"job id {job_id!r} is not UTF-8: job ids must be UTF-8 text")
        if taken:
            await self.scripts.forget(list(taken))

    def _unit_job(self, job: Claimed) -> UnitJob | None:
        """The job decoded for a unit, or None when arq's `run_job` must run it (see the module)."""
        if job.body is None or job.tries > 0 or self.on_job_start or self.on_job_end or self.after_job_end:
            return None
        try:
            name, args, kwargs, enqueue_try, enqueue_time_ms = deserialize_job_raw(
                job.body, deserializer=self.job_deserializer
            )
        except Exception:  # arq's run_job reports it
            return None
        function = self.functions.get(name)
        if not isinstance(function, Function) or (enqueue_try or 0) > 1:  # cron jobs keep their lock: arq's way
            return None
        if name in self.run_alone:
            # Operator and maintenance jobs run alone, through arq's run_job: a unit's slots are freed when
            # its last job ends, and a backup or purge in a unit held its mates' slots for minutes, so
            # event jobs queued behind it (p99 at 500 events/s went from 50 ms to 1.6 s during a purge).
            return None
        return UnitJob(job, function, tuple(args), kwargs, enqueue_time_ms)

    def _start_unit(self, jobs: list[UnitJob]) -> None:
        size = sum(len(job.claimed.body or b"") for job in jobs)
        self._bytes_running += size
        task = self.loop.create_task(self._guarded(f"unit of {len(jobs)}", self._run_unit(jobs)))

        def done(_: object) -> None:
            self._bytes_running -= size
            for _job in jobs:
                self._release_sem_dec_counter_on_complete()

        task.add_done_callback(done)
        for job in jobs:
            self.tasks[job.claimed.job_id] = task

    async def _run_unit(self, jobs: list[UnitJob]) -> None:
        """Run first-try jobs concurrently under one lock renewal; end them with one script per wave.

        A wave is every job that finished by the time the first of them did: the jobs of one commit
        round end together, and a slow job (a batch bisecting to a bad event) does not hold back
        the results of the others, which the API may be waiting for.
        """
        ids = [job.claimed.job_id for job in jobs]
        tries = await self.scripts.start(ids)
        renewing = list(ids)  # the jobs not ended yet: the renewal reads this list each time
        async with locks_kept_alive(self.pool, renewing, self.in_progress_timeout_s):
            unit = {
                self.loop.create_task(self._run_one(job, job_try)): job
                for job, job_try in zip(jobs, tries, strict=True)
            }
            pending = set(unit)
            try:
                while pending:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    await self._end([task.result() for task in done], renewing)
            except asyncio.CancelledError:  # the worker is stopping: the jobs go back to the queue, as in arq
                for task in pending:
                    task.cancel()
                if pending:
                    await asyncio.wait(pending)
                await self._end(
                    [self._put_back(unit[task]) if task.cancelled() else task.result() for task in pending], renewing
                )
                raise

    async def _end(self, ends: list[Finish], renewing: list[str]) -> None:
        for end in ends:
            renewing.remove(end.job_id)
        if ends:
            await asyncio.shield(self.scripts.finish(ends))

    # Mirrors arq 0.28 `Worker.run_job` (arq/worker.py) for a first-try job: its ctx keys, its outcomes
    # (Retry, failure, timeout, success) and its result record (`serialize_result`).
    async def _run_one(self, job: UnitJob, job_try: int) -> Finish:
        """One job of a unit, with arq's outcomes: done (its result kept), retry later, or failed (timeouts too)."""
        claimed = job.claimed
        ctx = {
            **self.ctx,
            "job_id": claimed.job_id,
            "job_try": job_try,
            "enqueue_time": ms_to_datetime(job.enqueue_time_ms),
            "score": claimed.score,
            LOCK_KEPT: True,
        }
        start_ms = timestamp_ms()
        try:
            async with asyncio.timeout(job.function.timeout_s or self.job_timeout_s):
                result = await job.function.coroutine(ctx, *job.args, **job.kwargs)
        except Retry as retry:
            self.jobs_retried += 1
            incr = retry.defer_score + (timestamp_ms() - claimed.score) if retry.defer_score else None
            log.info("job %s:%s retrying in %.2fs", claimed.job_id, job.function.name, (retry.defer_score or 0) / 1000)
            return Finish(claimed.job_id, False, incr_score=incr)
        except Exception as exc:  # a timeout too: terminal, as in arq
            log.exception("job %s:%s failed", claimed.job_id, job.function.name)
            self.jobs_failed += 1
            return self._ended(job, job_try, start_ms, exc, success=False)
        self.jobs_complete += 1
        return self._ended(job, job_try, start_ms, result, success=True)

    def _put_back(self, job: UnitJob) -> Finish:
        """A job cancelled because the worker stops: unlocked and left queued, to run again (arq's way)."""
        self.jobs_retried += 1
        return Finish(job.claimed.job_id, False)

    def _ended(self, job: UnitJob, job_try: int, start_ms: int, result: Any, *, success: bool) -> Finish:
        """A finished job's end: its record (result or exception) kept as arq keeps it."""
        function = job.function
        forever = self.keep_result_forever if function.keep_result_forever is None else function.keep_result_forever
        keep_s = self.keep_result_s if function.keep_result_s is None else function.keep_result_s
        data = None
        if forever or keep_s > 0:
            data = serialize_result(
                function.name,
                job.args,
                job.kwargs,
                job_try,
                job.enqueue_time_ms,
                success,
                result,
                start_ms,
                timestamp_ms(),
                f"{job.claimed.job_id}:{function.name}",
                self.queue_name,
                job_id=job.claimed.job_id,
                serializer=self.job_serializer,
            )
        return Finish(job.claimed.job_id, True, data, keep_s, forever)
