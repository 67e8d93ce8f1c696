"""Stopping the broker's background tasks (the cluster node, the sweepers, the registry's
timers) at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["stop"]


async def stop(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has ended; nothing for None or a task that has
    ended already (its outcome is left as it is)."""
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
