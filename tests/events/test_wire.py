"""The wire format's helpers: job ids that keep the jobs of one call in order."""

from __future__ import annotations

from itertools import islice

from events.wire import ordered_job_ids


def test_job_ids_of_one_call_are_unique_and_sort_in_order() -> None:
    ids = list(islice(ordered_job_ids(), 300))
    assert ids == sorted(ids)
    assert len(set(ids)) == 300


def test_two_calls_do_not_share_ids() -> None:
    first, second = list(islice(ordered_job_ids(), 5)), list(islice(ordered_job_ids(), 5))
    assert not set(first) & set(second)
