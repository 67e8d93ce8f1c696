"""Records expanded as the broker expands entities (its @contexts offline first)."""

from __future__ import annotations

from broker.contexts import ContextResolver
from broker.loader.sources import Record
from broker.outbound import OutboundPolicy
from ngsi_ld.entity import parse_entity
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity
from storage import Store


class Expander:
    """Validates and expands records as the broker would (contexts offline first)."""

    def __init__(self, store: Store, preload_dir: str, core_version: str = "1.8",
                 outbound_allow: str = "") -> None:
        # remote @contexts named by the records: only where the outbound policy allows
        self.resolver = ContextResolver(store, core_version=core_version, preload_dir=preload_dir,
                                        outbound=OutboundPolicy.parse(outbound_allow))
        # a file's records mostly share one @context URL: skip the resolver's key for it
        self._by_url: dict[str | None, ActiveContext] = {}

    async def expand(self, record: Record) -> Entity:
        """The internal form of the record's entity; NgsiLdError when it is not valid."""
        entity = dict(record.entity or {})
        context = entity.pop("@context", None)
        if context is None or isinstance(context, str):
            ctx = self._by_url.get(context)
            if ctx is None:
                ctx = self._by_url[context] = await self.resolver.active(context)
        else:
            ctx = await self.resolver.active(context)
        return ctx.expand_entity(parse_entity(entity))
