"""A page of a distributed query rendered from the renderings kept of the sources' entities
(4.3.6: the hub's own work), handed from the merge to the render of the page.

The local side renders an entity version once: its bytes are kept by (tenant,
id, version, view, @context) in the render cache.  A source's entity has no
version here, but what the hub shows of it is a function of the JSON the
source sent, the @context that JSON is written in, the View and the client's
@context, as long as nothing else takes part: it is the only fragment of its
id on the page (no merge, 4.5.5), no proxied registration claims part of it
(``ReadPlan.visible`` leaves it as it is), nothing in it can expire (4.22: what
is shown would change with time), the answer is filtered nowhere here
(``splitEntities``, a refiltered query), and the View renders entities one by
one (no join, no amendment to an earlier version), into a JSON body with the
@context in the Link header (GeoJSON and a body @context go the usual way).
``broker.federation.expansions.Expansions`` keeps those renderings beside the
expansion of the same content.

:class:`PageRendering` is what one request carries from the merge to its
render: the merge stands a small entity (the id alone) for each entity whose
rendering is kept (``stand_in``: neither decoded nor rendered), and names the
entities it expanded that met the conditions above (``offer``); :meth:`render`
gives the page's items, a kept rendering as its bytes (``orjson.Fragment``),
the others rendered as ever (and those offered kept for the next request).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from broker.service.caches import EMPTY
from ngsi_ld.expiry import earliest_expiry
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity
from ngsi_ld.view import View

__all__ = ["PageRendering"]

#: what keeps an offered entity's rendering: (the entity's id, its rendered JSON)
Keep = Callable[[str, bytes], None]


class PageRendering:
    """The renderings of one request's page the merge found kept or may keep (see the
    module doc): for the View (by its key) and the client's @context of the request."""

    __slots__ = ("ctx", "offered", "ready", "view_key")

    def __init__(self, view_key: int, ctx: ActiveContext) -> None:
        self.view_key = view_key
        self.ctx = ctx
        #: id(stand-in) -> (the stand-in, the kept rendering of the entity it stands for)
        self.ready: dict[int, tuple[Entity, bytes]] = {}
        #: id(entity) -> (the entity, what keeps its rendering)
        self.offered: dict[int, tuple[Entity, Keep]] = {}

    @property
    def used(self) -> bool:
        """True if the merge stood in or offered an entity."""
        return bool(self.ready or self.offered)

    def stand_in(self, entity_id: str, body: bytes) -> Entity:
        """The entity standing for one whose rendering ``body`` is kept: only its id is
        read before the render (the order and the paging of the merged answer)."""
        entity: Entity = {"id": entity_id, "type": [], "attrs": {}}
        self.ready[id(entity)] = (entity, body)
        return entity

    def offer(self, entity: Entity, keep: Keep) -> None:
        """``entity`` (a source's, as it expanded) may have its rendering kept by ``keep``."""
        self.offered[id(entity)] = (entity, keep)

    def render(self, view: View, ctx: ActiveContext, found: Iterable[Entity]) -> list[Any]:
        """The page's items as ``linked.render_entities`` gives them for a View without a
        join (an entity rendered to nothing left out), kept renderings as their bytes."""
        items: list[Any] = []
        for entity in found:
            ready = self.ready.get(id(entity))
            if ready is not None and ready[0] is entity:
                body = ready[1]
            else:
                rendered = view.render(ctx, entity)
                offered = self.offered.get(id(entity))
                # 4.22: what is shown of an entity that may expire changes with time
                if offered is None or offered[0] is not entity \
                        or earliest_expiry(entity) is not None:
                    if rendered:
                        items.append(rendered)
                    continue
                body = orjson.dumps(rendered)
                offered[1](entity["id"], body)
            if body != EMPTY:
                items.append(orjson.Fragment(body))
        return items
