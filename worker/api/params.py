"""Path and query parameters shared by the routes, with the bounds the database can hold.

Ids stop at SQLite's largest integer (a larger one would be an overflow, not a 404); keys, symbols
and timeframes use the patterns of the events, so a read accepts what a write could have stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import AfterValidator

MAX_ID = 2**63 - 1
SETTING_KEY_PATTERN = r"^[A-Za-z0-9_.:-]+$"
SYMBOL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
TIMEFRAME_PATTERN = r"^[1-9][0-9]{0,2}[smhdwM]$"
SOURCE_PATTERN = r"^[A-Za-z0-9_.-]+$"
#: The envelope `source` of the command events the API publishes (who sent them).
SOURCE = "api"


def _as_utc(value: datetime | None) -> datetime | None:
    """A time without an offset is UTC; one with an offset is converted (and must stay within years 1-9999)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("time out of range once converted to UTC") from None


ResourceId = Annotated[int, Path(ge=1, le=MAX_ID, description="Database id.")]
SettingKeyPath = Annotated[str, Path(min_length=1, max_length=200, pattern=SETTING_KEY_PATTERN)]
SymbolPath = Annotated[str, Path(min_length=2, max_length=40, pattern=SYMBOL_PATTERN, examples=["BTCUSDT"])]
TimeframePath = Annotated[str, Path(pattern=TIMEFRAME_PATTERN, examples=["1h"])]
SourceQuery = Annotated[str, Query(min_length=1, max_length=50, pattern=SOURCE_PATTERN)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size.")]
Offset = Annotated[int, Query(ge=0, le=2**31, description="Rows to skip.")]
Since = Annotated[
    datetime | None,
    Query(alias="from", description="Created at or after (ISO 8601; no offset means UTC)."),
    AfterValidator(_as_utc),
]
Until = Annotated[
    datetime | None,
    Query(alias="to", description="Created before (ISO 8601; no offset means UTC)."),
    AfterValidator(_as_utc),
]
SignalStatus = Literal["pending", "active", "closed", "cancelled"]
