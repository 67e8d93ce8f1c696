"""The URI query parameters each NGSI-LD operation accepts (clause 6 of ETSI GS CIM 009 v1.9.1).

A request naming a parameter its operation does not define is refused with 400
InvalidRequest (clause 6.3.20 of the test purposes, as Orion-LD answers "unknown URI
parameter"): a misspelt ``tpye=`` or ``limt=`` would otherwise be ignored silently
and answer something the client did not ask for.

``local`` is accepted everywhere the spec defines it: this broker answers from
its own data only, which is what ``local=true`` asks for.  Parameters are added
here when the operation implements them.
"""

from __future__ import annotations

from collections.abc import Iterable

from ngsi_ld.errors import InvalidRequest
from ngsi_ld.temporal.params import TEMPORAL_OPERATIONS

#: 6.4.3.2: the selectors shared by the GET and the purge of /entities
ENTITY_SELECTORS = frozenset({
    "id", "idPattern", "type", "attrs", "q", "scopeQ", "csf",
    "georel", "geometry", "coordinates", "geoproperty", "datasetId", "lang", "local",
})
#: 6.3.7, 6.3.16 and 4.5.x: how a retrieved entity is represented
REPRESENTATION = frozenset({
    "options", "format", "attrs", "pick", "omit", "lang", "geometryProperty", "datasetId",
    "local",
})
PAGING = frozenset({"limit", "offset", "count"})
#: 4.5.23: Linked Entity retrieval
LINKING = frozenset({"join", "joinLevel", "containedBy"})
#: 4.23: Entity ordering
ORDERING = frozenset({"orderBy", "orderFrom", "orderGeometry", "collation"})

#: operation name -> the query parameters it accepts
OPERATIONS: dict[str, frozenset[str]] = {
    # 5.6 and 5.7: entities and their attributes
    "createEntity": frozenset({"local"}),
    "queryEntities": (
        ENTITY_SELECTORS | REPRESENTATION | PAGING | ORDERING | LINKING
        | {"expandValues", "splitEntities", "entityMap"}
    ),
    "purgeEntities": ENTITY_SELECTORS | {"keep", "drop"},
    "retrieveEntity": REPRESENTATION | LINKING | {"type", "entityMap"},
    "deleteEntity": frozenset({"type", "local"}),
    "mergeEntity": frozenset({"options", "format", "type", "observedAt", "lang", "local"}),
    "replaceEntity": frozenset({"options", "type", "local"}),
    "appendAttributes": frozenset({"options", "type", "local"}),
    "updateAttributes": frozenset({"options", "type", "local"}),
    "updateAttribute": frozenset({"options", "type", "local"}),
    "replaceAttribute": frozenset({"options", "type", "local"}),
    "deleteAttribute": frozenset({"deleteAll", "datasetId", "type", "local"}),
    # 5.6.7 to 5.6.10, 5.6.20, 5.7.2 (POST): batch operations
    "batchCreate": frozenset({"options", "local"}),
    "batchUpsert": frozenset({"options", "local"}),
    "batchUpdate": frozenset({"options", "local"}),
    "batchMerge": frozenset({"options", "local"}),
    "batchDelete": frozenset({"local"}),
    "queryEntitiesPost": PAGING | {"options", "format", "local", "splitEntities", "entityMap"},
    # 5.7.5 to 5.7.12: discovery
    "retrieveTypes": frozenset({"details", "local"}),
    "retrieveType": frozenset({"local"}),
    "retrieveAttributes": frozenset({"details", "local"}),
    "retrieveAttribute": frozenset({"local"}),
    # 5.8: subscriptions
    "createSubscription": frozenset({"local"}),
    "querySubscriptions": PAGING | {"options", "local"},
    "retrieveSubscription": frozenset({"options", "local"}),
    "updateSubscription": frozenset({"local"}),
    "deleteSubscription": frozenset({"local"}),
    # 5.9, 5.10: context source registrations
    "registerCSource": frozenset({"local"}),
    "queryCSourceRegistrations": (
        PAGING | {"id", "idPattern", "type", "attrs", "q", "csf", "scopeQ", "georel",
                  "geometry", "coordinates", "geoproperty", "timeproperty", "timerel",
                  "timeAt", "endTimeAt", "options", "lang", "local"}
    ),
    "retrieveCSourceRegistration": frozenset({"options", "local"}),
    "updateCSourceRegistration": frozenset({"local"}),
    "deleteCSourceRegistration": frozenset({"local"}),
    # 5.11: context source registration subscriptions
    "createCSourceRegistrationSubscription": frozenset({"local"}),
    "queryCSourceRegistrationSubscriptions": PAGING | {"options", "local"},
    "retrieveCSourceRegistrationSubscription": frozenset({"options", "local"}),
    "updateCSourceRegistrationSubscription": frozenset({"local"}),
    "deleteCSourceRegistrationSubscription": frozenset({"local"}),
    # 5.16: snapshots
    "createSnapshot": frozenset(),
    "purgeSnapshots": frozenset({"q"}),
    "retrieveSnapshot": frozenset(),
    "updateSnapshot": frozenset(),
    "deleteSnapshot": frozenset(),
    "cloneSnapshot": frozenset(),
    # 5.15: the context source identity
    "retrieveSourceIdentity": frozenset(),
    # 5.13: @context management
    "addContext": frozenset(),
    "listContexts": frozenset({"details", "kind"}),
    "serveContext": frozenset({"details"}),
    "deleteContext": frozenset({"reload"}),
    # 5.6.11 to 5.6.16, 5.7.3, 5.7.4: the temporal evolution of entities
    **TEMPORAL_OPERATIONS,
}


def check_parameters(operation: str, names: Iterable[str]) -> None:
    """Refuse (400 InvalidRequest) a query parameter ``operation`` does not define."""
    allowed = OPERATIONS[operation]
    unknown = sorted({name for name in names if name not in allowed})
    if unknown:
        raise InvalidRequest(
            f"unknown query parameter(s) {', '.join(unknown)} for {operation}; "
            f"allowed: {', '.join(sorted(allowed)) or 'none'}"
        )
