"""Money: amounts stored as whole units of 10^-8, so totals are exact whatever order added them.

A bot's `total_profit` is a running sum of its closed signals' `pnl_amount`. Kept as floats, the
same 320 closes gave `304.16958800000003` in big jobs and `304.16958799999986` one by one, and
`0.1 + 0.2` read back as `0.30000000000000004`. Amounts are therefore rounded once, to 8 decimal
places (half to even), when they enter, and stored and added as integers (`worker.store.types.Money`);
they read back as the float nearest to that decimal, so `0.1 + 0.2` reads `0.3`. Integers of
64 bits hold amounts up to about 92 billion in either direction.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

PLACES = 8
SCALE = 100_000_000  # 10 ** PLACES
#: The largest amount that fits in a 64-bit column of units.
MAX_UNITS = 2**63 - 1
_ONE = Decimal(1)


def to_units(value: float | int | Decimal) -> int:
    """`value` rounded to 8 decimal places (half to even), as a whole number of units.

    A float is read as the shortest decimal that gives it back (`0.1` is 0.1, not its binary
    expansion), which is what the producer wrote. Non-finite or too large amounts raise ValueError.
    """
    try:
        exact = value if isinstance(value, Decimal) else Decimal(repr(value) if isinstance(value, float) else value)
        units = int((exact * SCALE).quantize(_ONE, rounding=ROUND_HALF_EVEN))
    except (InvalidOperation, ValueError, OverflowError):
        raise ValueError(f"amount {value!r} is not a finite number") from None
    if abs(units) > MAX_UNITS:
        raise ValueError(f"amount {value!r} is out of range (at most {MAX_UNITS / SCALE:.0f} either way)")
    return units


def from_units(units: int) -> float:
    """The float nearest to `units` * 10^-8 (one correctly rounded division: 30000000 reads 0.3)."""
    return units / SCALE


def as_decimal(units: int) -> Decimal:
    """The exact decimal of `units`."""
    return Decimal(units).scaleb(-PLACES)
