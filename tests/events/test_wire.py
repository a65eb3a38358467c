"""The wire format's helpers: job ids that keep a producer's jobs in order and never collide."""

from __future__ import annotations

import multiprocessing
from itertools import islice

from events.wire import ordered_job_ids


def test_job_ids_of_one_call_are_unique_and_sort_in_order() -> None:
    ids = list(islice(ordered_job_ids(), 300))
    assert ids == sorted(ids)
    assert len(set(ids)) == 300


def test_a_later_call_sorts_after_an_earlier_one() -> None:
    first, second = list(islice(ordered_job_ids(), 5)), list(islice(ordered_job_ids(), 5))
    assert first + second == sorted(first + second)
    assert not set(first) & set(second)


def _ids_in_child(queue: multiprocessing.Queue[list[str]]) -> None:
    queue.put(list(islice(ordered_job_ids(), 50)))


def test_forked_processes_do_not_share_ids() -> None:
    """The optimizer publishes from a process pool: children start from the parent's counter."""
    list(islice(ordered_job_ids(), 3))  # the parent has made ids before forking
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    children = [context.Process(target=_ids_in_child, args=(queue,)) for _ in range(2)]
    for child in children:
        child.start()
    made = [queue.get(timeout=30) for _ in children] + [list(islice(ordered_job_ids(), 50))]
    for child in children:
        child.join(timeout=30)
    every = [job_id for ids in made for job_id in ids]
    assert len(set(every)) == len(every)
