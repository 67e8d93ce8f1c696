"""The temporal evolution of Entities (ETSI GS CIM 009 v1.9.1, 4.5.6 to 4.5.9, 4.5.19,
4.11, 5.6.11 to 5.6.16, 5.7.3, 5.7.4, 6.3.10), pure: no I/O, no clock.

- :mod:`~ngsi_ld.temporal.model`: one recorded attribute instance, the Entity record.
- :mod:`~ngsi_ld.temporal.history`: what a committed write records.
- :mod:`~ngsi_ld.temporal.body`: the temporal representation as input (POST).
- :mod:`~ngsi_ld.temporal.edits`: upsert, instance correction, attribute deletion,
  retention.
- :mod:`~ngsi_ld.temporal.params`: timerel, timeAt, timeproperty, lastN, aggrMethods,
  aggrPeriodDuration, format and options, temporalQ.
- :mod:`~ngsi_ld.temporal.duration` and :mod:`~ngsi_ld.temporal.instants`: ISO 8601
  durations and instants.
- :mod:`~ngsi_ld.temporal.window`: the instances in a time window, lastN.
- :mod:`~ngsi_ld.temporal.filters`: q, geo-queries and scopeQ on history (5.7.4.4).
- :mod:`~ngsi_ld.temporal.pagination`: the instance limit and Content-Range.
- :mod:`~ngsi_ld.temporal.aggregate`: the reference aggregation.
- :mod:`~ngsi_ld.temporal.render`: normalized, temporalValues and aggregatedValues.

docs/temporal.md describes how the broker and its stores use them.
"""

from ngsi_ld.temporal.aggregate import AggregatedSeries, aggregate, apply_method
from ngsi_ld.temporal.body import (
    latest_state,
    parse_instance_fragment,
    parse_temporal_attributes,
    parse_temporal_entity,
    temporal_history,
)
from ngsi_ld.temporal.duration import Duration, parse_duration
from ngsi_ld.temporal.edits import (
    attribute_selector,
    check_instance_id,
    patch_instance,
    retention_cutoff,
    upsert,
)
from ngsi_ld.temporal.filters import as_entity, scope_validity, select_entity
from ngsi_ld.temporal.history import WRITE_TIME, history_of_write, recorder_at
from ngsi_ld.temporal.instants import format_micros, to_micros
from ngsi_ld.temporal.model import (
    NULL,
    SCOPE,
    TIME_PROPERTIES,
    EntityRecord,
    History,
    Instance,
    InstanceIds,
    TimeProperty,
    from_internal,
    split_internal,
)
from ngsi_ld.temporal.pagination import (
    DEFAULT_INSTANCE_LIMIT,
    ContentRange,
    Page,
    instance_limit,
    paginate,
)
from ngsi_ld.temporal.params import (
    AGGR_METHODS,
    TEMPORAL_OPERATIONS,
    Aggregation,
    AggrMethod,
    TemporalOptions,
    TemporalQuery,
    check_projection,
    parse_last_n,
    parse_temporal_options,
    parse_temporal_order,
    parse_temporal_post,
    parse_temporal_query,
)
from ngsi_ld.temporal.render import TemporalEntity, render_temporal
from ngsi_ld.temporal.window import Series, keep_last, select

__all__ = [
    "AGGR_METHODS",
    "DEFAULT_INSTANCE_LIMIT",
    "NULL",
    "SCOPE",
    "TEMPORAL_OPERATIONS",
    "TIME_PROPERTIES",
    "WRITE_TIME",
    "AggrMethod",
    "AggregatedSeries",
    "Aggregation",
    "ContentRange",
    "Duration",
    "EntityRecord",
    "History",
    "Instance",
    "InstanceIds",
    "Page",
    "Series",
    "TemporalEntity",
    "TemporalOptions",
    "TemporalQuery",
    "TimeProperty",
    "aggregate",
    "apply_method",
    "as_entity",
    "attribute_selector",
    "check_instance_id",
    "check_projection",
    "format_micros",
    "from_internal",
    "history_of_write",
    "instance_limit",
    "keep_last",
    "latest_state",
    "paginate",
    "parse_duration",
    "parse_instance_fragment",
    "parse_last_n",
    "parse_temporal_attributes",
    "parse_temporal_entity",
    "parse_temporal_options",
    "parse_temporal_order",
    "parse_temporal_post",
    "parse_temporal_query",
    "patch_instance",
    "recorder_at",
    "render_temporal",
    "retention_cutoff",
    "scope_validity",
    "select",
    "select_entity",
    "split_internal",
    "temporal_history",
    "to_micros",
    "upsert",
]
