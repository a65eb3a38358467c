"""`rebuild-stats`: every bot's counters recomputed from its closed signals, with the worker's own rules.

The counters (`total_signals`, `total_wins`, `total_losses`, `total_profit`) are sums the worker
keeps as it applies closes; this recomputes them in one transaction (ordered with the events, the
worker being the only writer) using `worker.store.rules.is_win` and the stored amounts in units, and
reports each bot whose counters differed, before and after. `check` only reports.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import BigInteger, select, type_coerce, update

from worker.config import Config
from worker.ops.maintenance import OpRefused
from worker.store.db import transaction
from worker.store.models import Bot, Signal
from worker.store.money import from_units
from worker.store.rules import is_win

COUNTERS = ("total_signals", "total_wins", "total_losses", "total_profit")


def _shown(counters: tuple[int, int, int, int]) -> dict[str, Any]:
    signals, wins, losses, profit_units = counters
    return {
        "total_signals": signals,
        "total_wins": wins,
        "total_losses": losses,
        "total_profit": from_units(profit_units),
    }


async def rebuild_stats(config: Config, *, check: bool = False) -> dict[str, Any]:
    if not check and config.retention_signals_days:
        raise OpRefused(
            "signals are purged after KOMAS_RETENTION_SIGNALS_DAYS days, and the bots' counters are all that is left "
            "of them: rebuilding from the signals would drop it (use --check to compare)"
        )
    profit_units = type_coerce(Bot.total_profit, BigInteger)
    amount_units = type_coerce(Signal.pnl_amount, BigInteger)
    async with transaction() as session:
        stored = {
            bot_id: (signals, wins, losses, int(profit or 0))
            for bot_id, signals, wins, losses, profit in await session.execute(
                select(Bot.id, Bot.total_signals, Bot.total_wins, Bot.total_losses, profit_units).order_by(Bot.id)
            )
        }
        sums: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        closed = select(Signal.bot_id, Signal.pnl_percent, amount_units).where(Signal.status == "closed")
        async for bot_id, pnl_percent, amount in await session.stream(closed.execution_options(yield_per=10_000)):
            total = sums[bot_id]
            won = is_win(pnl_percent or 0.0)
            total[0] += 1
            total[1] += int(won)
            total[2] += int(not won)
            total[3] += int(amount or 0)
        differed = []
        for bot_id, before in stored.items():
            after = tuple(sums.get(bot_id, (0, 0, 0, 0)))
            if after == before:
                continue
            differed.append({"bot_id": bot_id, "before": _shown(before), "after": _shown(after)})  # type: ignore[arg-type]
            if not check:
                await session.execute(
                    update(Bot)
                    .where(Bot.id == bot_id)
                    .values(
                        total_signals=after[0],
                        total_wins=after[1],
                        total_losses=after[2],
                        total_profit=type_coerce(after[3], BigInteger),
                    )
                )
    return {
        "ok": True,
        "check": check,
        "bots": len(stored),
        "differed": differed,
        "fixed": 0 if check else len(differed),
    }
