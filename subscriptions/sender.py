"""Sending one notification of a subscription, and the current state a periodic one sends.

Clause 5.8 (notification members), 5.2.12 (``timeInterval``), 5.2.15
(``endpoint.cooldown``).  The outcome of every attempt is recorded in the
subscription's document by the manager's ledger (``subscriptions.bookkeeping``).
"""

from __future__ import annotations

import logging

from ngsi_ld.model import Entity
from ngsi_ld.timeutil import now_iso
from subscriptions import state
from subscriptions.bookkeeping import Ledger
from subscriptions.delivery import Delivery
from subscriptions.joins import Fetch, joined, linked_entities
from subscriptions.live import Job, Live
from subscriptions.notification import notification_body, notification_headers
from subscriptions.ports import EntityReader

log = logging.getLogger("broker.subscriptions")


async def send(live: Live, job: Job, delivery: Delivery, ledger: Ledger,
               fetch: Fetch | None = None) -> None:
    """Render ``job`` for ``live`` and deliver it (after its cooldown), recording the outcome.

    ``fetch`` reads the linked entities of a subscription with ``join`` (4.5.23).
    """
    now = now_iso()
    if ledger.cooling_down(live, now):
        return
    rendering = live.rendering
    try:
        states: list[Entity | None]
        if job.events is not None:
            data = [rendering.change(event, now) for event in job.events]
            states = [event.after for event in job.events]
        else:
            data = [rendering.entity(entity) for entity in job.entities or ()]
            states = list(job.entities or ())
    except Exception:  # a bug, not the subscriber's fault: counted, never silent
        log.exception("subscription %s: notification could not be rendered", live.id)
        ledger.count("notifications_failed")
        state.record_failure(live.doc, now, attempted=False)
        ledger.touch(live)
        return
    join = live.doc["notification"].get("join", "@none")
    if join != "@none" and fetch is not None:
        level = live.doc["notification"].get("joinLevel", 1)
        roots = [rendering.select(entity) for entity in states if entity is not None]
        try:
            linked = await linked_entities(roots, level, fetch)
            data = joined(rendering, join, level, data, states, linked)
        except Exception:  # the store failed (or a bug): the notification goes unjoined
            log.exception("subscription %s: linked entities could not be added", live.id)
    body = notification_body(live.id, data, rendering.accept, now, live.body_context)
    endpoint = live.doc["notification"]["endpoint"]
    headers = notification_headers(rendering.accept, live.link_url, live.tenant,
                                   endpoint.get("receiverInfo"))
    await ledger.deliver(live, delivery, headers, body, now)


async def current_state(store: EntityReader, live: Live) -> list[Entity]:
    """The entities a periodic subscription selects now, by id, each once."""
    found: dict[str, Entity] = {}
    for query in live.matcher.periodic_queries():
        entities, _ = await store.query_entities(live.tenant, query)
        for entity in entities:
            found.setdefault(entity["id"], entity)
    return [found[k] for k in sorted(found)]


__all__ = ["current_state", "send"]
