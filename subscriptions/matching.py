"""Which subscriptions a change event concerns (clauses 5.8 and 5.11).

Pure.  :class:`Matcher` is a stored subscription compiled once (type
expressions and ``q`` parsed and resolved, patterns compiled);
:class:`SubscriptionIndex` finds the matchers that can match an entity by its
id and types, so the cost of a change does not grow with the number of
subscriptions that cannot match it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ngsi_ld.changes import ChangeEvent
from ngsi_ld.model import Entity
from ngsi_ld.query import (
    EntityQuery,
    TypeAnd,
    TypeExpr,
    TypeName,
    compile_pattern,
    matches,
    matches_types,
    parse_geo_query,
    parse_q,
    parse_scope_q,
    parse_type_expr,
    resolve_names,
)
from ngsi_ld.query.regexes import search
from subscriptions.deletions import lost_an_instance
from subscriptions.guards import Guard, Guards, guard_of
from subscriptions.model import DEFAULT_TRIGGERS, q_text

Expand = Callable[[str], str]


@dataclass(frozen=True, slots=True)
class Selector:
    """One item of ``entities`` (5.2.33 EntitySelector); ``id`` takes precedence."""

    types: TypeExpr
    id: str | None = None
    id_pattern: str | None = None

    def selects(self, entity_id: str, entity_types: Iterable[str]) -> bool:
        """Whether this selector names the entity (by id or id pattern, and type); the
        entity's state is :meth:`Matcher.concerns`'s business."""
        if self.id is not None:
            if entity_id != self.id:
                return False
        elif self.id_pattern is not None and not search(self.id_pattern, entity_id):
            return False
        return matches_types(self.types, entity_types)

    def query(self) -> EntityQuery:
        """The selector as an entity query (for periodic notifications)."""
        if self.id is not None:
            return EntityQuery(ids=(self.id,), type_expr=self.types)
        return EntityQuery(id_pattern=self.id_pattern, type_expr=self.types)


@dataclass(frozen=True, slots=True)
class Matcher:
    """A subscription compiled for matching; names are expanded IRIs."""

    selectors: tuple[Selector, ...]
    watched: frozenset[str] | None
    triggers: frozenset[str]
    filters: EntityQuery | None  # q, geoQ, scopeQ and datasetId

    def concerns(self, event: ChangeEvent) -> bool:
        """True if ``event`` triggers a notification (5.11 notification triggers)."""
        entity = event.after if event.after is not None else event.before
        if entity is None:
            return False
        if self.selectors and not any(
            s.selects(event.entity_id, entity.get("type", ())) for s in self.selectors
        ):
            return False
        if not self._triggered(event, entity):
            return False
        return self.filters is None or matches(entity, self.filters)

    def _triggered(self, event: ChangeEvent, entity: Entity) -> bool:
        watched = self.watched
        if event.trigger in ("entityCreated", "entityDeleted") and event.trigger in self.triggers \
                and (watched is None or watched & set(entity.get("attrs", {}))):
            return True
        # the creation (deletion) of an entity creates (deletes) its attributes: below,
        # attributeCreated (attributeDeleted) is triggered by them
        changed = {name: what for name, what in event.attributes.items()
                   if watched is None or name in watched}
        # entityUpdated = attributeCreated + attributeUpdated + attributeDeleted, and
        # also a change of type or scope when no attribute is watched
        if (event.trigger == "entityUpdated" and "entityUpdated" in self.triggers
                and (changed or (watched is None and not event.attributes))):
            return True
        if any(what in self.triggers for what in changed.values()):
            return True
        # an instance deleted by datasetId while others remain is an attributeDeleted too
        return "attributeDeleted" in self.triggers and any(
            what == "attributeUpdated" and lost_an_instance(event, name)
            for name, what in changed.items())

    def periodic_queries(self) -> list[EntityQuery]:
        """One query per selector, with the filters, for the current state (timeInterval)."""
        out = []
        for selector in self.selectors:
            base = selector.query()
            if self.filters is not None:
                base = EntityQuery(ids=base.ids, id_pattern=base.id_pattern,
                                   type_expr=base.type_expr, q=self.filters.q,
                                   geo_q=self.filters.geo_q, scope_q=self.filters.scope_q,
                                   dataset_ids=self.filters.dataset_ids)
            out.append(base)
        return out


def compile_matcher(doc: dict[str, Any], expand: Expand) -> Matcher:
    """Compile a stored subscription; ``expand`` resolves the names in its ``q``."""
    selectors = []
    for sel in doc.get("entities") or ():
        if "idPattern" in sel:
            compile_pattern(sel["idPattern"], "idPattern")
        selectors.append(Selector(parse_type_expr(sel["type"]), sel.get("id"),
                                  sel.get("idPattern")))
    watched = doc.get("watchedAttributes")
    q = None if "q" not in doc else resolve_names(parse_q(q_text(doc["q"])), expand, expand)
    geo = doc.get("geoQ")
    geo_q = None if geo is None else parse_geo_query(
        geo["georel"], geo["geometry"], geo["coordinates"], geo["geoproperty"])
    scope_q = None if "scopeQ" not in doc else parse_scope_q(doc["scopeQ"])
    dataset_ids = doc.get("datasetId")
    filters = None
    if q is not None or geo_q is not None or scope_q is not None:
        filters = EntityQuery(q=q, geo_q=geo_q, scope_q=scope_q, dataset_ids=dataset_ids)
    return Matcher(
        selectors=tuple(selectors),
        watched=None if watched is None else frozenset(watched),
        triggers=frozenset(doc.get("notificationTrigger") or DEFAULT_TRIGGERS),
        filters=filters,
    )


def _index_names(expr: TypeExpr) -> list[str]:
    """Type names such that an entity matching ``expr`` has at least one of them."""
    if isinstance(expr, TypeName):
        return [expr.name]
    if isinstance(expr, TypeAnd):
        return _index_names(expr.terms[0])
    return [name for term in expr.terms for name in _index_names(term)]


class _Slot:
    """The subscriptions of one index slot, and what they watch.

    ``unwatched``: how many of them watch every attribute (no
    ``watchedAttributes``); ``names``: how many watch each attribute name;
    ``guards``: the keys filed by a condition on the entity (:mod:`.guards`).
    """

    __slots__ = ("guards", "keys", "names", "unwatched")

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.unwatched = 0
        self.names: Counter[str] = Counter()
        self.guards = Guards()

    def add(self, key: str, watched: frozenset[str] | None, guard: Guard | None) -> None:
        self.keys.add(key)
        self.guards.add(key, guard)
        if watched is None:
            self.unwatched += 1
        else:
            self.names.update(watched)

    def discard(self, key: str, watched: frozenset[str] | None, guard: Guard | None) -> None:
        self.keys.discard(key)
        self.guards.discard(key, guard)
        if watched is None:
            self.unwatched -= 1
        else:
            self.names.subtract(watched)
            for name in watched:
                if self.names[name] <= 0:
                    del self.names[name]

    def may_notify(self, old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Whether an update from attributes ``old`` to ``new`` (the entity exists
        before and after) can trigger one of these subscriptions."""
        if self.unwatched:
            return True
        names = self.names
        # 5.11: with watchedAttributes, an update notifies only if a watched attribute
        # changed (an unequal instance list: a superset of what ``diff`` reports)
        # (plain loops, not any() over generators: this runs on every update)
        if len(names) <= len(old) + len(new):
            for name in names:  # noqa: SIM110
                if old.get(name) != new.get(name):
                    return True
            return False
        for name, instances in old.items():
            if name in names and new.get(name) != instances:
                return True
        for name in new:  # noqa: SIM110
            if name in names and name not in old:
                return True
        return False


def _attrs(entity: Entity) -> dict[str, Any]:
    attrs = entity.get("attrs")
    return attrs if isinstance(attrs, dict) else {}


class SubscriptionIndex:
    """Subscription keys by tenant and entity id, entity type, or neither (any entity).

    A selector with an ``id`` is indexed by that id; any other selector by the
    type names an entity must have one of; a subscription without entities
    (watchedAttributes only) goes in the tenant's catch-all set.  Each slot also
    counts the attributes its subscriptions watch, so that an update of
    attributes none of them watches is known to concern none (:meth:`concerns`)
    without diffing the entity.
    """

    def __init__(self) -> None:
        self._by_id: dict[tuple[str, str], _Slot] = {}
        self._by_type: dict[tuple[str, str], _Slot] = {}
        self._any: dict[str, _Slot] = {}
        self._slots: dict[str, tuple[frozenset[str] | None, Guard | None,
                                     list[tuple[dict[Any, _Slot], Any]]]] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def add(self, key: str, tenant: str, matcher: Matcher) -> None:
        self.remove(key)
        slots: list[tuple[dict[Any, _Slot], Any]] = []
        if not matcher.selectors:
            slots.append((self._any, tenant))
        for selector in matcher.selectors:
            if selector.id is not None:
                slots.append((self._by_id, (tenant, selector.id)))
            else:
                slots += [(self._by_type, (tenant, name))
                          for name in _index_names(selector.types)]
        # a slot named twice (Room|Room, Room;Room) holds the key and its counts once
        slots = list({(id(table), slot): (table, slot) for table, slot in slots}.values())
        guard = guard_of(matcher.selectors, matcher.filters, matcher.watched)
        for table, slot in slots:
            found = table.get(slot)
            if found is None:
                found = table[slot] = _Slot()
            found.add(key, matcher.watched, guard)
        self._slots[key] = (matcher.watched, guard, slots)

    def remove(self, key: str) -> None:
        watched, guard, slots = self._slots.pop(key, (None, None, []))
        for table, slot in slots:
            found = table.get(slot)
            if found is not None:
                found.discard(key, watched, guard)
                if not found.keys:
                    del table[slot]

    def _found(self, tenant: str, entity_id: str, types: Iterable[str]) -> list[_Slot]:
        found = []
        slot = self._any.get(tenant)
        if slot is not None:
            found.append(slot)
        slot = self._by_id.get((tenant, entity_id))
        if slot is not None:
            found.append(slot)
        by_type = self._by_type
        for name in types:
            slot = by_type.get((tenant, name))
            if slot is not None:
                found.append(slot)
        return found

    def concerns(self, tenant: str, entity_id: str, types: Iterable[str],
                 before: Entity | None = None, after: Entity | None = None) -> bool:
        """Whether any subscription may concern this entity's write (False: none does).

        Without ``before`` and ``after``, whether ``candidates`` is not empty; with
        both (an update), also whether one of the candidates watches an attribute
        whose instances differ between them.
        """
        found = self._found(tenant, entity_id, types)
        if not found or before is None or after is None:
            return bool(found)
        old, new = _attrs(before), _attrs(after)
        for slot in found:  # noqa: SIM110 (a loop: cheaper than any() on every update)
            if slot.may_notify(old, new):
                return True
        return False

    def candidates(self, tenant: str, entity_id: str, types: Iterable[str],
                   entity: Entity | None = None, changed: Iterable[str] = ()) -> set[str]:
        """Keys of the subscriptions that may concern this entity (a superset).

        With ``entity`` (the state a change is matched on: after, else before) and
        the attributes the change touched, only those whose guard they meet
        (:mod:`.guards`)."""
        found: set[str] = set()
        for slot in self._found(tenant, entity_id, types):
            found |= (slot.keys if entity is None
                      else slot.guards.selected(entity_id, entity, changed))
        return found


__all__ = ["Matcher", "Selector", "SubscriptionIndex", "compile_matcher"]
