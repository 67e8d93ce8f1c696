"""Records expanded as the broker expands entities (its @contexts offline first)."""

from __future__ import annotations

from broker.contexts import ContextResolver
from broker.loader.sources import Decoder, Record
from broker.loader.template import RowTemplate, compile_template
from broker.outbound import OutboundPolicy
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Entity
from ngsi_ld.shapes import parse_expanded
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
        #: the last CSV decoder met and its compiled mapping (None: rows go the usual way)
        self._template: tuple[Decoder, RowTemplate | None] | None = None

    async def expand(self, record: Record) -> Entity:
        """The internal form of the record's entity; NgsiLdError when it is not valid."""
        entity = dict(record.entity or {})
        ctx = await self.context(entity.pop("@context", None))
        # a file's records mostly share a few shapes: filled in by their templates
        return parse_expanded(ctx, entity)

    async def context(self, context: object) -> ActiveContext:
        """The active context of an entity's ``@context`` member (None: the core one)."""
        if context is None or isinstance(context, str):
            ctx = self._by_url.get(context)
            if ctx is None:
                ctx = self._by_url[context] = await self.resolver.active(context)
            return ctx
        return await self.resolver.active(context)

    async def template(self, decoder: Decoder) -> RowTemplate | None:
        """The CSV mapping of ``decoder`` compiled (``broker.loader.template``): None for
        other formats, or where its rows go the usual way."""
        if decoder.format != "csv" or decoder.mapping is None:
            return None
        if self._template is not None and self._template[0] == decoder:
            return self._template[1]
        try:
            ctx = await self.context(decoder.mapping.context)
        except NgsiLdError:
            compiled = None  # the usual way refuses each row with the reason
        else:
            compiled = compile_template(decoder.mapping, decoder.header, ctx)
        self._template = (decoder, compiled)
        return compiled
