"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, bindparam
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.types import TypeDecorator

from worker.store.money import from_units, to_units


def utc_now() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; naive datetimes are refused rather than guessed at.

    SQLite has no time zone type, so values are stored as naive UTC and made aware on the way back.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: JSON everywhere, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class Money(TypeDecorator[float]):
    """An amount exact to 8 decimal places: whole units of 10^-8 in a BIGINT column (see `worker.store.money`).

    Floats (or Decimals) go in, the float nearest to the stored decimal comes out. SQL that adds
    to such a column adds integers, so sums are exact in any order. Code that already holds
    units binds them with `units()` so they are not converted twice.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: float | Decimal | None, dialect: Dialect) -> int | None:
        return None if value is None else to_units(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> float | None:
        return None if value is None else from_units(int(value))


def units(value: int | None) -> BindParameter[Any]:
    """A value already in units of 10^-8, bound as the integer it is (for `Money` columns)."""
    return bindparam(None, value, type_=BigInteger)
