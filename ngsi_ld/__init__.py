"""The NGSI-LD model (ETSI GS CIM 009), pure and free of I/O.

Data in, data out: requests arrive here already decoded, and nothing here reads
a socket, a file or a clock the caller did not pass in.

- ``ngsi_ld.model``: the internal entity form, typed once (Entity, Instance, Mutation, Change).
- ``ngsi_ld.errors``: the ProblemDetails error hierarchy.
- ``ngsi_ld.params`` / ``headers`` / ``prefer`` / ``bodies`` / ``paging`` / ``view``:
  request options on plain mappings and header values (clause 6.3), with the API's errors.
- ``ngsi_ld.jsonld``: @context compilation, entity expansion and compaction.
- ``ngsi_ld.entity`` / ``ngsi_ld.attributes`` / ``ngsi_ld.geojson``: parsing and validation.
- ``ngsi_ld.operations`` / ``ngsi_ld.attribute_ops`` / ``ngsi_ld.batch``: write semantics.
- ``ngsi_ld.changes``: the change event every write produces.
- ``ngsi_ld.representation``: normalized, concise, keyValues and GeoJSON output.
- ``ngsi_ld.query``: the q, scopeQ, type and geo query languages and their evaluator.
- ``ngsi_ld.federation``: context source registrations and distributed operations (pure part).
- ``ngsi_ld.temporal``: the temporal evolution: history records, temporal queries,
  pagination, aggregation and the temporal representations.
"""

from ngsi_ld.attributes import is_iri, is_term, parse_attribute
from ngsi_ld.changes import ChangeEvent, diff
from ngsi_ld.entity import parse_attributes, parse_entity, parse_fragment
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.geojson import is_geometry, validate_geometry
from ngsi_ld.jsonld import ActiveContext, compile_context, core_context_url
from ngsi_ld.model import Change, Entity, Instance, Mutation
from ngsi_ld.representation import (
    render_entity,
    select_attributes,
    to_feature,
    to_feature_collection,
)
from ngsi_ld.timeutil import now_iso, parse_datetime

__all__ = [
    "ActiveContext",
    "Change",
    "ChangeEvent",
    "Entity",
    "Instance",
    "Mutation",
    "NgsiLdError",
    "compile_context",
    "core_context_url",
    "diff",
    "is_geometry",
    "is_iri",
    "is_term",
    "now_iso",
    "parse_attribute",
    "parse_attributes",
    "parse_datetime",
    "parse_entity",
    "parse_fragment",
    "render_entity",
    "select_attributes",
    "to_feature",
    "to_feature_collection",
    "validate_geometry",
]
