"""Failpoints are off by default and parse their specification."""

from __future__ import annotations

from worker import failpoints


def test_parse_reads_names_and_probabilities() -> None:
    assert failpoints._parse("after_commit=0.25, before_commit") == {"after_commit": 0.25, "before_commit": 1.0}
    assert failpoints._parse("") == {}


def test_an_unset_failpoint_does_nothing() -> None:
    failpoints.failpoint("never_configured")  # returning at all is the assertion: it did not exit
    assert "never_configured" not in failpoints._POINTS
