"""A lock in Redis with a short TTL, renewed while held: one holder at a time across processes.

The background pass over parked events holds one, so however many workers share a queue (and
however long a pass takes) passes never overlap. A holder that dies leaves the key to expire
within `ttl_s`; only the holder's own token renews or deletes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from worker.runtime.lua import lua

log = logging.getLogger("komas.worker")

#: See `lua/lock_renew.lua` (its keys, arguments and why).
_RENEW = lua("lock_renew")
#: See `lua/lock_release.lua` (its keys, arguments and why).
_RELEASE = lua("lock_release")


async def _renew(redis: Any, key: str, token: str, ttl_ms: int) -> None:
    while True:
        await asyncio.sleep(ttl_ms / 3000)
        try:
            if not await redis.eval(_RENEW, 1, key, token, ttl_ms):
                log.warning("lost the lock %s (expired while held)", key)
                return
        except Exception as exc:  # Redis away: keep working; the lock may lapse
            log.warning("could not renew the lock %s: %s", key, exc)


@contextlib.asynccontextmanager
async def redis_lock(redis: Any, key: str, ttl_s: float) -> AsyncIterator[bool]:
    """Yield True while holding `key` (renewed every third of `ttl_s`), False if someone else holds it.

    Without a Redis connection (outside arq: unit tests) there is nobody to share with: True.
    """
    if redis is None:
        yield True
        return
    token = uuid.uuid4().hex
    ttl_ms = round(ttl_s * 1000)
    if not await redis.set(key, token, nx=True, px=ttl_ms):
        yield False
        return
    renewal = asyncio.create_task(_renew(redis, key, token, ttl_ms))
    try:
        yield True
    finally:
        renewal.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewal
        try:
            await redis.eval(_RELEASE, 1, key, token)
        except Exception as exc:  # it expires on its own
            log.warning("could not release the lock %s: %s", key, exc)
