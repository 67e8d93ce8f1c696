"""The temporal history of the memory store: instances in lists, the pure package for
everything else (no aggregation of its own: the service aggregates the instances)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace

from ngsi_ld.temporal import (
    SCOPE,
    EntityRecord,
    History,
    Instance,
    TemporalQuery,
    attribute_selector,
    to_micros,
    upsert,
)

from .temporal import INSTANCE_PREFIX, TemporalHistory, merge_record

__all__ = ["MemoryHistory", "time_key"]


def time_key(inst: Instance) -> int:
    """When an instance happened: observedAt, else when it was written (retention)."""
    for text in (inst.observed_at, inst.modified_at, inst.deleted_at, inst.created_at):
        if text is not None:
            return to_micros(text)
    return 0


class _Evolution:
    __slots__ = ("instances", "record")

    def __init__(self, record: EntityRecord) -> None:
        self.record = record
        self.instances: list[Instance] = []


class MemoryHistory(TemporalHistory):
    """Every tenant's temporal evolutions in process memory."""

    def __init__(self) -> None:
        self._tenants: dict[str, dict[str, _Evolution]] = {}
        self._ids = itertools.count(1)

    def new_instance_id(self) -> str:
        return f"{INSTANCE_PREFIX}{next(self._ids)}"

    def write(self, tenant: str, history: History, *, upserting: bool = False) -> None:
        """Record ``history`` (what a write or a temporal POST adds)."""
        evolutions = self._tenants.setdefault(tenant, {})
        entity_id = history.entity.entity_id
        evolution = evolutions.get(entity_id)
        if evolution is None:
            evolution = evolutions[entity_id] = _Evolution(history.entity)
        else:
            evolution.record = merge_record(evolution.record, history.entity)
        if upserting:
            evolution.instances = upsert(evolution.instances, history.instances)
        else:
            evolution.instances.extend(history.instances)

    # -- reads --------------------------------------------------------------------------
    async def temporal_entities(
        self, tenant: str, *, ids: Sequence[str] | None = None,
        types: Sequence[str] | None = None,
    ) -> list[EntityRecord]:
        evolutions = self._tenants.get(tenant, {})
        chosen = (evolutions.keys() if ids is None
                  else [i for i in dict.fromkeys(ids) if i in evolutions])
        wanted = None if types is None else set(types)
        records = [evolutions[i].record for i in chosen]
        if wanted is not None:
            records = [r for r in records if wanted.intersection(r.types)]
        return sorted(records, key=lambda r: r.entity_id)

    async def entities_with(self, tenant: str, attributes: Sequence[str]) -> set[str] | None:
        """Exactly those with an instance of one of ``attributes`` or of the Scope."""
        wanted = {*attributes, SCOPE}
        return {entity_id for entity_id, evolution in self._tenants.get(tenant, {}).items()
                if any(i.attribute in wanted for i in evolution.instances)}

    async def read_history(
        self, tenant: str, entity_ids: Sequence[str], attributes: Sequence[str] | None,
        query: TemporalQuery, per_series: int | None = None,
    ) -> dict[str, list[Instance]]:
        evolutions = self._tenants.get(tenant, {})
        wanted = None if attributes is None else set(attributes)
        out: dict[str, list[Instance]] = {}
        for entity_id in entity_ids:
            evolution = evolutions.get(entity_id)
            if evolution is None:
                continue
            out[entity_id] = [i for i in evolution.instances
                              if wanted is None or i.attribute in wanted
                              or i.attribute == SCOPE]
        return out

    # -- the temporal API's writes ------------------------------------------------------
    async def add_history(self, tenant: str, histories: Sequence[History]) -> None:
        for history in histories:
            self.write(tenant, history, upserting=True)

    async def delete_history(self, tenant: str, entity_id: str) -> bool:
        return self._tenants.get(tenant, {}).pop(entity_id, None) is not None

    async def delete_history_attribute(
        self, tenant: str, entity_id: str, attribute: str, dataset_id: str | None,
        delete_all: bool,
    ) -> int:
        evolution = self._tenants.get(tenant, {}).get(entity_id)
        if evolution is None:
            return 0
        chosen = attribute_selector(dataset_id, delete_all)
        kept = [i for i in evolution.instances if i.attribute != attribute or not chosen(i)]
        removed = len(evolution.instances) - len(kept)
        evolution.instances = kept
        return removed

    async def history_instance(
        self, tenant: str, entity_id: str, attribute: str, instance_id: str
    ) -> Instance | None:
        evolution = self._tenants.get(tenant, {}).get(entity_id)
        for inst in () if evolution is None else evolution.instances:
            if inst.attribute == attribute and inst.instance_id == instance_id:
                return inst
        return None

    async def replace_history_instance(self, tenant: str, entity_id: str,
                                       instance: Instance) -> bool:
        evolution = self._tenants.get(tenant, {}).get(entity_id)
        if evolution is None:
            return False
        for n, inst in enumerate(evolution.instances):
            if inst.instance_id == instance.instance_id:
                evolution.instances[n] = replace(instance)
                return True
        return False

    async def delete_history_instance(
        self, tenant: str, entity_id: str, attribute: str, instance_id: str
    ) -> bool:
        evolution = self._tenants.get(tenant, {}).get(entity_id)
        if evolution is None:
            return False
        kept = [i for i in evolution.instances
                if not (i.attribute == attribute and i.instance_id == instance_id)]
        removed = len(kept) != len(evolution.instances)
        evolution.instances = kept
        return removed

    async def drop_history_before(self, cutoff: int) -> int:
        removed = 0
        for evolutions in self._tenants.values():
            for evolution in evolutions.values():
                kept = [i for i in evolution.instances if time_key(i) >= cutoff]
                removed += len(evolution.instances) - len(kept)
                evolution.instances = kept
        return removed
