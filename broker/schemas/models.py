"""Smart Data Models style JSON Schemas, one per entity type, compiled once.

A schema directory holds one JSON Schema per entity type, in the Smart Data
Models layout (``DIR/<Type>/schema.json``) or flat (``DIR/<Type>.schema.json``).
A schema describes an entity in keyValues form with the names of its data
model's @context, so an entity in the broker's internal form (expanded names,
attributes as instance lists) is first turned into that form:

* each attribute name is compacted with the schema's @context (found beside
  it: ``DIR/<Type>/context.jsonld``, or ``DIR/<dataModel.X>.context.jsonld`` for
  the ``dataModel.X`` its ``$id`` names; else the core context alone);
* each attribute becomes its main member (``value``, ``object``, ``languageMap``...)
  of the default instance, typed literals (``{"@type": "DateTime", "@value": v}``)
  become ``v``;
* ``type`` is the schema's type name.

An entity type is checked against the schema of each of its types that has one:
a type matches by the IRI its name expands to under the schema's context, and
under the core context alone (where names fall in the default vocabulary).

``$ref`` to another JSON file of the directory (by its ``$id``) are followed;
``$ref`` to documents outside it (the Smart Data Models schemas refer to a
``common-schema.json`` on the web) cannot be fetched offline: they are dropped
when the schema is loaded, so those parts accept anything, and a warning names
them once (put ``common-schema.json`` in the directory to have them checked).
``format`` is not asserted (as the JSON Schema specification's default).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from broker.schemas.flat import FlatSchema, flatten
from ngsi_ld.instances import MAIN_MEMBER
from ngsi_ld.jsonld import ActiveContext, compile_context, core_context_url

log = logging.getLogger("broker.schemas")


@dataclass(frozen=True, slots=True)
class Violation:
    """One way an entity breaks its type's schema."""

    type: str  # the schema's type name
    path: str  # attribute path: "powerState", "address.streetAddress", "refDevice[0]"
    message: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "attribute": self.path, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path or '(entity)'}: {self.message}"


class SchemaLoadError(ValueError):
    """A schema directory or file that cannot be used (the message says why)."""


@dataclass(slots=True)
class TypeSchema:
    """The compiled schema of one entity type and the names it expects."""

    name: str
    validator: Validator
    context: ActiveContext
    source: Path
    #: the same checks attribute by attribute, when the schema allows it (``flat``)
    flat: FlatSchema | None = None

    def document(self, entity: Mapping[str, Any]) -> dict[str, Any]:
        """The keyValues form this schema describes (see the module docstring)."""
        compact = self.context.compact_iri
        doc: dict[str, Any] = {"id": entity.get("id"), "type": self.name}
        for iri, instances in entity.get("attrs", {}).items():
            if not instances:
                continue
            instance = next((i for i in instances if "datasetId" not in i), instances[0])
            member = MAIN_MEMBER.get(instance.get("type", "Property"), "value")
            value = instance.get(member)
            if isinstance(value, dict) and "@value" in value and len(value) <= 2:
                value = value["@value"]
            doc[_local(compact(iri))] = value
        if entity.get("scope"):
            doc["scope"] = entity["scope"]
        return doc

    def violations(self, entity: Mapping[str, Any]) -> list[Violation]:
        doc = self.document(entity)
        checks = self.flat if self.flat is not None else self.validator
        return [
            Violation(self.name, _path(error), error.message)
            for error in sorted(checks.iter_errors(doc), key=_path)
        ]


class ModelSchemas:
    """The schemas of a directory, by expanded entity type."""

    def __init__(self, schemas: Mapping[str, TypeSchema]) -> None:
        self._by_type = dict(schemas)
        self.names = sorted({s.name for s in self._by_type.values()})

    def __len__(self) -> int:
        return len(self.names)

    def __bool__(self) -> bool:
        return bool(self._by_type)

    def for_types(self, types: Any) -> list[TypeSchema]:
        """The schemas that apply to an entity of these (expanded) types."""
        found: list[TypeSchema] = []
        for each in types or ():
            schema = self._by_type.get(each)
            if schema is not None and schema not in found:
                found.append(schema)
        return found

    def violations(self, entity: Mapping[str, Any]) -> list[Violation]:
        """Every violation of every schema that applies to ``entity`` (internal form)."""
        out: list[Violation] = []
        for schema in self.for_types(entity.get("type")):
            out.extend(schema.violations(entity))
        return out

    @classmethod
    def load(cls, directory: str | Path, core_version: str = "1.8") -> ModelSchemas:
        """Read and compile every schema of ``directory``; SchemaLoadError when unusable."""
        root = Path(directory)
        if not root.is_dir():
            raise SchemaLoadError(f"model schema directory {root} does not exist")
        core_url = core_context_url(core_version)
        core = _compile(None, core_url)
        contexts: dict[Path | None, ActiveContext] = {None: core}
        by_type: dict[str, TypeSchema] = {}
        dropped: list[str] = []
        shared = _documents_by_id(root)
        registry: Registry[Any] = Registry().with_resources(
            (uri, Resource.from_contents(_drop_remote_refs(doc, [], set(shared), uri),
                                         default_specification=DRAFT202012))
            for uri, doc in shared.items()
        )
        for type_name, path in _schema_files(root):
            schema = _read_json(path)
            if not isinstance(schema, dict):
                raise SchemaLoadError(f"{path}: a JSON Schema must be an object")
            kind = validator_for(schema, default=Draft202012Validator)
            try:
                kind.check_schema(schema)
            except SchemaError as exc:
                raise SchemaLoadError(f"{path}: not a valid JSON Schema: {exc.message}") from None
            name = _type_name(schema, type_name)
            schema = _drop_remote_refs(schema, dropped, set(shared), str(schema.get("$id", "")))
            context_file = _context_file(root, path, schema)
            if context_file not in contexts:
                contexts[context_file] = _compile(context_file, core_url)
            ctx = contexts[context_file]
            compiled = TypeSchema(name, kind(schema, registry=registry), ctx, path,
                                  _flat(schema, kind, registry))
            for iri in {ctx.expand_term(name), core.expand_term(name)}:
                by_type[iri] = compiled
        if not by_type:
            raise SchemaLoadError(f"no schema found in {root} (<Type>/schema.json)")
        if dropped:
            log.warning("model schemas in %s: %d $ref to documents outside it are not checked "
                        "(%s)", root, len(dropped), ", ".join(sorted(set(dropped))))
        return cls(by_type)


#: a $ref to a place in the schema other than its definitions
_LOCAL_REF = re.compile(r'"\$ref":"#/(?!\$defs/|definitions/)')


def _flat(schema: dict[str, Any], kind: Any, registry: Registry[Any]) -> FlatSchema | None:
    parts = flatten(schema)
    if parts is None or _LOCAL_REF.search(orjson.dumps(parts[1]).decode()):
        return None  # a $ref into the root's own properties: keep the whole schema
    required, properties = parts
    # each subschema keeps the root's $defs and $id, so local and registry $ref resolve
    root = {k: v for k, v in schema.items() if k in ("$id", "$schema", "$defs", "definitions")}
    validators = {
        name: kind({**root, "allOf": subschemas}, registry=registry)
        for name, subschemas in properties.items()
    }
    return FlatSchema(required, validators)


def _schema_files(root: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.glob("*/schema.json")):
        yield path.parent.name, path
    for path in sorted(root.glob("*.schema.json")):
        yield path.name[: -len(".schema.json")], path


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise SchemaLoadError(f"{path}: {exc}") from None


def _type_name(schema: Mapping[str, Any], fallback: str) -> str:
    """The entity type a schema is for: its ``type`` property's enum, else the file name."""
    parts = [schema, *[p for p in schema.get("allOf", ()) if isinstance(p, dict)]]
    for part in parts:
        prop = part.get("properties", {}).get("type", {})
        enum = prop.get("enum") if isinstance(prop, dict) else None
        if isinstance(enum, list) and len(enum) == 1 and isinstance(enum[0], str):
            return enum[0]
    return fallback


def _documents_by_id(root: Path) -> dict[str, Any]:
    """Every JSON document of the directory that has an ``$id``, by that id."""
    found: dict[str, Any] = {}
    for path in sorted(root.rglob("*.json")):
        try:
            document = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            continue
        if isinstance(document, dict) and isinstance(document.get("$id"), str):
            found[document["$id"].split("#", 1)[0]] = document
    return found


def _drop_remote_refs(node: Any, dropped: list[str], known: set[str], base: str) -> Any:
    """A copy without ``$ref`` to documents not in ``known`` (none is fetched)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(ref, str) and not ref.startswith("#"):
                target = urljoin(base, ref).split("#", 1)[0]
                if target not in known:
                    dropped.append(target)
                    continue
            out[key] = _drop_remote_refs(value, dropped, known, base)
        return out
    if isinstance(node, list):
        return [_drop_remote_refs(item, dropped, known, base) for item in node]
    return node


def _context_file(root: Path, schema_path: Path, schema: Mapping[str, Any]) -> Path | None:
    beside = schema_path.parent / "context.jsonld"
    if schema_path.name == "schema.json" and beside.is_file():
        return beside
    for segment in str(schema.get("$id", "")).split("/"):
        if segment.startswith("dataModel."):
            candidate = root / f"{segment}.context.jsonld"
            if candidate.is_file():
                return candidate
    return None


def _compile(path: Path | None, core_url: str) -> ActiveContext:
    if path is None:
        return compile_context(None, {}, core_url)
    document = _read_json(path)
    if not isinstance(document, dict) or "@context" not in document:
        raise SchemaLoadError(f"{path}: not a JSON-LD context (no @context member)")
    url = path.resolve().as_uri()
    try:
        return compile_context(url, {url: document}, core_url)
    except Exception as exc:  # pyld's errors have no common base worth naming
        raise SchemaLoadError(f"{path}: the @context does not compile: {exc}") from None


def _local(name: str) -> str:
    """A name the context could not compact (a full IRI) is checked by its last segment."""
    if "/" in name or "#" in name:
        return name.rstrip("/#").replace("#", "/").rsplit("/", 1)[-1]
    return name


def _path(error: ValidationError) -> str:
    parts = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        # "'x' is a required property": the path is the missing attribute
        required = error.validator_value
        for name in required if isinstance(required, list) else ():
            if name not in error.instance and repr(name) in error.message:
                parts.append(name)
                break
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
