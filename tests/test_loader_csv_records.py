"""A CSV file's records, as the loader's writer cuts them (each record's text, its cells
read by a worker): the rows csv.reader reads from the whole file, for any text."""

from __future__ import annotations

import csv
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from broker.loader.mapping import parse_mapping
from broker.loader.sources import open_source

# quotes, both delimiters, every line ending, blanks: every state of csv's reader
_TEXT = st.text(alphabet=st.sampled_from(['a', 'b', ',', ';', '"', '\r', '\n', ' ', 'é']),
                max_size=80)


def _read(path: Path, delimiter: str) -> list[list[str]] | str:
    """The non-empty rows csv.reader reads from the whole file (or its error)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return [cells for cells in csv.reader(handle, delimiter=delimiter) if cells][1:]
    except csv.Error as exc:
        return f"csv.Error: {exc}"


@given(body=_TEXT, delimiter=st.sampled_from([",", ";"]))
@example(body='x,"a\nb",c\n\n"q""q",2\r\nab"c,d\r"unterminated\n', delimiter=",")
def test_the_records_cut_are_the_rows_csv_reads(tmp_path_factory: object, body: str,
                                                 delimiter: str) -> None:
    directory = tmp_path_factory.mktemp("csv")  # type: ignore[attr-defined]
    path = directory / "rows.csv"
    path.write_bytes(("h1" + delimiter + "h2\r\n" + body).encode())
    mapping = parse_mapping({"type": "T", "id": "urn:ngsi-ld:T:{h1}", "delimiter": delimiter,
                             "attributes": {"h2": "h2"}})
    expected = _read(path, delimiter)
    try:
        source = open_source(path, mapping=mapping)
        got: list[list[str]] | str = [
            source.decoder.cells(text) or [] for _, text in source.items]
        numbers = [number for number, _ in open_source(path, mapping=mapping).items]
    except csv.Error as exc:
        got, numbers = f"csv.Error: {exc}", []
    assert got == expected
    if isinstance(got, list):
        assert numbers == list(range(1, len(got) + 1))  # numbered from 1, blanks not counted
