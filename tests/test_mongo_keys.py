"""The reversible field-name encoding of the MongoDB backend (storage/mongo/keys.py)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from storage.mongo.keys import decode_doc, decode_key, encode_doc, encode_key, field_path

IRI_CHARS = st.sampled_from([*"abc.$%:/#?=&-_~2E54", "%2E", "%25", "%24", "\x00", "é", "😀"])
iri_like = st.lists(IRI_CHARS, max_size=12).map("".join)
names = st.text() | iri_like


def _valid_field(field: str) -> bool:
    return bool(field) and "." not in field and "\x00" not in field and not field.startswith("$")


@given(names)
def test_any_name_round_trips_and_encodes_to_a_valid_field(name: str) -> None:
    field = encode_key(name)
    assert _valid_field(field)
    assert decode_key(field) == name


@given(names, names)
def test_distinct_names_get_distinct_fields(a: str, b: str) -> None:
    assert (encode_key(a) == encode_key(b)) == (a == b)


def test_common_names_are_readable() -> None:
    assert encode_key("value") == "value"
    assert encode_key("https://example.org/p") == "https://example%2Eorg/p"
    assert encode_key("$set") == "%24set"
    assert encode_key("a$b") == "a$b"
    assert encode_key("100%") == "100%25"
    assert encode_key("") == "%"
    assert field_path("https://a.b/c", "x.y") == "https://a%2Eb/c.x%2Ey"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=12,
)


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in [key, *_keys(v)]]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


@given(json_values)
def test_documents_round_trip_with_every_key_valid(value: Any) -> None:
    encoded = encode_doc(value)
    assert all(_valid_field(key) for key in _keys(encoded))
    assert decode_doc(encoded) == value
