"""`komas worker` whose SQLite file cannot grow while a limit file exists (the disk-full test).

SQLite's `PRAGMA max_page_count` is per connection, so this entry point sets it every time the
pool hands out a connection: to the number in `KOMAS_TEST_PAGE_LIMIT_FILE` when that file exists
(a limit below the current size holds the file at its size: "database or disk is full"), to
SQLite's default maximum when it does not. Removing the file gives the space back to the running
worker without restarting it. Run as a script: `python page_limited_worker.py worker`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.pool import Pool

UNLIMITED = 1073741823  # SQLite's default max_page_count


def _limit_pages(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    limit_file = Path(os.environ["KOMAS_TEST_PAGE_LIMIT_FILE"])
    try:
        limit = int(limit_file.read_text())
    except (FileNotFoundError, ValueError):
        limit = UNLIMITED
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA max_page_count = {limit}")
    finally:
        cursor.close()


def main() -> None:
    event.listen(Pool, "checkout", _limit_pages)
    from worker.cli import main as komas

    komas()


if __name__ == "__main__":
    main()
