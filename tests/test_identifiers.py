"""ngsi_ld.identifiers: which URIs identify an entity (4.5.1) and which names are terms."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.entity import parse_entity
from ngsi_ld.errors import BadRequestData
from ngsi_ld.identifiers import is_iri


@pytest.mark.parametrize(
    "char",
    [
        "\u202e",  # right-to-left override (format)
        "\u200b",  # zero width space (format)
        "\ufeff",  # byte order mark (format)
        "\u2028",  # line separator
        "\u00a0",  # no-break space
        "\ufe0f",  # variation selector
        "\U000e0100",  # supplementary variation selector
        "\ufdd0",  # noncharacter
        "\ufffe",  # plane-trailing noncharacter
        "\u115f",  # Hangul choseong filler
        "\u3164",  # Hangul filler
        "\uffa0",  # halfwidth Hangul filler
        "\u2800",  # Braille pattern blank
        "\ue000",  # private use
        "\x01",  # control
        "<",
    ],
)
def test_an_id_with_a_character_nobody_can_read_back_is_refused(char: str) -> None:
    entity_id = f"urn:ngsi-ld:Vehicle:A{char}B"
    assert not is_iri(entity_id)
    with pytest.raises(BadRequestData, match="URI"):
        parse_entity({"id": entity_id, "type": "Vehicle"})


@pytest.mark.parametrize("iri", ["urn:ngsi-ld:Ciudad:París", "urn:ngsi-ld:Город:1",
                                 "https://例え.jp/東京", "urn:ngsi-ld:T:ü-ñ-ç"])
def test_visible_non_ascii_characters_make_an_iri(iri: str) -> None:
    assert is_iri(iri)


@given(st.characters(min_codepoint=0x80))
def test_a_non_ascii_character_is_accepted_only_if_visible(char: str) -> None:
    category = unicodedata.category(char)
    if category[0] in "CZ":
        assert not is_iri(f"urn:x:{char}")
    if is_iri(f"urn:x:{char}"):
        assert category[0] not in "CZ" and not char.isspace()
