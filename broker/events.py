"""The in-process change bus: every entity write publishes one ChangeEvent.

Producers are the entity and batch routes; the subscriptions package listens.
Listeners must not block: they are called synchronously, in publication order,
and are expected to enqueue work (a listener that raises is logged and skipped).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ngsi_ld.changes import ChangeEvent

log = logging.getLogger("broker.events")

Listener = Callable[[ChangeEvent], None]


class ChangeBus:
    """Fan-out of change events to in-process listeners."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self.published = 0

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add a listener; returns a function that removes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, event: ChangeEvent) -> None:
        self.published += 1
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("change listener %r failed", listener)
