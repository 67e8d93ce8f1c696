"""``--temporal-retention``: drop the history older than the retention period.

One task wakes at start-up and then every hour, and asks the store to remove the
instances whose time (observedAt, else when they were written) is older than
``now - retention`` (docs/temporal.md 3.2).  The store removes them in batches
so that a sweep never holds its writer for long.
"""

from __future__ import annotations

import asyncio
import logging

from broker.tasks import stop
from ngsi_ld.temporal import Duration, retention_cutoff
from ngsi_ld.timeutil import now_iso
from storage.temporal import TemporalHistory

__all__ = ["RetentionSweeper"]

log = logging.getLogger(__name__)

#: seconds between two sweeps
INTERVAL = 3600.0


class RetentionSweeper:
    """Removes the history older than ``retention``, now and every ``interval`` seconds."""

    def __init__(self, history: TemporalHistory, retention: Duration,
                 interval: float = INTERVAL) -> None:
        self.history = history
        self.retention = retention
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """One sweep: how many instances were removed."""
        removed = await self.history.drop_history_before(
            retention_cutoff(now_iso(), self.retention))
        if removed:
            log.info("temporal retention: %d instances removed", removed)
        return removed

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:  # the next sweep tries again; the broker keeps serving
                log.exception("temporal retention sweep failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        """Start sweeping in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        """Stop sweeping."""
        task, self._task = self._task, None
        await stop(task)
