"""The worker's Lua scripts for Redis, one `.lua` file each, opening with the keys it touches and why.

Kept as files (not strings in the modules that run them) so they read, diff and lint as Lua.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def lua(name: str) -> str:
    """The text of `name.lua` (read once per process)."""
    return files(__package__).joinpath(f"{name}.lua").read_text(encoding="utf-8")
