"""The maintenance tests use the end-to-end rig: a queue of their own, a SQLite file, a burst worker."""

from tests.e2e.conftest import e2e

__all__ = ["e2e"]
