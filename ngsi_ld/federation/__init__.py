"""Context sources, registrations and distributed operations (ETSI GS CIM 009 v1.9.1).

Clauses 4.3.6 (distributed operations), 5.9 to 5.14 (registrations, discovery,
registration subscriptions, entity maps) and 6.3.17/6.3.18 (warnings, Via).

Pure, like the rest of :mod:`ngsi_ld`: no I/O, and no clock a caller did not
pass in.  Phase 1 of issue 16; the service layer forwards and persists
(docs/federation.md).  Modules, one concept each:

- ``operations``: the operation names and groups of clause 4.20;
- ``model``: the registration and its parts, immutable;
- ``registration`` / ``members``: validation of a new registration (5.9.2);
- ``fragment``: Update Context Source Registration (5.9.3);
- ``document``: the retrieval view (5.10.1) and the stored record;
- ``discovery``: Query Context Source Registrations (5.10.2) as an evaluator;
- ``selection`` / ``planning`` / ``writes``: which registrations a request
  concerns and what each source is asked (4.3.6, 5.12);
- ``conflicts``: Conflict rules of exclusive and redirect registrations;
- ``merge``: one answer from the broker's and the sources' entities (4.5.5);
- ``headers``: Via and loop detection, NGSILD-Warning, forwarded headers;
- ``entitymap``: Entity maps and their paging (5.14, 5.5.9.3);
- ``durations``: ISO 8601 durations.
"""

from ngsi_ld.federation.conflicts import conflict_probes, local_conflict, registration_conflict
from ngsi_ld.federation.discovery import (
    RegistrationQuery,
    registration_query,
    trigger_reason,
)
from ngsi_ld.federation.document import (
    registration_from_record,
    registration_record,
    render_registration,
)
from ngsi_ld.federation.durations import duration_seconds, is_duration
from ngsi_ld.federation.entitymap import (
    EntityMap,
    Pager,
    apply_map_update,
    build_entity_map,
    by_source,
    lifetime,
    render_entity_map,
)
from ngsi_ld.federation.fragment import apply_fragment
from ngsi_ld.federation.headers import (
    FROM_REQUEST,
    Hop,
    LoopDetected,
    Outbound,
    WarnCode,
    append_via,
    forward_headers,
    guard_loop,
    link_header,
    parse_via,
    source_warning,
    visited,
    warning,
)
from ngsi_ld.federation.merge import (
    LOCAL,
    Answer,
    Fragment,
    Page,
    fill_gaps,
    merge_answers,
    merge_entity,
    paginate,
)
from ngsi_ld.federation.model import (
    DeliveryStatus,
    EntityInfo,
    Management,
    Mode,
    Registration,
    RegistrationInfo,
    TimeInterval,
)
from ngsi_ld.federation.operations import GROUPS, OPERATIONS, supported_operations
from ngsi_ld.federation.planning import (
    QUERY,
    RETRIEVE,
    Candidate,
    Claim,
    ReadPlan,
    Selection,
    SourceRequest,
    candidates,
    plan_reads,
    plan_retrieve,
)
from ngsi_ld.federation.registration import check_registration, parse_registration
from ngsi_ld.federation.selection import TemporalQuery, parse_temporal_query, source_properties
from ngsi_ld.federation.writes import (
    BatchForward,
    Forward,
    PartResult,
    Refusal,
    WriteOutcome,
    WritePlan,
    group_batch,
    plan_write,
    write_outcome,
)

__all__ = [
    "FROM_REQUEST",
    "GROUPS",
    "LOCAL",
    "OPERATIONS",
    "QUERY",
    "RETRIEVE",
    "Answer",
    "BatchForward",
    "Candidate",
    "Claim",
    "DeliveryStatus",
    "EntityInfo",
    "EntityMap",
    "Forward",
    "Fragment",
    "Hop",
    "LoopDetected",
    "Management",
    "Mode",
    "Outbound",
    "Page",
    "Pager",
    "PartResult",
    "ReadPlan",
    "Refusal",
    "Registration",
    "RegistrationInfo",
    "RegistrationQuery",
    "Selection",
    "SourceRequest",
    "TemporalQuery",
    "TimeInterval",
    "WarnCode",
    "WriteOutcome",
    "WritePlan",
    "append_via",
    "apply_fragment",
    "apply_map_update",
    "build_entity_map",
    "by_source",
    "candidates",
    "check_registration",
    "conflict_probes",
    "duration_seconds",
    "fill_gaps",
    "forward_headers",
    "group_batch",
    "guard_loop",
    "is_duration",
    "lifetime",
    "link_header",
    "local_conflict",
    "merge_answers",
    "merge_entity",
    "paginate",
    "parse_registration",
    "parse_temporal_query",
    "parse_via",
    "plan_reads",
    "plan_retrieve",
    "plan_write",
    "registration_conflict",
    "registration_from_record",
    "registration_query",
    "registration_record",
    "render_entity_map",
    "render_registration",
    "source_properties",
    "source_warning",
    "supported_operations",
    "trigger_reason",
    "visited",
    "warning",
    "write_outcome",
]
