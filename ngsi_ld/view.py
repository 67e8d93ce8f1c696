"""How a request wants entities rendered (clause 5.7.1 retrieval options, 4.21, 4.5.23).

:class:`View` bundles the representation (normalized, concise, keyValues,
GeoJSON), the projection (attrs, pick, omit, datasetId), the language filter,
Linked Entity retrieval (join) and the version preference of one request;
:func:`view_of` and :func:`make_view` build it from a GET's query parameters
(:class:`~ngsi_ld.params.Params`) or a Query body (names expanded with the
request's @context).  ``prefer`` is the request's ``Prefer`` header value.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ngsi_ld.bodies import GEO_JSON
from ngsi_ld.errors import BadRequestData, InvalidRequest, ResourceNotFound
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.linking import Join, check_projection_depth, parse_join
from ngsi_ld.model import Entity
from ngsi_ld.params import Params, comma_list, options_of
from ngsi_ld.prefer import preferred_version
from ngsi_ld.projection import Projection, parse_projection
from ngsi_ld.representation import (
    DuplicateName,
    Format,
    render_entity,
    select_attributes,
    to_feature,
)
from ngsi_ld.versions import Version, amend_entity

#: the query parameters of Linked Entity retrieval (4.5.23)
_LINKING = frozenset({"join", "joinLevel", "containedBy"})
READ_OPTIONS = frozenset({"keyValues", "simplified", "concise", "normalized", "sysAttrs"})
FORMATS: dict[str, Format] = {
    "keyValues": "keyValues",
    "simplified": "keyValues",
    "concise": "concise",
    "normalized": "normalized",
}


#: the query parameters :func:`view_of` reads
_VIEW_PARAMS = frozenset({"options", "format", "attrs", "pick", "omit", "datasetId", "lang",
                          "geometryProperty", *_LINKING})
#: Views by what decides them (see :func:`view_of`); cleared when full
_VIEWS: dict[Hashable, View] = {}
_MAX_VIEWS = 256  # each holds its ActiveContext: as many as the resolver keeps
#: a number per distinct rendering key (see :attr:`View.key`); never reused, so a
#: render cache entry keyed by a number from before a clear never matches again
_KEY_NUMBERS: dict[tuple[Any, ...], int] = {}
_NEXT_NUMBER = itertools.count(1)
_MAX_KEY_NUMBERS = 4096


def _numbered(parts: tuple[Any, ...]) -> int:
    number = _KEY_NUMBERS.get(parts)
    if number is None:
        if len(_KEY_NUMBERS) >= _MAX_KEY_NUMBERS:
            _KEY_NUMBERS.clear()
        number = _KEY_NUMBERS[parts] = next(_NEXT_NUMBER)
    return number


def wants_key_values(opts: set[str]) -> bool:
    """``options=keyValues`` (or its alias ``simplified``): attributes sent as bare values."""
    return bool(opts & {"keyValues", "simplified"})


@dataclass(slots=True)
class View:
    """How to render entities for one request (5.7.1 retrieval options)."""

    media_type: str
    fmt: Format
    sys_attrs: bool
    lang: str | None
    attrs: set[str] | None
    pick: set[str] | None
    omit: set[str] | None
    dataset_ids: list[str] | None
    geometry_property: str
    #: 4.21 projections (names expanded) reaching into Linked Entities, if any
    pick_links: Projection | None = None
    omit_links: Projection | None = None
    #: 4.5.23 Linked Entity retrieval, None when not requested
    join: Join | None = None
    #: 4.3.6.8 the earlier version the payload is amended to, None for the native one
    version: Version | None = None
    #: 5.7.1.4 Retrieve Entity: an entity left with nothing selected is ResourceNotFound
    must_match: bool = False
    _key: int | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> int:
        """Everything that decides the rendering of an entity but the entity and context,
        as a number: equal numbers, equal renderings.  A number hashes at once where the
        tuple it stands for was hashed member by member at every render cache look-up."""
        if self._key is None:

            def names(values: Iterable[str] | None) -> frozenset[str] | None:
                return None if values is None else frozenset(values)

            self._key = _numbered((
                self.media_type,
                self.fmt,
                self.sys_attrs,
                self.lang,
                names(self.attrs),
                names(self.pick),
                names(self.omit),
                None if self.dataset_ids is None else tuple(self.dataset_ids),
                self.geometry_property if self.media_type == GEO_JSON else None,
                self.pick_links,
                self.omit_links,
                self.join,
                self.version,
                # only a projection can leave nothing: else retrievals share query renderings
                self.must_match and not (self.attrs is None and self.pick is None
                                         and self.omit is None),
            ))
        return self._key

    @property
    def plain(self) -> bool:
        """True when entities render one by one, as cached: no join, no amendment."""
        return self.join is None and self.version is None

    def select(self, entity: Entity) -> Entity:
        if (
            self.attrs is None
            and self.pick is None
            and self.omit is None
            and self.dataset_ids is None
        ):
            selected = entity
        else:
            selected = select_attributes(
                entity, attrs=self.attrs, pick=self.pick, omit=self.omit,
                dataset_ids=self.dataset_ids,
            )
        if self.must_match:
            _check_found(self, selected)
        return selected

    def prepare(self, ctx: ActiveContext, entity: Entity) -> tuple[Entity, bool]:
        """Select, then amend to the preferred version (4.3.6.8): (entity, amended?)."""
        selected = self.select(entity)
        if self.version is None:
            return selected, False
        return amend_entity(selected, self.version, ctx.compact_iri)

    def render(self, ctx: ActiveContext, entity: Entity) -> dict[str, Any]:
        """Select (on expanded names), compact, then render one entity."""
        return self.render_selected(ctx, self.prepare(ctx, entity)[0])

    def render_selected(self, ctx: ActiveContext, selected: Entity) -> dict[str, Any]:
        """Compact and render an entity :meth:`prepare` selected."""
        if self.media_type != GEO_JSON:
            try:
                # one pass renaming while rendering: the same as compacting first
                return render_entity(
                    selected,
                    fmt=self.fmt,
                    sys_attrs=self.sys_attrs,
                    lang=self.lang,
                    compact=ctx.compact_iri,
                )
            except DuplicateName:
                pass  # compact_entity names the clash in a BadRequestData
        compacted = ctx.compact_entity(selected)
        if self.media_type == GEO_JSON:
            return to_feature(
                compacted,
                geometry_property=ctx.compact_iri(self.geometry_property),
                fmt=self.fmt,
                sys_attrs=self.sys_attrs,
                lang=self.lang,
            )
        return render_entity(
            compacted,
            fmt=self.fmt,
            sys_attrs=self.sys_attrs,
            lang=self.lang,
        )

    def linked(self, pick: Projection | None, omit: Projection | None,
               media_type: str) -> View:
        """The view of a Linked Entity: the same representation, its own projection."""
        return replace(
            self, media_type=media_type, attrs=None, dataset_ids=None, must_match=False,
            pick=None if pick is None else set(pick.picked), omit=None if omit is None else
            set(omit.omitted), pick_links=pick, omit_links=omit, _key=None,
        )


def _check_found(view: View, selected: Entity) -> None:
    # 5.7.1.4: none of the attrs requested; 4.21: pick/omit left no member at all
    if view.attrs is not None and not selected.get("attrs"):
        raise ResourceNotFound(
            f"entity {selected.get('id')} has none of the attributes requested"
        )
    if (view.pick is not None or view.omit is not None) and not (
        selected.get("attrs") or any(k in selected for k in ("id", "type", "scope"))
    ):
        raise ResourceNotFound("the projection (pick/omit) leaves nothing of the entity")


def expanded_names(ctx: ActiveContext, names: Iterable[str] | None) -> set[str] | None:
    """Attribute names expanded with ``ctx`` (id, type and scope stay as they are)."""
    if names is None:
        return None
    return {name if name in ("id", "type", "scope") else ctx.expand_term(name) for name in names}


def view_of(params: Params, ctx: ActiveContext, media_type: str, prefer: str | None = None,
            allowed: frozenset[str] = READ_OPTIONS, *, must_match: bool = False) -> View:
    """Parse the retrieval options of a GET (options, format, attrs, pick, omit, lang,
    join...); ``allowed`` are the ``options`` values the operation accepts.

    The same options with the same context, media type and Prefer give the same
    View (shared: Views are not changed once made); invalid ones raise every time.
    """
    key = (ctx, media_type, prefer, allowed, must_match,
           *((k, v) for k, v in params.items() if k in _VIEW_PARAMS))
    view = _VIEWS.get(key)
    if view is None:
        view = _parsed_view(params, ctx, media_type, prefer, allowed, must_match)
        if len(_VIEWS) >= _MAX_VIEWS:
            _VIEWS.clear()
        _VIEWS[key] = view
    return view


def _parsed_view(params: Params, ctx: ActiveContext, media_type: str, prefer: str | None,
                 allowed: frozenset[str], must_match: bool) -> View:
    query = params
    geometry = query.get("geometryProperty")
    if geometry is not None and media_type != GEO_JSON:
        # 5.7.1.4 and 5.7.2.4
        raise BadRequestData("geometryProperty needs the GeoJSON representation "
                             "(Accept: application/geo+json)")
    pick, omit = query.getall("pick", []), query.getall("omit", [])
    return make_view(
        params, ctx, media_type, prefer, query.get("format"),
        attrs=comma_list(params, "attrs"),
        pick=parse_projection(",".join(pick), "pick") if pick else None,
        omit=parse_projection(",".join(omit), "omit") if omit else None,
        dataset_ids=comma_list(params, "datasetId"), lang=query.get("lang"),
        geometry=geometry or "location",
        join=parse_join(query.get("join"), query.get("joinLevel"), query.get("containedBy"))
        if not _LINKING.isdisjoint(query.keys()) else None,
        allowed=allowed, must_match=must_match,
    )


def projection(params: Params, name: str) -> Projection | None:
    """A ``pick``/``omit`` query parameter in the 4.21 projection language, or None."""
    raw = params.getall(name, [])
    if not raw:
        return None
    return parse_projection(",".join(raw), name)


def make_view(
    params: Params,
    ctx: ActiveContext,
    media_type: str,
    prefer: str | None = None,
    fmt_param: str | None = None,
    *,
    attrs: list[str] | None,
    pick: Projection | None,
    omit: Projection | None,
    dataset_ids: list[str] | None,
    lang: str | None,
    geometry: str = "location",
    join: Join | None = None,
    allowed: frozenset[str] = READ_OPTIONS,
    must_match: bool = False,
) -> View:
    """A View from the request's ``options`` (and ``format``) and the given members,
    names expanded with ``ctx``: one representation at most, pick or omit, not both
    with attrs, projections into Linked Entities only as deep as the join."""
    try:
        opts = options_of(params, allowed)
    except BadRequestData as exc:  # 6.3.20: an invalid options value is InvalidRequest
        raise InvalidRequest(exc.detail) from None
    if fmt_param is not None:
        if fmt_param not in FORMATS:
            raise InvalidRequest(
                f"unknown format {fmt_param!r}; use normalized, concise, keyValues or simplified"
            )
        fmt = FORMATS[fmt_param]  # 6.3.7: format takes precedence over options
    else:
        formats = {FORMATS[o] for o in opts if o in FORMATS}
        if len(formats) > 1:
            raise BadRequestData(
                f"conflicting representations requested: {', '.join(sorted(formats))}"
            )
        fmt = formats.pop() if formats else "normalized"
    if pick is not None and omit is not None:
        raise BadRequestData("pick and omit cannot be used together")
    if attrs is not None and (pick is not None or omit is not None):
        raise BadRequestData("attrs cannot be used together with pick or omit (4.21)")
    if pick is not None or omit is not None:
        check_projection_depth(join, pick, omit)
        pick, omit = _expanded(ctx, pick), _expanded(ctx, omit)
    return View(
        media_type=media_type,
        fmt=fmt,
        sys_attrs="sysAttrs" in opts,
        lang=lang,
        attrs=expanded_names(ctx, attrs),
        pick=None if pick is None else set(pick.picked),
        omit=None if omit is None else set(omit.omitted),
        dataset_ids=dataset_ids,
        geometry_property=ctx.expand_term(geometry),
        pick_links=pick if pick is not None and pick.linked else None,
        omit_links=omit if omit is not None and omit.linked else None,
        join=join,
        version=preferred_version(prefer) if prefer is not None else None,
        must_match=must_match,
    )


def _expanded(ctx: ActiveContext, projection: Projection | None) -> Projection | None:
    if projection is None:
        return None
    return projection.renamed(
        lambda name: name if name in ("id", "type", "scope") else ctx.expand_term(name)
    )


__all__ = [
    "FORMATS", "READ_OPTIONS", "View", "expanded_names", "make_view", "projection",
    "view_of", "wants_key_values",
]
