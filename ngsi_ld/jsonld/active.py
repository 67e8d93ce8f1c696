"""The compiled form of a JSON-LD @context: fast term expansion and compaction.

An ``ActiveContext`` is built once per distinct @context by ``compile_context``
(which uses pyld); afterwards every lookup here is a dict access, with a bounded
memo for names that are not terms (absolute IRIs, compact IRIs, @vocab-relative
words).  Expansion and compaction rename the names of an entity in the internal
form of docs/architecture.md and nothing else.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple, cast

from ngsi_ld.errors import BadRequestData
from ngsi_ld.model import Entity

# Names that are not terms are memoised; past this many the memo stops growing
# (a client sending endless distinct names cannot make the context grow unbounded).
_MEMO_LIMIT = 20_000

# JSON-LD 1.1 API: the absolute-IRI test used by IRI expansion (same as pyld's).
_ABSOLUTE_IRI = re.compile(r"^([A-Za-z][A-Za-z0-9+-.]*|_):[^\s]*$")


class TermDefinition(NamedTuple):
    """One term of a compiled context (JSON-LD 1.1, 4.1 Create Term Definition)."""

    iri: str | None
    """The expanded IRI (or keyword for an alias); None if the term maps to null."""
    type: str | None
    """Type coercion: ``@id``, ``@vocab``, ``@json``, ``@none``, a datatype IRI, or None."""
    container: tuple[str, ...]
    """Container mapping (``@list``, ``@set``, ``@language``, ``@index``...), empty if none."""
    prefix: bool
    """True if the term can be used as the prefix of a compact IRI."""


class ActiveContext:
    """A compiled @context: the effective user context followed by the core context.

    Built by ``compile_context``; immutable apart from its internal memo.
    """

    __slots__ = (
        "_compacted",
        "_curie_candidates",
        "_expanded",
        "_memo_size",
        "_nulls",
        "_prefixes",
        "core_url",
        "definitions",
        "depends_on",
        "response_context",
        "shapes",
        "user_context",
        "vocab",
    )

    def __init__(
        self,
        *,
        definitions: Mapping[str, TermDefinition],
        vocab: str | None,
        compacted: Mapping[str, str],
        user_context: Any,
        core_url: str,
        response_context: Any,
        depends_on: frozenset[str],
    ) -> None:
        self.definitions: Mapping[str, TermDefinition] = dict(definitions)
        self.vocab = vocab
        self.user_context = user_context
        """The @context value the request carried (None if it carried none)."""
        self.core_url = core_url
        self.response_context = response_context
        """The @context to echo in responses: the user's context(s) then the core URL."""
        self.depends_on = depends_on
        """Every remote context URL this context was compiled from."""
        self._expanded: dict[str, str] = {
            term: d.iri for term, d in self.definitions.items() if d.iri is not None
        }
        self._nulls = frozenset(t for t, d in self.definitions.items() if d.iri is None)
        self._prefixes = {
            t: d.iri for t, d in self.definitions.items() if d.prefix and d.iri is not None
        }
        self._curie_candidates = tuple(
            (t, d.iri, d.prefix)
            for t, d in sorted(self.definitions.items())
            if ":" not in t and d.iri and not d.iri.startswith("@")
        )
        self._compacted: dict[str, str] = dict(compacted)
        self._memo_size = 0
        #: the entity shapes compiled against this context (``ngsi_ld.shapes``, which
        #: bounds it): shape key -> template, or None for a shape the usual way keeps
        self.shapes: OrderedDict[Hashable, object] = OrderedDict()

    @property
    def context_value(self) -> Any:
        """Alias of ``response_context``."""
        return self.response_context

    def __repr__(self) -> str:
        return f"ActiveContext(user_context={self.user_context!r}, core_url={self.core_url!r})"

    # ---------------------------------------------------------------- terms

    def expand_term(self, term: str) -> str:
        """Expand a property name or type, vocab-relative (JSON-LD 1.1 IRI Expansion)."""
        iri = self._expanded.get(term)
        if iri is not None:
            return iri
        return self._expand_slow(term)

    def expand_name(self, name: str) -> str:
        """Expand one name exactly as :meth:`expand_entity` expands the names it renames."""
        return self._expanded.get(name) or self._expand_slow(name)

    def compact_iri(self, iri: str) -> str:
        """Compact an IRI to a term, a compact IRI or a @vocab-relative word, as pyld would."""
        term = self._compacted.get(iri)
        if term is not None:
            return term
        return self._compact_slow(iri)

    def _memoise(self, table: dict[str, str], key: str, result: str) -> str:
        if self._memo_size < _MEMO_LIMIT:
            table[key] = result
            self._memo_size += 1
        return result

    def _expand_slow(self, term: str) -> str:
        if not isinstance(term, str):
            raise BadRequestData(f"a name must be a string, got {type(term).__name__}")
        if term in self._nulls:
            raise BadRequestData(f"'{term}' is mapped to null by the @context and cannot be used")
        if term.startswith("@"):
            return term
        vocab = self.vocab
        colon = term.find(":")
        if colon > 0:
            prefix, suffix = term[:colon], term[colon + 1 :]
            if prefix == "_" or suffix.startswith("//"):
                result = term
            elif prefix in self._prefixes:
                result = self._prefixes[prefix] + suffix
            elif _ABSOLUTE_IRI.match(term):
                result = term
            else:
                result = vocab + term if vocab else term
        else:
            result = vocab + term if vocab else term
        return self._memoise(self._expanded, term, result)

    def _compact_slow(self, iri: str) -> str:
        if not isinstance(iri, str):
            raise BadRequestData(f"an IRI must be a string, got {type(iri).__name__}")
        definitions = self.definitions
        vocab = self.vocab
        if vocab and iri.startswith(vocab) and iri != vocab:
            suffix = iri[len(vocab) :]
            if suffix not in definitions:
                return self._memoise(self._compacted, iri, suffix)
        candidate: str | None = None
        for term, prefix_iri, is_prefix in self._curie_candidates:
            if prefix_iri == iri or not iri.startswith(prefix_iri):
                continue
            curie = term + ":" + iri[len(prefix_iri) :]
            existing = definitions.get(curie)
            usable = (is_prefix and existing is None) or (
                existing is not None and existing.iri == iri
            )
            if usable and (candidate is None or (len(curie), curie) < (len(candidate), candidate)):
                candidate = curie
        return self._memoise(self._compacted, iri, candidate if candidate is not None else iri)

    # ------------------------------------------------------------- entities

    def expand_entity(self, entity: Mapping[str, Any]) -> Entity:
        """A copy of an internal-form entity with every name expanded to a full IRI.

        Renames attribute and sub-attribute names, entity types, ``objectType``,
        ``valueType``, ``entityTypeSealed``, ``vocab`` values and typed-literal
        ``@type``; nothing else changes.
        """
        return cast(Entity, _map_entity(entity, self._expanded.get, self._expand_slow, "expand"))

    def compact_entity(self, entity: Mapping[str, Any]) -> Entity:
        """A copy of an expanded internal-form entity with every IRI compacted."""
        return cast(Entity,
                    _map_entity(entity, self._compacted.get, self._compact_slow, "compact"))

    def expand_attrs(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """Expand an ``attrs`` mapping alone (name -> list of instances)."""
        try:
            return _map_attrs(attrs, self._expanded.get, self._expand_slow)
        except (TypeError, AttributeError, ValueError) as exc:
            raise BadRequestData(
                f"cannot expand attributes: not in the internal form ({exc})"
            ) from None

    def compact_attrs(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """Compact an ``attrs`` mapping alone (name -> list of instances)."""
        try:
            return _map_attrs(attrs, self._compacted.get, self._compact_slow)
        except (TypeError, AttributeError, ValueError) as exc:
            raise BadRequestData(
                f"cannot compact attributes: not in the internal form ({exc})"
            ) from None


_Get = Callable[[str], "str | None"]
_Slow = Callable[[str], str]


def _map_entity(entity: Mapping[str, Any], get: _Get, slow: _Slow, what: str) -> dict[str, Any]:
    try:
        out = dict(entity)
        types = entity.get("type")
        if types is not None:
            if types.__class__ is list:
                out["type"] = [get(t) or slow(t) for t in types]
            else:
                out["type"] = get(types) or slow(types)
        attrs = entity.get("attrs")
        if attrs:
            out["attrs"] = _map_attrs(attrs, get, slow)
        return out
    except (TypeError, AttributeError, ValueError) as exc:
        raise BadRequestData(f"cannot {what} entity: not in the internal form ({exc})") from None


def _map_attrs(attrs: Mapping[str, Any], get: _Get, slow: _Slow) -> dict[str, Any]:
    new: dict[str, Any] = {}
    for name, instances in attrs.items():
        if instances.__class__ is list:
            new[get(name) or slow(name)] = [_map_instance(i, get, slow) for i in instances]
        else:
            new[get(name) or slow(name)] = _map_instance(instances, get, slow)
    if len(new) != len(attrs):
        _duplicates(attrs, get, slow, "attributes")
    return new


def _map_instance(inst: Mapping[str, Any], get: _Get, slow: _Slow) -> dict[str, Any]:
    new = dict(inst)
    sub = inst.get("sub")
    if sub:
        subs: dict[str, Any] = {}
        for name, child in sub.items():
            subs[get(name) or slow(name)] = _map_instance(child, get, slow)
        if len(subs) != len(sub):
            _duplicates(sub, get, slow, "sub-attributes")
        new["sub"] = subs
    value = inst.get("value")
    if value.__class__ is dict and "@type" in value:
        value = dict(value)
        literal_type = value["@type"]
        if literal_type.__class__ is list:
            value["@type"] = [get(t) or slow(t) for t in literal_type]
        else:
            value["@type"] = get(literal_type) or slow(literal_type)
        new["value"] = value
    if "objectType" in inst:
        new["objectType"] = _map_names(inst["objectType"], get, slow)
    if "vocab" in inst:
        new["vocab"] = _map_names(inst["vocab"], get, slow)
    # @vocab-coerced in the core context, like objectType (4.5.2.2, annex B)
    for member in _VOCAB_MEMBERS:
        if member in inst:
            new[member] = _map_names(inst[member], get, slow)
    return new


_VOCAB_MEMBERS = ("valueType", "entityTypeSealed")


def _map_names(names: Any, get: _Get, slow: _Slow) -> Any:
    if names.__class__ is list:
        return [get(n) or slow(n) for n in names]
    return get(names) or slow(names)


def _duplicates(names: Mapping[str, Any], get: _Get, slow: _Slow, what: str) -> None:
    seen: dict[str, str] = {}
    for name in names:
        mapped = get(name) or slow(name)
        if mapped in seen:
            raise BadRequestData(
                f"{what} '{seen[mapped]}' and '{name}' both stand for '{mapped}' in this @context"
            )
        seen[mapped] = name
