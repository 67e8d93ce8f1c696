"""Output representations of entities from the internal form.

Clause 4.5 (normalized, 4.5.1 concise, 4.5.3/4.5.4 simplified a.k.a.
keyValues), 5.7.1 retrieval options (sysAttrs, attrs, pick, omit, datasetId),
4.15 languages (``lang``) and 4.5.16/4.5.17 GeoJSON.  Names must already be
compacted by the caller; nothing here renames anything.

Linked Entities (4.5.23.2) arrive already rendered on the instances that link
to them (``entity``, ``entityList``: see :mod:`ngsi_ld.linking`) and are output
as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from ngsi_ld.attributes import MAIN_MEMBER
from ngsi_ld.geojson import is_geometry
from ngsi_ld.model import Entity

__all__ = [
    "Compact",
    "DuplicateName",
    "Format",
    "best_language",
    "render_attribute",
    "render_entity",
    "select_attributes",
    "to_feature",
    "to_feature_collection",
]

Format = Literal["normalized", "concise", "keyValues"]
#: Maps a name (an expanded IRI) to the name a client sees; None: names stay as they are.
Compact = Callable[[str], str] | None
#: system members, output with sysAttrs only (6.3.11; expiresAt of transient data, 4.22)
_SYS = ("createdAt", "modifiedAt", "deletedAt", "expiresAt")
_COMMON = ("observedAt", "unitCode", "datasetId")
# non-reified members named by a type IRI (4.5.2.2): compacted like objectType
_NAMED = ("valueType", "entityTypeSealed")


class DuplicateName(ValueError):
    """Two names of one entity compact to the same name (see :func:`render_entity`)."""


def render_entity(
    entity: Mapping[str, Any],
    *,
    fmt: Format = "normalized",
    sys_attrs: bool = False,
    lang: str | None = None,
    compact: Compact = None,
) -> dict[str, Any]:
    """Render an internal-form entity as the JSON object a client receives.

    ``compact``, when given, renames in the same pass what compaction renames
    (entity types, attribute and sub-attribute names, ``objectType``, ``vocab``,
    typed-literal ``@type``): the result equals rendering the compacted entity.
    DuplicateName when two attribute (or sub-attribute) names compact to one.
    """
    out: dict[str, Any] = {}
    if "id" in entity:
        out["id"] = entity["id"]
    types = entity.get("type")
    if types:
        if compact is not None:
            types = [compact(t) for t in types]
        out["type"] = _one_or_list(types)
    if entity.get("scope"):
        out["scope"] = _one_or_list(entity["scope"])
    if sys_attrs:
        out.update({k: entity[k] for k in _SYS if k in entity})
    attrs = entity.get("attrs", {})
    if compact is None:
        for name, instances in attrs.items():
            if instances:
                out[name] = render_attribute(instances, fmt=fmt, sys_attrs=sys_attrs, lang=lang)
        return out
    seen: set[str] = set()
    for name, instances in attrs.items():
        short = compact(name)
        if short in seen:
            raise DuplicateName(f"attributes {name!r} and another both compact to {short!r}")
        seen.add(short)
        if instances:
            out[short] = render_attribute(
                instances, fmt=fmt, sys_attrs=sys_attrs, lang=lang, compact=compact
            )
    return out


def render_attribute(
    instances: list[dict[str, Any]],
    *,
    fmt: Format = "normalized",
    sys_attrs: bool = False,
    lang: str | None = None,
    compact: Compact = None,
) -> Any:
    """Render one attribute: an object for one instance, an array for several.

    ``compact`` as for :func:`render_entity`.
    """
    if fmt == "keyValues":
        if len(instances) == 1 and "datasetId" not in instances[0]:
            return _simplified(instances[0], lang, compact)
        # 4.5.4 multi-attribute simplified: {"dataset": {datasetId | "@none": value}}
        return {
            "dataset": {
                inst.get("datasetId", "@none"): _simplified(inst, lang, compact)
                for inst in instances
            }
        }
    concise = fmt == "concise"
    if len(instances) == 1:
        return _render(instances[0], concise, sys_attrs, lang, compact, alone=True)
    return [_render(inst, concise, sys_attrs, lang, compact, alone=False) for inst in instances]


def _compacted_value(kind: str, main: str, value: Any, compact: Compact) -> Any:
    """The main member's value with the names compaction renames compacted."""
    if compact is None:
        return value
    if main == "vocab":
        return [compact(v) for v in value] if value.__class__ is list else compact(value)
    if main == "value" and value.__class__ is dict and "@type" in value:
        value = dict(value)
        literal = value["@type"]
        value["@type"] = (
            [compact(t) for t in literal] if literal.__class__ is list else compact(literal)
        )
    return value


def _one_or_list(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else list(values)


def _render(
    inst: dict[str, Any],
    concise: bool,
    sys_attrs: bool,
    lang: str | None,
    compact: Compact,
    *,
    alone: bool,
) -> Any:
    kind = inst["type"]
    main = MAIN_MEMBER[kind]
    out: dict[str, Any] = {"type": kind}
    value = _compacted_value(kind, main, inst[main], compact)
    if kind == "LanguageProperty" and lang is not None:
        # 4.15 a LanguageProperty in one language is rendered as a Property with "lang".
        tag, text = best_language(value, lang)
        out = {"type": "Property", "value": text, "lang": tag}
    elif kind == "ListRelationship" and not concise:
        out["objectList"] = [{"object": target} for target in value]
    else:
        out[main] = value
    if kind == "Relationship" and "entity" in inst:
        # 4.5.23.2 inline: the Linked Entity (an array of them for an array of objects)
        linked = inst["entity"]
        out["entity"] = [e for e in linked if e is not None] if linked.__class__ is list \
            else linked
    elif kind == "ListRelationship" and "entityList" in inst:
        out["entityList"] = [e for e in inst["entityList"] if e is not None]
    if "objectType" in inst:
        names = inst["objectType"]
        if compact is not None:
            names = [compact(n) for n in names] if names.__class__ is list else compact(names)
        out["objectType"] = names
    for key in _COMMON:
        if key in inst:
            out[key] = inst[key]
    if "entityIdSealed" in inst:
        out["entityIdSealed"] = inst["entityIdSealed"]
    for key in _NAMED:
        if key in inst:
            out[key] = inst[key] if compact is None else compact(inst[key])
    if sys_attrs:
        out.update({k: inst[k] for k in _SYS if k in inst})
    subs = inst.get("sub")
    if subs:
        if compact is None:
            for name, sub in subs.items():
                out[name] = _render(sub, concise, sys_attrs, lang, None, alone=True)
        else:
            seen: set[str] = set()
            for name, sub in subs.items():
                short = compact(name)
                if short in seen:
                    raise DuplicateName(f"sub-attributes of {name!r} compact to {short!r}")
                seen.add(short)
                out[short] = _render(sub, concise, sys_attrs, lang, compact, alone=True)
    if concise:
        return _concise(out, alone)
    return out


def _concise(out: dict[str, Any], alone: bool) -> Any:
    # 4.5.1 concise: drop "type" wherever the parser can infer it back.
    kind = out["type"]
    if kind == "Property":
        value = out.get("value")
        if is_geometry(value):
            return out  # without "type" it would read as a GeoProperty
        del out["type"]
        if alone and len(out) == 1 and _bare_ok(value):
            return value
        return out
    del out["type"]
    if kind == "GeoProperty" and alone and len(out) == 1:
        return out["value"]
    return out


def _bare_ok(value: Any) -> bool:
    # A bare object or an array holding objects could read back as something else.
    if isinstance(value, dict):
        return False
    return not (isinstance(value, list) and any(isinstance(v, dict | list) for v in value))


def _simplified(inst: dict[str, Any], lang: str | None, compact: Compact = None) -> Any:
    kind = inst["type"]
    main = MAIN_MEMBER[kind]
    value = _compacted_value(kind, main, inst[main], compact)
    if kind in ("Property", "GeoProperty"):
        return value
    if kind in ("Relationship", "ListRelationship"):
        # 4.5.4: the object(s); inline (4.5.23.2) each linked target becomes its entity
        linked = inst.get("entity" if kind == "Relationship" else "entityList")
        if linked is None:
            return value
        if linked.__class__ is not list:
            return linked
        return [target if e is None else e for target, e in zip(value, linked, strict=True)]
    if kind == "ListProperty":
        return value  # 4.5.4: the ordered array of values
    if kind == "LanguageProperty" and lang is not None:
        return best_language(value, lang)[1]
    return {main: value}


def best_language(language_map: dict[str, Any], lang: str) -> tuple[str, Any]:
    """Pick the best entry of a languageMap for ``lang`` (clause 4.15).

    ``lang`` is a tag or a comma-separated, optionally q-weighted list
    (``fr-CH,fr;q=0.9,en;q=0.8``).  Exact tag, then same primary language, then
    ``@none``, then the first entry.
    """
    wanted: list[tuple[float, int, str]] = []
    for i, part in enumerate(lang.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag:
            wanted.append((-q, i, tag.lower()))
    lowered = {key.lower(): key for key in language_map}
    for _, _, tag in sorted(wanted):
        if tag == "*":
            break
        if tag in lowered:
            key = lowered[tag]
            return key, language_map[key]
        primary = tag.split("-")[0]
        for low, key in lowered.items():
            if low.split("-")[0] == primary:
                return key, language_map[key]
    if "@none" in language_map:
        return "@none", language_map["@none"]
    key = next(iter(language_map))
    return key, language_map[key]


def select_attributes(
    entity: Entity,
    *,
    attrs: Iterable[str] | None = None,
    pick: Iterable[str] | None = None,
    omit: Iterable[str] | None = None,
    dataset_ids: Iterable[str] | None = None,
) -> Entity:
    """Project an internal-form entity (5.7.1 ``attrs``, ``pick``, ``omit``, ``datasetId``).

    ``pick``/``omit`` name entity members (``id``, ``type``, ``scope`` or
    attributes); ``attrs`` names attributes only; ``dataset_ids`` keeps the
    instances with those datasetIds (``@none`` for the default instance).
    Returns a new entity; attributes left without instances are dropped.
    """
    keep_attrs = set(attrs) if attrs is not None else None
    picked = set(pick) if pick is not None else None
    omitted = set(omit) if omit is not None else set()
    datasets = set(dataset_ids) if dataset_ids is not None else None
    out: Entity = {}
    for key, value in entity.items():
        if key == "attrs":
            continue
        if key in ("id", "type", "scope") and (
            key in omitted or (picked is not None and key not in picked)
        ):
            continue
        out[key] = value  # type: ignore[literal-required]
    selected: dict[str, list[dict[str, Any]]] = {}
    for name, instances in entity.get("attrs", {}).items():
        if keep_attrs is not None and name not in keep_attrs:
            continue
        if name in omitted or (picked is not None and name not in picked):
            continue
        if datasets is not None:
            instances = [i for i in instances if i.get("datasetId", "@none") in datasets]
        if instances:
            selected[name] = instances
    out["attrs"] = selected
    return out


def to_feature(
    entity: Mapping[str, Any],
    *,
    geometry_property: str = "location",
    fmt: Format = "normalized",
    sys_attrs: bool = False,
    lang: str | None = None,
) -> dict[str, Any]:
    """Render an internal-form entity as a GeoJSON Feature (clause 4.5.16).

    ``geometry`` is the value of ``geometry_property`` (its default instance,
    else the first) or null; ``properties`` holds the entity type and every
    attribute, rendered in ``fmt``.
    """
    rendered = render_entity(entity, fmt=fmt, sys_attrs=sys_attrs, lang=lang)
    geometry = None
    instances = entity.get("attrs", {}).get(geometry_property, [])
    geo = [i for i in instances if i.get("type") == "GeoProperty"]
    if geo:
        default = [i for i in geo if "datasetId" not in i]
        geometry = (default or geo)[0].get("value")
    feature: dict[str, Any] = {"id": rendered.pop("id", None), "type": "Feature"}
    feature["geometry"] = geometry
    feature["properties"] = rendered
    return feature


def to_feature_collection(features: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Wrap features in a GeoJSON FeatureCollection (clause 4.5.17)."""
    return {"type": "FeatureCollection", "features": list(features)}
