"""URI query parameters as plain data (ETSI GS CIM 009 clause 6.3: the HTTP binding's options).

:class:`Params` is what the parsers of request options read: a multi-mapping of
parameter names to their values in the order they came, as a query string is.
An aiohttp ``request.query`` is one; :class:`QueryParams` is a plain one for
tests and for parameters rewritten on the way (``format=geojson``).

The readers here raise the errors the API answers for a malformed value
(BadRequestData); which parameters an operation accepts at all is
``ngsi_ld.parameters``'s business.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol, overload

from ngsi_ld.errors import BadRequestData

__all__ = ["MAX_INTEGER", "Params", "QueryParams", "comma_list", "flag", "non_negative",
           "options_of"]


class Params(Protocol):
    """The query parameters of one request (names may repeat)."""

    def get(self, name: str, /) -> str | None: ...

    def getall(self, name: str, default: list[str], /) -> list[str]: ...

    def keys(self) -> Iterable[str]: ...

    def items(self) -> Iterable[tuple[str, str]]: ...

    def __contains__(self, name: object, /) -> bool: ...

    def __len__(self) -> int: ...


class QueryParams:
    """A plain :class:`Params`: pairs in order, the first value of a name for :meth:`get`."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        items = pairs.items() if isinstance(pairs, Mapping) else pairs
        self._pairs = tuple((str(k), str(v)) for k, v in items)

    def get(self, name: str, default: None = None, /) -> str | None:
        for key, value in self._pairs:
            if key == name:
                return value
        return default

    @overload
    def getall(self, name: str, /) -> list[str]: ...

    @overload
    def getall(self, name: str, default: list[str], /) -> list[str]: ...

    def getall(self, name: str, default: list[str] | None = None, /) -> list[str]:
        found = [value for key, value in self._pairs if key == name]
        if found or default is not None:
            return found or (default if default is not None else [])
        raise KeyError(name)

    def keys(self) -> list[str]:
        return [key for key, _ in self._pairs]

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    def without(self, *names: str) -> QueryParams:
        """The same parameters but ``names``."""
        return QueryParams((k, v) for k, v in self._pairs if k not in names)

    def __contains__(self, name: object, /) -> bool:
        return any(key == name for key, _ in self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __repr__(self) -> str:
        return f"QueryParams({list(self._pairs)!r})"


def comma_list(params: Params, name: str) -> list[str] | None:
    """A comma-separated parameter (repeatable), or None when absent; empty is BadRequestData."""
    raw = params.getall(name, [])
    if not raw:
        return None
    items = [item.strip() for value in raw for item in value.split(",") if item.strip()]
    if not items:
        raise BadRequestData(f"query parameter {name} is empty")
    return items


def flag(params: Params, name: str) -> bool:
    """A boolean parameter: ``true`` or ``false`` (absent: false)."""
    value = params.get(name)
    if value is None:
        return False
    if value in ("true", "false"):
        return value == "true"
    raise BadRequestData(f"query parameter {name} must be true or false, not {value!r}")


def options_of(params: Params, allowed: frozenset[str]) -> set[str]:
    """The comma-separated ``options`` values, each checked against ``allowed``."""
    found: set[str] = set()
    for raw in params.getall("options", []):
        for item in raw.split(","):
            item = item.strip()
            if not item:
                continue
            if item not in allowed:
                raise BadRequestData(
                    f"unknown option {item!r}; allowed here: {', '.join(sorted(allowed))}"
                )
            found.add(item)
    return found


#: the largest integer a parameter may give (``offset``, ``limit``...): past it, a
#: store's 64-bit arithmetic (SQLite's OFFSET, offset + limit) could overflow
MAX_INTEGER = 2**31 - 1


def non_negative(params: Params, name: str) -> int | None:
    """A non-negative integer parameter (``offset``, ``limit``), or None when absent.

    BadRequestData beyond :data:`MAX_INTEGER`, before any store sees it.
    """
    raw = params.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit():
        raise BadRequestData(f"{name} must be a non-negative integer, not {raw!r}")
    if len(raw) > 10 or int(raw) > MAX_INTEGER:
        raise BadRequestData(f"{name} must be at most {MAX_INTEGER}, not {raw}")
    return int(raw)
