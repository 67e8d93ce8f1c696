"""The selectors of an entity query, already parsed (clauses 5.7.2 and 5.7.3).

:class:`EntityQuery` bundles what GET /entities and POST /entityOperations/query
select entities by.  The HTTP layer builds it from the request, resolves its
names with :func:`ngsi_ld.query.resolve_names`, and hands it to the store (or to
:func:`ngsi_ld.query.matches` for in-memory evaluation).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ngsi_ld.errors import BadRequestData
from ngsi_ld.query.ast import And, Or, QExpr
from ngsi_ld.query.geo import GeoQuery
from ngsi_ld.query.regexes import compile_pattern
from ngsi_ld.query.scope import ScopeExpr
from ngsi_ld.query.typeexpr import TypeExpr

#: the datasetId that selects the default instance (the one without a datasetId)
DEFAULT_DATASET = "@none"
#: the system attributes of an entity (clause 4.8): no selection on their own
SYSTEM_NAMES = frozenset({"createdAt", "modifiedAt", "deletedAt"})


def _strings(value: Sequence[str] | None, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    items = tuple(value)
    if not items or not all(isinstance(item, str) and item for item in items):
        raise BadRequestData(f"{what} must be a non-empty list of non-empty strings")
    return items


@dataclass(frozen=True)
class EntityQuery:
    """What to select; every field given must hold (they are ANDed).

    * ``ids``: the entity id is one of these;
    * ``id_pattern``: a regular expression found in the entity id (bounded, see
      :mod:`ngsi_ld.query.regexes`);
    * ``type_expr``: the entity types satisfy this type expression;
    * ``attrs``: the entity has at least one of these attributes;
    * ``q``, ``scope_q``, ``geo_q``: the query, scope and geo-query hold;
    * ``dataset_ids``: only attribute instances with one of these datasetIds
      (``"@none"`` = the default instance) count, for ``q`` and ``geo_q``; an
      entity has one of ``attrs`` whatever the datasetIds of its instances (they
      choose the view, 4.5.5);
    * ``lang``: the language filter; it selects what is rendered, not which
      entities match, so the evaluator ignores it.

    Lists are stored as tuples (a single string counts as a one-item list); an
    invalid ``id_pattern`` or an empty list is BadRequestData.
    """

    ids: Sequence[str] | None = None
    id_pattern: str | None = None
    type_expr: TypeExpr | None = None
    attrs: Sequence[str] | None = None
    q: QExpr | None = None
    scope_q: ScopeExpr | None = None
    geo_q: GeoQuery | None = None
    dataset_ids: Sequence[str] | None = None
    lang: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ids", _strings(self.ids, "id"))
        object.__setattr__(self, "attrs", _strings(self.attrs, "attrs"))
        object.__setattr__(self, "dataset_ids", _strings(self.dataset_ids, "datasetId"))
        if self.id_pattern is not None:
            compile_pattern(self.id_pattern, "idPattern")

    @property
    def has_selector(self) -> bool:
        """True if anything restricts the result (the spec forbids unrestricted queries)."""
        return any(
            value is not None
            for value in (
                self.ids,
                self.id_pattern,
                self.type_expr,
                self.attrs,
                self.q,
                self.scope_q,
                self.geo_q,
            )
        )

    @property
    def has_required_selector(self) -> bool:
        """True if the query names a type, attrs, q or a geo-query.

        Table 6.4.3.2-1: one of these shall be present unless the request is limited
        to the local scope; ids, idPattern or scopeQ alone are too broad, and so are
        attrs or a q that name only system attributes (5.7.2.4; names as written).
        """
        if self.type_expr is not None or self.geo_q is not None:
            return True
        if self.attrs is not None and not SYSTEM_NAMES.issuperset(self.attrs):
            return True
        return self.q is not None and not SYSTEM_NAMES.issuperset(_attributes(self.q))


def _attributes(expr: QExpr) -> set[str]:
    """The attributes the terms of a q expression start from."""
    if isinstance(expr, And | Or):
        return set().union(*(_attributes(term) for term in expr.terms))
    return {expr.path.names[0]}
