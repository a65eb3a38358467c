"""The rule set covers the whole catalogue, and the worker refuses to start without a rule."""

from __future__ import annotations

import pytest

from events import SignalClosed
from events.catalogue import EVENT_TYPES
from worker.apply import registry
from worker.apply.registry import APPLIERS, IncompleteRuleSet, OneByOne, SetBased, check_complete
from worker.config import Config
from worker.runtime.runner import startup


def test_every_event_class_of_the_catalogue_has_exactly_one_applier() -> None:
    assert set(APPLIERS) == set(EVENT_TYPES)
    check_complete()


def test_trading_events_are_set_based_and_commands_one_by_one() -> None:
    for event_class, applier in APPLIERS.items():
        trading = event_class.__module__ == "events.trading"
        assert isinstance(applier, SetBased if trading else OneByOne), event_class


async def test_the_worker_refuses_to_start_when_a_class_has_no_applier(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    incomplete = {cls: applier for cls, applier in APPLIERS.items() if cls is not SignalClosed}
    monkeypatch.setattr(registry, "APPLIERS", incomplete)
    monkeypatch.setattr(registry.check_complete, "__defaults__", (incomplete,))
    with pytest.raises(IncompleteRuleSet, match="SignalClosed"):
        await startup({"config": Config(database_url=sqlite_url)})
