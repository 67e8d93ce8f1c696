"""The NGSI-LD query languages: q, scopeQ, type expressions and geo-queries.

Pure parsers into immutable ASTs, their printers, name resolution with a
@context, and an in-memory evaluator over the internal expanded entity form
(ETSI GS CIM 009 clauses 4.9, 4.10, 4.11, 4.17, 4.19).
"""

from ngsi_ld.query.ast import (
    And,
    AttrPath,
    Boolean,
    Comparison,
    Date,
    DateTime,
    Exists,
    Number,
    Or,
    Pattern,
    QExpr,
    QValue,
    Range,
    Text,
    Time,
    Uri,
    ValueList,
)
from ngsi_ld.query.evaluate import (
    ANY_LANGUAGE,
    equal_numbers,
    instances,
    match_geo,
    match_q,
    matches,
)
from ngsi_ld.query.geo import (
    GeoQuery,
    bbox_for,
    distance_m,
    geo_matches,
    haversine_m,
    parse_geo_query,
    validate_geometry,
)
from ngsi_ld.query.model import DEFAULT_DATASET, EntityQuery
from ngsi_ld.query.qlang import format_q, parse_q
from ngsi_ld.query.regexes import MATCH_TIMEOUT, compile_pattern
from ngsi_ld.query.resolve import expand_values, resolve_names
from ngsi_ld.query.scope import (
    ScopeAnd,
    ScopeExpr,
    ScopeOr,
    ScopeTerm,
    matches_scope,
    parse_scope_q,
    validate_scope,
)
from ngsi_ld.query.typeexpr import (
    TypeAnd,
    TypeExpr,
    TypeName,
    TypeOr,
    any_of_names,
    format_type_expr,
    matches_types,
    parse_type_expr,
    type_names,
)

__all__ = [
    "ANY_LANGUAGE",
    "DEFAULT_DATASET",
    "MATCH_TIMEOUT",
    "And",
    "AttrPath",
    "Boolean",
    "Comparison",
    "Date",
    "DateTime",
    "EntityQuery",
    "Exists",
    "GeoQuery",
    "Number",
    "Or",
    "Pattern",
    "QExpr",
    "QValue",
    "Range",
    "ScopeAnd",
    "ScopeExpr",
    "ScopeOr",
    "ScopeTerm",
    "Text",
    "Time",
    "TypeAnd",
    "TypeExpr",
    "TypeName",
    "TypeOr",
    "Uri",
    "ValueList",
    "any_of_names",
    "bbox_for",
    "compile_pattern",
    "distance_m",
    "equal_numbers",
    "expand_values",
    "format_q",
    "format_type_expr",
    "geo_matches",
    "haversine_m",
    "instances",
    "match_geo",
    "match_q",
    "matches",
    "matches_scope",
    "matches_types",
    "parse_geo_query",
    "parse_q",
    "parse_scope_q",
    "parse_type_expr",
    "resolve_names",
    "type_names",
    "validate_geometry",
    "validate_scope",
]
