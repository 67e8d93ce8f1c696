"""The stand-in's equality of values as MongoDB's: a boolean is never a number.

mongomock (4.3) evaluates ``$eq``, ``$ne``, ``$in`` and ``$nin`` with Python's ``==``, for
which ``True == 1`` and ``False == 0``; MongoDB compares BSON values, where booleans and
numbers are different types and never equal (its ordering operators already bracket by
type in mongomock).  So a filter ``{"value": {"$eq": 1}}`` selected a stored ``true`` on
the stand-in and not on MongoDB (found by tests/test_store_agreement.py).

:func:`install` (tests/mongo_standin.py calls it) replaces those four operators of
mongomock's one filterer, which ``filter_applies`` and every stand-in collection use,
by ones that compare as BSON does: numbers by value whatever their Python type,
booleans only with booleans, arrays and documents member by member.  Regular
expressions in ``$in`` keep mongomock's own handling.
"""

from __future__ import annotations

from typing import Any

from mongomock import filtering

_RE_TYPES = filtering._RE_TYPES
_NOTHING = filtering.NOTHING


def bson_equal(a: Any, b: Any) -> bool:
    """``a == b`` as MongoDB compares two BSON values."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(bson_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(bson_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _eq(doc_val: Any, search_val: Any) -> bool:
    if doc_val is _NOTHING and search_val is None:
        return True
    return bson_equal(doc_val, search_val)


def _in(doc_val: Any, search_val: Any) -> bool:
    if not isinstance(search_val, list | tuple) or any(
        isinstance(x, _RE_TYPES) for x in search_val
    ):
        return bool(filtering._in_op(doc_val, search_val))
    if doc_val is _NOTHING and None in search_val:
        return True
    values = doc_val if isinstance(doc_val, list | tuple) else [doc_val]
    candidates = [*values, doc_val] if isinstance(doc_val, list | tuple) else values
    return any(bson_equal(x, wanted) for x in candidates for wanted in search_val)


def install() -> None:
    """Make mongomock's filterer compare values as MongoDB does (idempotent)."""
    operators = filtering._filterer_inst._operator_map
    operators["$eq"] = filtering._list_expand(_eq)
    operators["$ne"] = filtering._list_expand(lambda dv, sv: not _eq(dv, sv), negative=True)
    operators["$in"] = _in
    operators["$nin"] = lambda dv, sv: not _in(dv, sv)
