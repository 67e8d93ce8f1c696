"""The in-process change bus: every entity write publishes one ChangeEvent.

Producers are the entity and batch routes; the subscriptions package listens.
Listeners must not block: they are called synchronously, in publication order,
and are expected to enqueue work (a listener that raises is logged and skipped).
A listener may say which writes can concern it, from the entity's id and types
and its states before and after; a write that concerns no listener is not
diffed at all (most writes, when few subscriptions exist or none watches the
attributes written).

Asked with neither state (``None``, ``None``), a listener's ``concerns`` tells whether
any write of that entity and those types may concern it: a superset of its answer for
any states.  The store's writer asks the bus that (:meth:`ChangeBus.may_concern`,
``Store.wants_before``) to tell whether to hand the state before a write over
decoded or as the bytes it read (``Change.stored``); a change handed over as bytes
is published without decoding them when no listener may be concerned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from ngsi_ld.changes import ChangeEvent, diff
from ngsi_ld.model import Change, Entity, written_types

log = logging.getLogger("broker.events")


Listener = Callable[[ChangeEvent], None]
#: (tenant, entity id, types before and after, entity before, entity after) -> whether
#: the write may concern a listener
Concerns = Callable[[str, str, Collection[str], Entity | None, Entity | None], bool]


class ChangeBus:
    """Fan-out of change events to in-process listeners."""

    def __init__(self) -> None:
        self._listeners: list[tuple[Listener, Concerns | None]] = []
        self.published = 0
        #: writes that concerned no listener, so were never diffed
        self.skipped = 0

    def subscribe(self, listener: Listener, concerns: Concerns | None = None) -> Callable[[], None]:
        """Add a listener (told of every write, or of those ``concerns`` accepts);
        returns a function that removes it."""
        entry = (listener, concerns)
        self._listeners.append(entry)
        return lambda: self._listeners.remove(entry)

    def may_concern(self, tenant: str, entity_id: str, types: Collection[str]) -> bool:
        """Whether a write of this entity, of these types before or after, may concern a
        listener (see the module docstring).  Called from the store's writer thread as
        well: it only reads, and a listener added meanwhile finds the state before
        decoded when it reads it (``Change.before``)."""
        for _, concerns in tuple(self._listeners):
            if concerns is None or concerns(tenant, entity_id, types, None, None):
                return True
        return False

    def publish_written(self, tenant: str, change: Change) -> None:
        """:meth:`publish_change` of a store's ``change``, its state before decoded only
        if a listener may be concerned (``Change.stored``)."""
        if not change.decoded:
            types = written_types(change.before_types, change.after_types)
            if not self.may_concern(tenant, change.entity_id, types):
                self.skipped += 1
                return
        self.publish_change(tenant, change.entity_id, change.before, change.after)

    def publish_change(self, tenant: str, entity_id: str, before: Entity | None,
                       after: Entity | None, mark: int | None = None) -> None:
        """Publish the event of one entity write, diffed only if it may concern a listener
        (``mark``: where another process committed it, see ``ChangeEvent.mark``)."""
        # every write passes here (issue 19): a plain loop rather than any() over a
        # generator
        types = written_types(() if before is None else before.get("type", ()),
                              () if after is None else after.get("type", ()))
        for _, concerns in self._listeners:
            if concerns is None or concerns(tenant, entity_id, types, before, after):
                break
        else:
            self.skipped += 1
            return
        event = diff(tenant, before, after)
        if event is not None:
            event.mark = mark
            self.publish(event)

    def publish(self, event: ChangeEvent) -> None:
        self.published += 1
        for listener, _ in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("change listener %r failed", listener)
