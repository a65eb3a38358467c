"""Amounts are exact to 8 decimal places: rounded once on the way in, added as integers."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.store.money import as_decimal, from_units, to_units
from worker.store.rules import pnl_units

eight_places = st.decimals(min_value=-(10**9), max_value=10**9, places=8, allow_nan=False, allow_infinity=False)


@given(eight_places)
def test_an_amount_of_8_places_goes_in_and_out_exactly(amount: Decimal) -> None:
    units = to_units(float(amount)) if abs(amount) < 10**7 else to_units(amount)
    assert as_decimal(units) == amount
    if abs(amount) < 10**7:  # floats hold 15 significant digits: 7 before the point, 8 after
        assert repr(from_units(units)) == repr(float(amount))


@given(st.lists(eight_places, min_size=1, max_size=50), st.randoms())
def test_sums_do_not_depend_on_the_order(amounts: list[Decimal], rng: random.Random) -> None:
    shuffled = list(amounts)
    rng.shuffle(shuffled)
    assert sum(map(to_units, amounts)) == sum(map(to_units, shuffled))
    assert as_decimal(sum(map(to_units, amounts))) == sum(amounts)


def test_point_one_plus_point_two_is_point_three() -> None:
    assert from_units(to_units(0.1) + to_units(0.2)) == 0.3
    assert repr(from_units(to_units(0.1) + to_units(0.2))) == "0.3"


def test_more_than_8_places_round_half_to_even() -> None:
    assert to_units(0.000000015) == 2
    assert to_units(0.000000025) == 2
    assert to_units(-0.000000015) == -2


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e300, -1e12])
def test_amounts_that_are_not_finite_or_too_large_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="amount"):
        to_units(bad)


def test_a_derived_amount_is_computed_in_decimal_then_rounded_once() -> None:
    # 40 * 0.3 / 100 is 0.12, but in floats 0.12000000000000001
    assert pnl_units(None, 40.0, 0.3) == 12_000_000
    assert pnl_units(None, 33.33, 1.005) == to_units(Decimal("0.33496650"))  # 0.3349665 exactly, 8 places
    assert pnl_units(2.5, 40.0, 0.3) == 250_000_000  # a given amount wins
