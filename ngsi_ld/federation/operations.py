"""The operations a Context Source may support (ETSI GS CIM 009 v1.9.1 clause 4.20).

A registration's ``operations`` member lists operation names (Table 4.20-1)
and operation groups (Table 4.20-2); without it the source supports
``federationOps``.  The broker forwards an operation to a source only if the
source supports it (4.3.6.1: "Context Brokers shall respect this, to avoid
unnecessarily sending distributed operation requests which are always
guaranteed to fail").

The registration keeps ``operations`` as the client wrote it (a retrieval
shows it back unchanged); :func:`supported_operations` expands the groups once
for matching.
"""

from __future__ import annotations

from collections.abc import Iterable

from ngsi_ld.errors import BadRequestData

# Table 4.20-1, context information provision (5.6) and its temporal variants (5.6.11ff)
PROVISION: frozenset[str] = frozenset({
    "createEntity", "updateEntity", "appendAttrs", "updateAttrs", "deleteAttrs",
    "deleteEntity", "createBatch", "upsertBatch", "updateBatch", "deleteBatch",
    "upsertTemporal", "appendAttrsTemporal", "deleteAttrsTemporal",
    "updateAttrInstanceTemporal", "deleteAttrInstanceTemporal", "deleteTemporal",
    "mergeEntity", "replaceEntity", "replaceAttrs", "mergeBatch", "purgeEntity",
})
# Table 4.20-1, context information consumption (5.7)
CONSUMPTION: frozenset[str] = frozenset({
    "retrieveEntity", "queryEntity", "queryBatch", "retrieveTemporal", "queryTemporal",
    "retrieveEntityTypes", "retrieveEntityTypeDetails", "retrieveEntityTypeInfo",
    "retrieveAttrTypes", "retrieveAttrTypeDetails", "retrieveAttrTypeInfo",
})
# Table 4.20-1, context information subscription (5.8)
SUBSCRIPTION: frozenset[str] = frozenset({
    "createSubscription", "updateSubscription", "retrieveSubscription",
    "querySubscription", "deleteSubscription",
})
# Table 4.20-1, Entity maps (5.14) and the Context Source identity (5.15)
ENTITY_MAPS: frozenset[str] = frozenset({
    "retrieveEntityMap", "updateEntityMap", "deleteEntityMap",
    "createEntityMapQueryEntity", "createEntityMapQueryTemporal",
})
IDENTITY: frozenset[str] = frozenset({"retrieveContextSourceIdentity"})

#: every operation name of Table 4.20-1
OPERATIONS: frozenset[str] = PROVISION | CONSUMPTION | SUBSCRIPTION | ENTITY_MAPS | IDENTITY

#: names earlier versions of Table 4.20-1 used, read as today's operation
ALIASES: dict[str, str] = {"updateAttrsTemporal": "updateAttrInstanceTemporal"}

_DISCOVERY = frozenset({
    "retrieveEntityTypes", "retrieveEntityTypeDetails", "retrieveEntityTypeInfo",
    "retrieveAttrTypes", "retrieveAttrTypeDetails", "retrieveAttrTypeInfo",
})
_MAP_SUPPORT = ENTITY_MAPS - {"createEntityMapQueryTemporal"}

# Table 4.20-2: the groups an ``operations`` member may name instead of the operations.
#: the operations a federating broker needs; the default set (5.2.9)
FEDERATION_OPS: frozenset[str] = (
    frozenset({"retrieveEntity", "queryEntity", "queryBatch"})
    | _DISCOVERY | SUBSCRIPTION | _MAP_SUPPORT | IDENTITY
)
#: federationOps without the Entity map support
ASSOCIATION_OPS: frozenset[str] = FEDERATION_OPS - ENTITY_MAPS
UPDATE_OPS: frozenset[str] = frozenset({
    "updateEntity", "updateAttrs", "replaceEntity", "replaceAttrs",
})
RETRIEVE_OPS: frozenset[str] = frozenset({"retrieveEntity", "queryEntity"})
#: what a proxied (exclusive or redirect) source needs for the entities it holds
REDIRECTION_OPS: frozenset[str] = (
    frozenset({
        "createEntity", "updateEntity", "appendAttrs", "updateAttrs", "deleteAttrs",
        "deleteEntity", "mergeEntity", "replaceEntity", "replaceAttrs", "retrieveEntity",
        "queryEntity", "purgeEntity",
    })
    | _DISCOVERY | _MAP_SUPPORT | IDENTITY
)
GROUPS: dict[str, frozenset[str]] = {
    "federationOps": FEDERATION_OPS,
    "associationOps": ASSOCIATION_OPS,
    "updateOps": UPDATE_OPS,
    "retrieveOps": RETRIEVE_OPS,
    "redirectionOps": REDIRECTION_OPS,
}
DEFAULT_OPERATIONS: tuple[str, ...] = ("federationOps",)


#: the broker's operation names (``ngsi_ld.parameters``) -> Table 4.20-1, which follows
#: the OpenAPI operationIds: ``updateEntity`` is PATCH /entities/{id}/attrs (5.6.2),
#: ``updateAttrs`` PATCH /entities/{id}/attrs/{attrId} (5.6.4)
TABLE_4_20: dict[str, str] = {
    "createEntity": "createEntity", "retrieveEntity": "retrieveEntity",
    "queryEntities": "queryEntity", "queryEntitiesPost": "queryBatch",
    "deleteEntity": "deleteEntity", "mergeEntity": "mergeEntity",
    "replaceEntity": "replaceEntity", "appendAttributes": "appendAttrs",
    "updateAttributes": "updateEntity", "updateAttribute": "updateAttrs",
    "replaceAttribute": "replaceAttrs", "deleteAttribute": "deleteAttrs",
    "batchCreate": "createBatch", "batchUpsert": "upsertBatch", "batchUpdate": "updateBatch",
    "batchMerge": "mergeBatch", "batchDelete": "deleteBatch", "purgeEntities": "purgeEntity",
    "retrieveTypes": "retrieveEntityTypes", "retrieveType": "retrieveEntityTypeInfo",
    "retrieveAttributes": "retrieveAttrTypes", "retrieveAttribute": "retrieveAttrTypeInfo",
    "createSubscription": "createSubscription", "querySubscriptions": "querySubscription",
    "retrieveSubscription": "retrieveSubscription",
    "updateSubscription": "updateSubscription", "deleteSubscription": "deleteSubscription",
    "retrieveSourceIdentity": "retrieveContextSourceIdentity",
    # 5.6.11 to 5.6.16: the temporal writes (the reads, 5.7.3 and 5.7.4, keep their names)
    "upsertTemporal": "upsertTemporal", "appendAttrsTemporal": "appendAttrsTemporal",
    "deleteAttrsTemporal": "deleteAttrsTemporal",
    "updateAttrsTemporal": "updateAttrInstanceTemporal",
    "deleteAttrInstanceTemporal": "deleteAttrInstanceTemporal",
    "deleteTemporal": "deleteTemporal",
}


def table_operation(name: str, *, details: bool = False) -> str | None:
    """The Table 4.20-1 name of a broker operation (None: never distributed).

    ``details`` is the ``details=true`` of the type and attribute discovery,
    which Table 4.20-1 names apart (``retrieveEntityTypeDetails``...).
    """
    found = TABLE_4_20.get(name)
    if found is not None and details and found in ("retrieveEntityTypes", "retrieveAttrTypes"):
        return found.replace("Types", "TypeDetails")
    return found


def is_operation(name: object) -> bool:
    """True for an operation name or group an ``operations`` member may hold."""
    return isinstance(name, str) and (name in OPERATIONS or name in GROUPS or name in ALIASES)


def supported_operations(names: Iterable[str] | None) -> frozenset[str]:
    """The operations ``names`` (a registration's ``operations``) stand for.

    ``None`` (no ``operations`` member) is the default, ``federationOps``.
    Unknown names are BadRequestData (validation happens before this, so a
    stored registration never has one).
    """
    out: set[str] = set()
    for name in DEFAULT_OPERATIONS if names is None else names:
        if name in GROUPS:
            out |= GROUPS[name]
        elif name in OPERATIONS:
            out.add(name)
        elif name in ALIASES:
            out.add(ALIASES[name])
        else:
            raise BadRequestData(f"unknown operation {name!r} (clause 4.20)")
    return frozenset(out)


def writes(names: Iterable[str]) -> list[str]:
    """The names in ``names`` that provide context information (create, update, delete).

    A group counts when it contains a provision operation (``updateOps``,
    ``redirectionOps``).
    """
    out = []
    for name in names:
        ops = GROUPS.get(name) or {ALIASES.get(name, name)}
        if ops & PROVISION:
            out.append(name)
    return out


__all__ = [
    "ASSOCIATION_OPS",
    "CONSUMPTION",
    "DEFAULT_OPERATIONS",
    "ENTITY_MAPS",
    "FEDERATION_OPS",
    "GROUPS",
    "OPERATIONS",
    "PROVISION",
    "REDIRECTION_OPS",
    "RETRIEVE_OPS",
    "SUBSCRIPTION",
    "TABLE_4_20",
    "UPDATE_OPS",
    "is_operation",
    "supported_operations",
    "table_operation",
    "writes",
]
