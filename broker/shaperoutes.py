"""Routing by the path's shape under one prefix, ahead of aiohttp's walk (issue 19).

aiohttp's router keeps the resources in lists keyed by a path prefix and tries those
of a request's prefix one by one, in the order they were registered: every
``/ngsi-ld/v1/entities/...`` request tries up to eight resources (the path, its
trailing-slash twin, ``{entityId}``, ``/attrs``, ``/attrs/{attrId}``), each a
coroutine and most a regular expression: 4 µs of a PATCH of ``/attrs`` on a
CPU where the baseline spends some 60 µs a request.

A :class:`ShapeIndex` is registered at such a prefix (after the prefix's own
resource, which a POST or a query then finds at once), so the router tries it before
the paths below.  When the router is frozen it indexes the
resources the router keeps under the same prefix by their segments (literal or
one ``{name}`` variable each); a request's path then finds, by its number of
segments and its literal ones, the resources it can match, in the router's order,
and the first of them with a route of the request's method answers it, with the
match aiohttp's resource would give.  When none does (a method no route of the
path has, a path no route has, a variable segment aiohttp would decode), the
index answers nothing and the router goes on as it would without it: every
match, 404 and 405 stays aiohttp's own.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import hdrs, web
from yarl import URL

__all__ = ["ShapeIndex", "index_shapes"]

#: a segment of a route's path that is one variable of aiohttp's default pattern
_VARIABLE = re.compile(r"\{([_a-zA-Z][_a-zA-Z0-9]*)\}")
#: what a resource's pattern holds for each such variable (``DynamicResource.GOOD``)
_DEFAULT_GROUP = ">[^{}/]+)"

class _Shape:
    """One resource under the prefix: its segments, variables and routes by method."""

    __slots__ = ("any_route", "literals", "names", "routes")

    def __init__(self, segments: list[str], resource: web.AbstractResource) -> None:
        #: (position, text) of each literal segment
        self.literals = tuple((n, s) for n, s in enumerate(segments) if not _VARIABLE.fullmatch(s))
        #: (position, name) of each variable segment
        self.names = tuple((n, m.group(1)) for n, s in enumerate(segments)
                           if (m := _VARIABLE.fullmatch(s)) is not None)
        self.routes: dict[str, web.AbstractRoute] = {}
        self.any_route: web.AbstractRoute | None = None
        for route in resource:
            if route.method == hdrs.METH_ANY:
                self.any_route = route
            self.routes[route.method] = route


class ShapeIndex(web.AbstractResource):
    """The resources under ``prefix`` found by the shape of the path (module docstring)."""

    def __init__(self, router: web.UrlDispatcher, prefix: str) -> None:
        super().__init__(name=None)
        self._router = router
        self._prefix = prefix
        #: shapes by number of segments, in the router's order
        self._shapes: dict[int, list[_Shape]] = {}

    @property
    def canonical(self) -> str:
        return self._prefix

    def url_for(self, **kwargs: str) -> URL:
        return URL.build(path=self._prefix, encoded=True)

    def add_prefix(self, prefix: str) -> None:
        raise NotImplementedError("a shape index belongs to the application it was made for")

    def get_info(self) -> Any:
        return {"path": self._prefix}

    def raw_match(self, path: str) -> bool:
        return False

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Any:
        return iter(())

    def freeze(self) -> None:
        """Index the resources the router tries at this prefix (every route is added);
        a resource this index cannot describe exactly turns it off."""
        shapes: dict[int, list[_Shape]] = {}
        for resource in self._router.resources():
            if resource is self or _index_key(resource.canonical) != self._prefix:
                continue
            segments = _segments(resource, self._prefix)
            if segments is None:
                self._shapes = {}
                return
            shapes.setdefault(len(segments), []).append(_Shape(segments, resource))
        self._shapes = shapes

    async def resolve(self, request: web.Request) -> tuple[web.UrlMappingMatchInfo | None,
                                                           set[str]]:
        path = request.rel_url.path_safe
        prefix = self._prefix
        if not path.startswith(prefix):
            return None, set()
        segments = path[len(prefix):].split("/")
        for shape in self._shapes.get(len(segments), ()):
            for n, text in shape.literals:
                if segments[n] != text:
                    break
            else:
                route = shape.routes.get(request.method, shape.any_route)
                if route is None:
                    continue  # another resource may have the method: aiohttp's walk decides
                match: dict[str, str] = {}
                for n, name in shape.names:
                    value = segments[n]
                    if not value or "%" in value or "{" in value or "}" in value:
                        return None, set()  # aiohttp's own pattern and decoding decide
                    match[name] = value
                return web.UrlMappingMatchInfo(match, route), set()
        return None, set()


def index_shapes(app: web.Application, prefix: str) -> None:
    """Register a :class:`ShapeIndex` of ``prefix``: before the routes below it.

    Wherever it is among the resources of ``prefix``, the router finds what it would
    find without it: a resource it tried before the index did not match, and the
    index tries it again in its place (not matching again)."""
    app.router.register_resource(ShapeIndex(app.router, prefix))


def _index_key(canonical: str) -> str:
    # the prefix aiohttp's router files a resource under (UrlDispatcher's index key)
    if "{" in canonical:
        canonical = canonical.partition("{")[0].rpartition("/")[0]
    return canonical.rstrip("/") or "/"


def _segments(resource: web.AbstractResource, prefix: str) -> list[str] | None:
    """The segments of ``resource``'s path after ``prefix``, the first empty (the path
    splits as a request's does); None unless each variable is one default-pattern segment."""
    if isinstance(resource, web.PlainResource):
        return resource.canonical[len(prefix):].split("/")
    if not isinstance(resource, web.DynamicResource):
        return None
    pattern = resource.get_info()["pattern"].pattern
    segments = resource.canonical[len(prefix):].split("/")
    variables = sum(1 for s in segments if _VARIABLE.fullmatch(s))
    braces = sum(s.count("{") for s in segments)
    if variables != braces or pattern.count("(?P<") != variables \
            or pattern.count(_DEFAULT_GROUP) != variables:
        return None
    return segments
