"""The plain values of one request, as the service reads them (no web framework)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.service.source_renders import PageRendering
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.params import Params, QueryParams

__all__ = ["Call"]


@dataclass(slots=True)
class Call:
    """The plain values of one request an operation reads besides its body and path ids.

    ``link`` is the raw Link header (the answer cache keys on it), ``prefer``
    the Prefer headers joined; ``snapshot_used`` is set when a read was
    answered from a Snapshot (6.3.22: the answer names it).
    """

    params: Params = field(default_factory=QueryParams)
    #: every header of the request (case-insensitive when the adapter's are): what
    #: forwarding to context sources copies (``contextSourceInfo``, ``Via``)
    headers: Mapping[str, str] = field(default_factory=dict)
    ngsild_tenant: str | None = None
    fiware_service: str | None = None
    accept: str | None = None
    link: str | None = None
    prefer: str | None = None
    snapshot: str | None = None
    path: str = ""
    path_qs: str = ""
    snapshot_used: str | None = None
    #: ``NGSILD-Warning`` values the answer carries (6.3.17: context sources that failed,
    #: timed out or answered nonsense), added by the Sources seam, written by the adapter
    warnings: list[str] = field(default_factory=list)
    #: the request's compiled @context once the operation resolved it (what forwarding
    #: compacts names with and expands ``csf`` with)
    active: ActiveContext | None = None
    #: 5.2.39 linkedMaps: the Entity maps of sources (registration id -> the map's URL)
    #: that the Entity map being walked names, sent to those sources as their
    #: ``NGSILD-EntityMap``
    linked_maps: Mapping[str, str] = field(default_factory=dict)
    #: set (empty) while an Entity map is made: the sources are asked for their own maps
    #: and those they answered are recorded here, for the new map's linkedMaps
    source_maps: dict[str, str] | None = None
    #: set by a read whose answer depends on nothing but the request as sent, the
    #: store's data_version and the compiled @context (``broker.service.hot``): the
    #: tenant, the data_version read before the answer, the request's @context value
    reusable: tuple[str, Hashable, Any] | None = None
    #: RFC 9111 5.2.1.4: the request's ``Cache-Control: no-cache``: no kept answer
    #: (``caches.AnswerCache``, ``hot``) serves it, the answer is computed afresh
    fresh: bool = False
    #: set by a query whose page may be rendered from the renderings kept of the
    #: sources' entities (``broker.service.source_renders``), for the merge to fill
    rendering: PageRendering | None = None

    @property
    def via(self) -> tuple[str, ...]:
        """The ``Via`` header's entries (RFC 9110 7.6.3): brokers the request passed."""
        value = self.headers.get("Via")
        if not value:
            return ()
        return tuple(part.strip() for part in value.split(",") if part.strip())
