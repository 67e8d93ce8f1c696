"""A subscription as the running broker holds it, and the notifications it has to send."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from ngsi_ld.changes import ChangeEvent
from ngsi_ld.model import Entity
from subscriptions import delivery as _delivery
from subscriptions.delivery import Channel
from subscriptions.matching import Matcher
from subscriptions.notification import Rendering

#: the stored member holding the store's mark at the subscription's creation
FEED_MARK = "_feedMark"


@dataclass(slots=True)
class Job:
    """One notification to send: changes (events) or current states (entities)."""

    events: list[ChangeEvent] | None = None
    entities: list[Entity] | None = None
    #: the records that keep it across a restart (subscriptions.pending; several once
    #: queued notifications were merged into this one)
    records: list[str] = field(default_factory=list, compare=False)


@dataclass(eq=False)
class Live:
    """A subscription as the running broker holds it."""

    tenant: str
    doc: dict[str, Any]
    matcher: Matcher
    rendering: Rendering
    link_url: str
    body_context: Any
    channel: Channel
    expires: float | None = None
    next_allowed: float = 0.0
    pending: dict[str, ChangeEvent] = field(default_factory=dict)
    flush: asyncio.TimerHandle | None = None
    periodic: asyncio.Task[None] | None = None
    cooldown_until: float = 0.0
    deleted: bool = False
    #: this process delivers it (subscriptions.ownership)
    owned: bool = True

    @property
    def id(self) -> str:
        return str(self.doc["id"])

    def predates(self, event: ChangeEvent) -> bool:
        """True if another process committed ``event`` before this subscription was
        created (its mark is at or below the subscription's: subscriptions.ownership)."""
        since = self.doc.get(FEED_MARK)
        return event.mark is not None and isinstance(since, int) and event.mark <= since

    def on_change(self, now: float) -> bool:
        """True if the subscription reacts to changes now (active, not periodic)."""
        return (self.doc.get("isActive", True) and "timeInterval" not in self.doc
                and (self.expires is None or now < self.expires))


def merge_jobs(first: Job, then: Job) -> Job | None:
    """Fold two queued change notifications into one (None: keep them apart).

    Changes queued behind a slow delivery go out together, in order, up to
    ``delivery.BATCH_MAX`` entities; current-state (periodic) jobs are never merged.
    """
    if first.events is None or then.events is None:
        return None
    if len(first.events) + len(then.events) > _delivery.BATCH_MAX:
        return None
    return Job(events=first.events + then.events, records=first.records + then.records)


class Stoppable(Protocol):
    """A subscription of either kind as stopping it sees it (:class:`Live`, and
    ``subscriptions.registrations.CsourceLive``)."""

    deleted: bool
    flush: asyncio.TimerHandle | None
    periodic: asyncio.Task[None] | None
    channel: Channel


async def halt(live: Stoppable, *, keep_channel: bool = False) -> None:
    """Stop what a subscription has running: it is marked deleted (a worker or timer
    that wakes finds it so), its throttling flush and periodic task are cancelled and,
    unless ``keep_channel`` (an update hands the queue on to the new version), its
    queue is closed."""
    live.deleted = True
    if live.flush is not None:
        live.flush.cancel()
    if live.periodic is not None:
        live.periodic.cancel()
    if not keep_channel:
        await live.channel.close()


def sub_key(tenant: str, sub_id: str) -> str:
    """The key of a subscription across tenants (index, queues, write-back)."""
    return f"{tenant}\x00{sub_id}"


__all__ = ["FEED_MARK", "Job", "Live", "Stoppable", "halt", "merge_jobs", "sub_key"]
