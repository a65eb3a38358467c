"""Set-based statements at the driver's speed on SQLite: multi-row INSERTs and large IN lists.

SQLAlchemy processes every parameter of an executemany in Python (type processors, defaults,
compiled parameter maps): for a 1000-event batch that cost more than SQLite's own work. On SQLite
the hot inserts are therefore sent as driver SQL with values converted once here, exactly as the
column types would store them; an IN list of thousands of ids travels as one JSON parameter read
by `json_each`. Other databases (PostgreSQL) take the ordinary Core statements.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, TypeVar

import orjson
from sqlalchemy import JSON, ColumnElement, String, Table, bindparam, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from worker.store.types import UTCDateTime

T = TypeVar("T")


def sqlite_datetime(value: datetime) -> str:
    """What `UTCDateTime` stores on SQLite: naive UTC, microseconds always written."""
    if value.tzinfo is not UTC:  # events arrive in UTC already; others pay for the conversion
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:-6]  # without "+00:00"


def json_text(value: Any) -> str:
    """What a JSON column stores: orjson, and the standard library for what orjson cannot encode
    (integers beyond 64 bits). No NaN check: `db.json_serializer` adds it; the set-based inserts
    write validated events, which cannot hold NaN."""
    if not value and type(value) in (dict, list):  # most indicator maps and take-profit lists are empty
        return "{}" if type(value) is dict else "[]"
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, allow_nan=False)


def _converter(table: Table, name: str) -> Callable[[Any], Any] | None:
    column_type = table.c[name].type
    if isinstance(column_type, UTCDateTime):
        return sqlite_datetime
    if isinstance(column_type, JSON):
        return json_text
    return None


def insert_rows(connection: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT `rows` (dicts with the same keys, every value given: no column defaults are applied).

    For the set-based appliers, whose values come from validated events: JSON is written by
    `json_text`, without the NaN check of `db.json_serializer`.
    """
    if not rows:
        return
    if connection.dialect.name != "sqlite":
        connection.execute(insert(table), list(rows))
        return
    names = tuple(rows[0])
    sql, values_of, converted = prebuilt(("insert", table.name, names), lambda: _insert_plan(connection, table, names))
    parameters: list[Any] = []
    last: dict[int, tuple[Any, Any]] = {}  # per column: the last value converted, and what it became
    for row in rows:
        values = list(values_of(row))
        for index, convert in converted:
            value = values[index]
            if value is None:
                continue
            before, after = last.get(index, (None, None))
            if value is not before:  # a batch's rows often share one object (its `now`)
                after = convert(value)
                last[index] = (value, after)
            values[index] = after
        parameters.append(tuple(values))
    with driver_cursor(connection, sql, parameters) as cursor:
        cursor.executemany(sql, parameters)


def _insert_plan(
    connection: Connection, table: Table, names: tuple[str, ...]
) -> tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]], list[tuple[int, Callable[[Any], Any]]]]:
    """SQL, value getter and per-column converters of an `insert_rows` call (made once per table and columns)."""
    quote = connection.dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(name) for name in names)}) "
        f"VALUES ({', '.join('?' for _ in names)})"
    )
    values_of = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    converted = [(index, convert) for index, name in enumerate(names) if (convert := _converter(table, name))]
    return sql, values_of, converted


#: Name of the one parameter that carries an IN list (see `among`).
AMONG = "among_values"


def among(column: Any, dialect_name: str) -> ColumnElement[bool]:
    """`column IN (:among_values)` as one parameter, for statements built once and run many times.

    On SQLite the list travels as one JSON array read by `json_each` (an IN of a thousand
    parameters cost more to compile than to run); elsewhere as an expanding parameter.
    """
    if dialect_name != "sqlite":
        return column.in_(bindparam(AMONG, expanding=True))  # type: ignore[no-any-return]
    listed = func.json_each(bindparam(AMONG, type_=String)).table_valued("value")
    return column.in_(select(listed.c.value))  # type: ignore[no-any-return]


def among_values(values: Sequence[Any], dialect_name: str) -> Any:
    """The value of the `AMONG` parameter for this dialect."""
    return orjson.dumps(list(values)).decode() if dialect_name == "sqlite" else list(values)


def scalars_among(connection: Connection, key: Hashable, build: Callable[[], Any], values: Sequence[Any]) -> list[Any]:
    """First column of a prebuilt query whose only parameter is `AMONG`, for these values.

    On SQLite the statement is compiled once and run straight on the driver's cursor: for a
    single-event commit round, SQLAlchemy's execution and result machinery cost more than SQLite.
    """
    dialect = connection.dialect.name
    if dialect != "sqlite":
        return list(connection.execute(prebuilt(key, build), {AMONG: among_values(values, dialect)}).scalars())
    sql, count = prebuilt(("driver sql", key), lambda: _driver_sql(prebuilt(key, build), connection.dialect))
    parameters = [among_values(values, dialect)] * count
    with driver_cursor(connection, sql, parameters) as cursor:
        cursor.execute(sql, parameters)
        return [row[0] for row in cursor.fetchall()]


@contextmanager
def driver_cursor(connection: Connection, sql: str, parameters: Any) -> Iterator[Any]:
    """The driver's own cursor on the connection's transaction, past SQLAlchemy's execution layer.

    The driver's errors come out as SQLAlchemy's (`IntegrityError`, `OperationalError`, ...), as
    from `Connection.execute`, so callers and the retry logic cannot tell the difference.
    """
    dbapi = connection.dialect.loaded_dbapi
    cursor = connection.connection.cursor()
    try:
        yield cursor
    except dbapi.Error as exc:
        raise DBAPIError.instance(sql, parameters, exc, dbapi.Error, dialect=connection.dialect) from exc
    finally:
        cursor.close()


def _driver_sql(statement: Any, dialect: Any) -> tuple[str, int]:
    """The statement's SQL for `dialect` (positional) and how many times it takes `AMONG`."""
    compiled = statement.compile(dialect=dialect)
    names = list(compiled.positiontup or ())
    if any(name != AMONG for name in names):
        raise ValueError(f"scalars_among takes only the {AMONG} parameter, not {names}")
    return str(compiled), len(names)


_PREBUILT: dict[Hashable, Any] = {}


def prebuilt(key: Hashable, build: Callable[[], T]) -> T:
    """A statement built on first use and reused after (its compiled form stays cached too)."""
    statement = _PREBUILT.get(key)
    if statement is None:
        statement = _PREBUILT[key] = build()
    return statement
