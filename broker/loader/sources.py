"""Reading open-data files into NGSI-LD entities, one numbered record at a time.

Formats, chosen by the file's extension (or ``--format``):

* ``.json`` / ``.jsonld``: one entity or an array of entities (NGSI-LD normalized
  or concise, an optional ``@context`` per entity); a GeoJSON FeatureCollection
  is recognised by its ``type``;
* ``.jsonl`` / ``.ndjson``: one entity per line;
* ``.geojson``: a FeatureCollection; each Feature becomes an entity: its ``id``
  (or ``properties.id``), ``properties.type`` (or ``--type``), the geometry as
  ``location`` and every other property as an attribute (plain values become
  Properties; NGSI-LD attributes, as the broker's own GeoJSON output has them,
  stay as they are);
* ``.csv``: rows turned into entities by a mapping file (``broker.loader.mapping``).

Records are numbered from 1 in file order (array items, lines, features, CSV
data rows): the number is what reports and the resume point refer to.

A source is read in two steps so that the second can run in another process
(``broker.loader.pipeline``): ``items`` are the numbered raw items in file order
(a line's bytes, a CSV record's text, an array item or Feature), cheap to read and
to send; its ``decoder`` (picklable) turns one into a :class:`Record`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from broker.loader.mapping import CsvMapping, RowError

FORMATS = ("json", "jsonl", "geojson", "csv")
_KINDS = {"Property", "Relationship", "GeoProperty", "LanguageProperty", "VocabProperty",
          "JsonProperty", "ListProperty", "ListRelationship"}


class SourceError(ValueError):
    """A file that cannot be read at all (not one bad record)."""


@dataclass(slots=True)
class Record:
    """One entity read from a file, or the reason it could not be read."""

    number: int
    entity: dict[str, Any] | None = None
    error: str | None = None

    @property
    def entity_id(self) -> str | None:
        entity = self.entity
        return entity.get("id") if isinstance(entity, dict) else None

    @classmethod
    def named(cls, number: int, entity_id: str | None) -> Record:
        """A record reduced to its number and id: what a report needs of it once its
        entity stayed in a worker process."""
        return cls(number, {"id": entity_id} if entity_id else None)


@dataclass(frozen=True, slots=True)
class Decoder:
    """How one raw item of a file becomes a record (picklable: workers decode too)."""

    format: str
    context: Any = None
    mapping: CsvMapping | None = None
    header: tuple[str, ...] = ()
    entity_type: str | None = None

    def __call__(self, number: int, raw: Any) -> Record:
        if self.format == "jsonl":
            try:
                item = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                return Record(number, error=f"not JSON: {exc}")
            return _entity(number, item, self.context)
        if self.format == "csv":
            cells = self.cells(raw)
            if cells is None:
                return Record(number, error="not a CSV row")
            return self._row(number, cells)
        if self.format == "geojson":
            try:
                entity = feature_entity(raw, self.entity_type)
            except RowError as exc:
                return Record(number, error=str(exc))
            return Record(number, _with_context(entity, self.context))
        return _entity(number, raw, self.context)

    def cells(self, record: str) -> list[str] | None:
        """The cells of one CSV record's text (an item of a CSV source); None: not CSV."""
        assert self.mapping is not None
        try:
            return _cells(record, self.mapping.delimiter)
        except csv.Error:
            return None

    def _row(self, number: int, cells: list[str]) -> Record:
        # as csv.DictReader reads a row: missing cells are empty, extra ones refuse it
        header = self.header
        if len(cells) > len(header):
            return Record(number, error="the row has more cells than the header")
        row = dict(zip(header, cells, strict=False))
        for name in header[len(cells):]:
            row[name] = ""
        assert self.mapping is not None
        try:
            return Record(number, self.mapping.entity(row))
        except RowError as exc:
            return Record(number, error=str(exc))


@dataclass(slots=True)
class Source:
    """A file to load: its numbered raw items (lazily), how to decode them, and how many
    there are when known up front."""

    path: Path
    format: str
    total: int | None
    items: Iterator[tuple[int, Any]]
    decoder: Decoder = field(default_factory=lambda: Decoder("json"))

    @property
    def records(self) -> Iterator[Record]:
        """The records, decoded here (in file order)."""
        decode = self.decoder
        return (decode(number, raw) for number, raw in self.items)


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".geojson":
        return "geojson"
    if suffix == ".csv":
        return "csv"
    if suffix in (".json", ".jsonld"):
        return "json"
    raise SourceError(f"{path}: unknown format (use .json, .jsonl, .geojson or .csv, "
                      "or --format)")


def open_source(path: Path, *, fmt: str | None = None, mapping: CsvMapping | None = None,
                entity_type: str | None = None, context: Any = None) -> Source:
    """The records of one file; SourceError when the file cannot be read at all."""
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise SourceError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise SourceError(f"{path}: no such file")
    if fmt == "csv":
        if mapping is None:
            raise SourceError(f"{path}: a CSV file needs a mapping file (--mapping)")
        header, rows = _csv(path, mapping)
        return Source(path, fmt, _count_lines(path) - 1, rows,
                      Decoder(fmt, mapping=mapping, header=header))
    if fmt == "jsonl":
        return Source(path, fmt, _count_lines(path), _json_lines(path),
                      Decoder(fmt, context=context))
    document = _load_json(path)
    if isinstance(document, dict) and document.get("type") == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            raise SourceError(f"{path}: a FeatureCollection needs a features array")
        return Source(path, "geojson", len(features), enumerate(features, 1),
                      Decoder("geojson", context=context, entity_type=entity_type))
    if fmt == "geojson":
        raise SourceError(f"{path}: not a GeoJSON FeatureCollection")
    items = document if isinstance(document, list) else [document]
    return Source(path, fmt, len(items), enumerate(items, 1), Decoder(fmt, context=context))


def _load_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise SourceError(f"{path}: not JSON ({exc})") from None
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from None


def _count_lines(path: Path) -> int:
    count, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _with_context(item: Any, context: Any) -> Any:
    if context is not None and isinstance(item, dict) and "@context" not in item:
        return {**item, "@context": context}
    return item


def _entity(number: int, item: Any, context: Any) -> Record:
    if not isinstance(item, dict):
        return Record(number, error=f"an entity is a JSON object, not {type(item).__name__}")
    return Record(number, _with_context(item, context))


def _json_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                yield number, line


def feature_entity(feature: Any, entity_type: str | None = None) -> dict[str, Any]:
    """The NGSI-LD entity of one GeoJSON Feature (see the module docstring)."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise RowError("not a GeoJSON Feature")
    properties = dict(feature.get("properties") or {})
    entity_id = feature.get("id", properties.pop("id", None))
    if not isinstance(entity_id, str) or not entity_id:
        raise RowError("the Feature has no id (feature.id or properties.id)")
    properties.pop("id", None)
    kind = properties.pop("type", None) or entity_type
    if not kind:
        raise RowError("the Feature has no entity type (properties.type or --type)")
    entity: dict[str, Any] = {"id": entity_id, "type": kind}
    context = properties.pop("@context", None)
    for name, value in properties.items():
        if isinstance(value, dict) and value.get("type") in _KINDS:
            entity[name] = value
        elif value is not None:
            entity[name] = {"type": "Property", "value": value}
    geometry = feature.get("geometry")
    if isinstance(geometry, dict) and "location" not in entity:
        entity["location"] = {"type": "GeoProperty", "value": geometry}
    if context is not None:
        entity["@context"] = context
    return entity


def _csv(path: Path, mapping: CsvMapping) -> tuple[tuple[str, ...], Iterator[tuple[int, Any]]]:
    """The header and the numbered records (each its text: ``Decoder`` reads its cells)
    of a CSV file; empty rows skipped and not counted, as csv.DictReader does."""
    handle = path.open(newline="", encoding="utf-8-sig")
    records = _csv_records(handle, mapping.delimiter)
    try:
        header = tuple(_cells(next(records, ""), mapping.delimiter))
    except (csv.Error, UnicodeDecodeError) as exc:
        handle.close()
        raise SourceError(f"{path}: {exc}") from None
    missing = mapping.columns() - set(header)
    if missing:
        handle.close()
        raise SourceError(f"{path}: the mapping names columns the file lacks: "
                          f"{', '.join(sorted(missing))}")

    def rows() -> Iterator[tuple[int, Any]]:
        with handle:
            yield from enumerate(records, 1)

    return header, rows()


#: the lines csv.reader reads as an empty row (skipped)
_BLANK = frozenset(("\n", "\r\n", "\r"))


def _csv_records(lines: Iterator[str], delimiter: str) -> Iterator[str]:
    """The text of each record of the CSV ``lines`` (a file opened with ``newline=""``:
    its lines end as csv.reader ends rows), empty rows left out: the records csv.reader
    reads, each left for a worker to split into cells (``Decoder``), so that the process
    that writes does not.  A line without a quote is one record; where there is one,
    csv.reader itself takes the lines of the record (a quoted cell may hold newlines)."""
    lines = iter(lines)
    for line in lines:
        if '"' not in line:
            if line not in _BLANK:
                yield line
            continue
        taken = [line]
        if next(csv.reader(_taking(line, lines, taken), delimiter=delimiter), None):
            yield "".join(taken)


def _taking(first: str, lines: Iterator[str], taken: list[str]) -> Iterator[str]:
    """``first`` then the next of ``lines``, each noted in ``taken``, as they are asked for."""
    yield first
    for line in lines:
        taken.append(line)
        yield line


def _cells(record: str, delimiter: str) -> list[str]:
    """The cells of one record's text (csv.Error: not CSV)."""
    return next(csv.reader((record,), delimiter=delimiter), [])


def csv_text(header: list[str], rows: list[list[str]], delimiter: str = ",") -> str:
    """CSV text of a header and rows, quoted as the reader expects (tests, examples)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)  # \r\n: cells holding \r are quoted too
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
