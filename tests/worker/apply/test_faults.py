"""Classifying errors: the event's fault (isolate it) versus the machinery's (retry later)."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import IntegrityError, OperationalError

from worker.apply.faults import describe, is_event_fault, is_transient
from worker.store.errors import InvalidStateError, MissingDependencyError


def _operational(message: str) -> OperationalError:
    return OperationalError("INSERT ...", {}, sqlite3.OperationalError(message))


def test_locked_and_full_databases_are_transient() -> None:
    for message in ("database is locked", "database or disk is full", "disk I/O error"):
        error = _operational(message)
        assert is_transient(error)
        assert not is_event_fault(error)


def test_constraint_violations_and_domain_refusals_are_the_events_fault() -> None:
    integrity = IntegrityError("INSERT ...", {}, sqlite3.IntegrityError("UNIQUE constraint failed: signals.uid"))
    unexpected = (OverflowError("date value out of range"), RuntimeError("a bug met by one event"))
    for error in (
        integrity,
        InvalidStateError("closed"),
        MissingDependencyError("no bot"),
        ValueError("bad"),
        *unexpected,
    ):
        assert is_event_fault(error)
        assert not is_transient(error)


def test_describe_reduces_driver_errors_to_their_words() -> None:
    assert describe(_operational("database is locked")) == "OperationalError: database is locked"
