"""Seeing commits from outside the worker, and the worker's memory.

`CommitWatcher` is a thread with its own read-only SQLite connection that polls `processed_events`
(rows are only ever appended, so `rowid > last` finds the new ones). An event counts as committed
the first time its id is visible to a reader: that is what "committed" means to everyone else, and
it can be late by one poll interval plus the query, never early.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import closing, suppress
from pathlib import Path


class CommitWatcher(threading.Thread):
    """Poll the scratch database; note when each event id first appears (or just count, for huge runs)."""

    def __init__(
        self, db_path: Path, *, interval_s: float = 0.002, track_ids: bool = True, start_rowid: int = 0
    ) -> None:
        super().__init__(name="bench-commit-watcher", daemon=True)
        self.db_path = db_path
        self._uri = f"{db_path.resolve().as_uri()}?mode=ro"
        self.interval_s = interval_s
        self.track_ids = track_ids
        #: perf_counter when each event id was first seen (only with `track_ids`).
        self.seen_at: dict[str, float] = {}
        self.count = 0
        self.last_change_at = time.perf_counter()
        self.error: BaseException | None = None
        #: Rows up to this one were there before the run (a pre-filled database): neither counted nor timed.
        self._last_rowid = start_rowid
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            with closing(sqlite3.connect(self._uri, uri=True, check_same_thread=False)) as connection:
                connection.execute("PRAGMA query_only=ON")
                while not self._stop_event.is_set():
                    self.poll(connection)
                    self._stop_event.wait(self.interval_s)
                self.poll(connection)
        except BaseException as exc:  # handed to the harness, which fails the run with it
            self.error = exc

    def poll(self, connection: sqlite3.Connection) -> None:
        """One look at the table; time stamps are taken right after the rows arrive."""
        if self.track_ids:
            rows = connection.execute(
                "SELECT rowid, event_id FROM processed_events WHERE rowid > ? ORDER BY rowid", (self._last_rowid,)
            ).fetchall()
            now = time.perf_counter()
            if rows:
                self._last_rowid = rows[-1][0]
                for _rowid, event_id in rows:
                    self.seen_at.setdefault(event_id, now)
                self.count += len(rows)
                self.last_change_at = now
            return
        (top,) = connection.execute("SELECT coalesce(max(rowid), 0) FROM processed_events").fetchone()
        if top > self._last_rowid:
            self.count += top - self._last_rowid
            self._last_rowid = top
            self.last_change_at = time.perf_counter()

    def stop(self) -> None:
        self._stop_event.set()
        with suppress(RuntimeError):
            self.join(timeout=10)


def process_memory_kb(pid: int) -> dict[str, int] | None:
    """VmRSS and VmHWM of a live process, from /proc (None where there is no /proc or the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    if "VmRSS" not in found:
        return None
    return {"rss_kb": found["VmRSS"], "peak_kb": found.get("VmHWM", found["VmRSS"])}


def percentiles_ms(latencies_s: list[float], points: tuple[int, ...] = (50, 95, 99)) -> dict[str, float]:
    """Nearest-rank percentiles in milliseconds, plus the max; empty input gives an empty dict."""
    if not latencies_s:
        return {}
    ordered = sorted(latencies_s)
    result: dict[str, float] = {}
    for point in points:
        rank = max(1, -(-point * len(ordered) // 100))  # ceil(p * n / 100)
        result[f"p{point}"] = round(ordered[rank - 1] * 1000, 2)
    result["max"] = round(ordered[-1] * 1000, 2)
    return result
