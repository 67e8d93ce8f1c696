"""Entities answered with their Linked Entities (clause 4.5.23) or in an earlier version (4.3.6.8).

Retrieve Entity and Query Entities render their entities one by one, from the
render cache, unless the request asks for Linked Entity retrieval (``join``) or
prefers an earlier NGSI-LD version; then :func:`render_entities` renders them:

* the Linked Entities are read from the store level by level (one query per
  hop, up to ``joinLevel``), only those held locally (4.5.23.1);
* ``join=inline`` (4.5.23.2): each Linking Entity carries its Linked Entities on
  the Relationships that target them; an entity is not inlined again below
  itself (no loops) nor when ``containedBy`` names it;
* ``join=flat`` (4.5.23.3): the Linked Entities follow the Linking Entities in
  one array, each once, in the order they were reached;
* a ``pick``/``omit`` with ``{...}`` projects the Linked Entities of that
  Relationship (4.21); a Relationship left out of the projection is not followed.

At most :data:`MAX_LINKED` Linked Entities are added to one answer.

:func:`resolve_linked_q` resolves the q terms on Linked Entity attributes
(``rel{attr}==value``, 4.9) into terms on the Relationships themselves before a
query runs (:mod:`ngsi_ld.query.linked`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ngsi_ld.bodies import GEO_JSON, JSON
from ngsi_ld.errors import BadRequestData, TooComplexQuery
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.linking import Join, attach, link_targets
from ngsi_ld.query import EntityQuery
from ngsi_ld.query.ast import Exists, QExpr
from ngsi_ld.query.linked import (
    Term,
    hinted_types,
    linked_depth,
    linked_terms,
    on_target,
    substitute,
    targets_term,
)
from ngsi_ld.view import View
from storage.base import Entity, Store

__all__ = ["MAX_LINKED", "MAX_LINKED_MATCHES", "Rendered", "render_entities",
           "resolve_linked_q"]

#: Linked Entities one answer holds at most (4.5.23.1: limit cascades)
MAX_LINKED = 1000
#: entities one hop of a linked q term may match (more: TooComplexQuery)
MAX_LINKED_MATCHES = 10000
#: entity ids read per store query
_FETCH_CHUNK = 200


@dataclass(slots=True)
class Rendered:
    """The rendered answer: one entity per root, or (flat) the roots then the Linked Entities."""

    entities: list[dict[str, Any]]
    #: some entity was amended to an earlier version (4.3.6.8: answered with 203)
    altered: bool


@dataclass(slots=True)
class _Node:
    view: View
    selected: Entity
    #: this entity and the ones above it (inline: never inlined again below them)
    ancestors: frozenset[str]
    children: dict[tuple[str, str], _Node] = field(default_factory=dict)


async def render_entities(store: Store, tenant: str, view: View, ctx: ActiveContext,
                          roots: Iterable[Entity]) -> Rendered:
    """Render ``roots`` as ``view`` says, with their Linked Entities if it joins."""
    altered = False
    nodes: list[_Node] = []
    for entity in roots:
        selected, amended = view.prepare(ctx, entity)
        altered = altered or amended
        nodes.append(_Node(view, selected, frozenset((entity["id"],))))
    join = view.join
    if join is None:
        return Rendered([view.render_selected(ctx, node.selected) for node in nodes], altered)
    found: dict[str, Entity | None] = {}
    # flat: every entity appears once in the array; containedBy: met before this request
    encountered = set(join.contained_by)
    if join.flat:
        encountered.update(entity_id for node in nodes for entity_id in node.ancestors)
    appended: list[_Node] = []
    frontier, budget = nodes, MAX_LINKED
    for _ in range(join.level):
        wanted: list[tuple[_Node, str, str]] = []
        for node in frontier:
            for attr, uri in link_targets(node.selected):
                if uri in encountered or uri in node.ancestors:
                    continue
                if join.flat:
                    encountered.add(uri)
                wanted.append((node, attr, uri))
            if len(wanted) >= budget:
                break  # no more can be added: do not read more
        if not wanted or budget == 0:
            break
        await _fetch(store, tenant, [uri for _, _, uri in wanted], found)
        next_frontier: list[_Node] = []
        for node, attr, uri in wanted:
            target = found.get(uri)
            if target is None or (attr, uri) in node.children or budget == 0:
                continue
            budget -= 1
            child_view = _linked_view(node.view, attr, inline=not join.flat)
            selected, amended = child_view.prepare(ctx, target)
            altered = altered or amended
            child = _Node(child_view, selected, node.ancestors | {uri})
            node.children[(attr, uri)] = child
            next_frontier.append(child)
            appended.append(child)
        frontier = next_frontier
    if join.flat:
        every = [*nodes, *appended]
        return Rendered([node.view.render_selected(ctx, node.selected) for node in every],
                        altered)
    return Rendered([_inline(ctx, node) for node in nodes], altered)


def _linked_view(view: View, attr: str, *, inline: bool) -> View:
    pick = view.pick_links.nested(attr) if view.pick_links is not None else None
    omit = view.omit_links.nested(attr) if view.omit_links is not None else None
    # inside a Feature's properties a Linked Entity is an entity, not a Feature
    media = JSON if inline and view.media_type == GEO_JSON else view.media_type
    return view.linked(pick, omit, media)


def _inline(ctx: ActiveContext, node: _Node) -> dict[str, Any]:
    if not node.children:
        return node.view.render_selected(ctx, node.selected)
    rendered = {key: _inline(ctx, child) for key, child in node.children.items()}
    return node.view.render_selected(ctx, attach(node.selected, rendered))


async def _fetch(store: Store, tenant: str, ids: list[str],
                 found: dict[str, Entity | None]) -> None:
    """Read the entities of ``ids`` not read yet into ``found`` (None: not held here)."""
    missing = [entity_id for entity_id in dict.fromkeys(ids) if entity_id not in found]
    for start in range(0, len(missing), _FETCH_CHUNK):
        chunk = missing[start:start + _FETCH_CHUNK]
        entities, _ = await store.query_entities(tenant, EntityQuery(ids=chunk))
        for entity in entities:
            found[entity["id"]] = entity
        for entity_id in chunk:
            found.setdefault(entity_id, None)


async def resolve_linked_q(store: Store, tenant: str, query: EntityQuery,
                           join: Join | None) -> EntityQuery:
    """``query`` with its q terms on Linked Entity attributes resolved (4.9 EXAMPLE 13).

    5.7.2.4: such terms need Linked Entity retrieval (``join``) at least as deep
    as they reach, else BadRequestData (too deep query).
    """
    q = query.q
    if q is None:
        return query
    depth = linked_depth(q)
    if depth == 0:
        return query
    if join is None:
        raise BadRequestData("q filters on Linked Entity attributes (rel{attr}): that needs "
                             "join=inline or join=flat")
    if depth > join.level:
        raise BadRequestData(f"q filters on Linked Entities {depth} hops away, deeper than "
                             f"joinLevel {join.level} (too deep query)")
    resolved: dict[Term, QExpr] = {}
    for term in linked_terms(q):
        current: QExpr = on_target(term)
        negated = isinstance(term, Exists) and term.negated
        for index, hop in reversed(list(enumerate(term.path.via))):
            # the entities this hop reaches that satisfy what is below it
            matched, _ = await store.query_entities(
                tenant, EntityQuery(q=current, type_expr=hinted_types(hop)),
                limit=MAX_LINKED_MATCHES + 1,
            )
            if len(matched) > MAX_LINKED_MATCHES:
                raise TooComplexQuery(
                    f"a Linked Entity term of q matches more than {MAX_LINKED_MATCHES} entities"
                )
            current = targets_term(hop.relationship, (entity["id"] for entity in matched),
                                   negated=negated and index == 0)
        resolved[term] = current
    return replace(query, q=substitute(q, resolved))
