"""4.9 NGSI-LD Query Language corners: any-language filters, relationships with ordering
operators, unquoted terms and expandValues; 4.5.5 datasetId as a view."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from conformance.client import Client
from conformance.data import ENTITIES, create, eid, entity, prop, rel

QUERY = "/ngsi-ld/v1/entityOperations/query"


def ids_of(reply: Any) -> list[str]:
    assert reply.status == 200, (reply.status, reply.raw)
    return [item["id"] for item in reply.json]


def barns(client: Client, uid: str) -> tuple[str, list[str]]:
    kind = f"Barn{uid}"
    made = [eid("Barn", uid, n) for n in range(3)]
    create(client, entity(made[0], kind, name={
        "type": "LanguageProperty", "languageMap": {"en": "Big Red Barn", "fr": "Grange"}},
        category={"type": "VocabProperty", "vocab": "commercial"},
        owner=rel("urn:ngsi-ld:Person:b")))
    create(client, entity(made[1], kind, name={
        "type": "LanguageProperty", "languageMap": {"de": ["Scheune", "Big Red Barn"]}}))
    create(client, entity(made[2], kind, name=prop("Big Red Barn"), owner=prop("urn:ngsi-ld:Z")))
    return kind, made


def select(client: Client, kind: str, expr: str, extra: str = "") -> list[str]:
    return ids_of(client.get(f"{ENTITIES}?type={kind}&q={quote(expr)}{extra}"))


@pytest.mark.clause("4.9")
def test_any_language_filter(client: Client, uid: str) -> None:
    # the FIWARE tutorials' form: a string in any language of the languageMap
    kind, made = barns(client, uid)
    assert select(client, kind, 'name[*]=="Big Red Barn"') == made[:2]
    assert select(client, kind, 'name[*]=="Grange"') == made[:1]
    assert select(client, kind, 'name[fr]=="Big Red Barn"') == []
    assert select(client, kind, 'name[*]!="Grange"') == made[1:2]
    body = {"type": "Query", "entities": [{"type": kind}], "q": 'name[*]=="Scheune"'}
    assert ids_of(client.post(QUERY, body)) == made[1:2]


@pytest.mark.clause("4.9")
def test_relationships_only_compare_for_equality(client: Client, uid: str) -> None:
    kind, made = barns(client, uid)
    assert select(client, kind, 'owner>"urn:a"') == made[2:]
    assert select(client, kind, 'owner<="urn:ngsi-ld:Person:b"') == []
    assert select(client, kind, "owner==urn:ngsi-ld:Person:b") == made[:1]
    assert select(client, kind, "owner!=urn:ngsi-ld:Person:b") == made[2:]


@pytest.mark.clause("4.9")
def test_unquoted_terms_and_expand_values(client: Client, uid: str) -> None:
    kind, made = barns(client, uid)
    # the vocab is stored expanded: the bare term only matches once expanded (EXAMPLE 12)
    assert select(client, kind, "category==commercial") == []
    assert select(client, kind, "category==commercial", "&expandValues=category") == made[:1]
    assert select(client, kind, "category==commercial,other",
                  "&expandValues=category") == made[:1]
    body = {"type": "Query", "entities": [{"type": kind}], "q": "category==commercial",
            "expandValues": ["category"]}
    assert ids_of(client.post(QUERY, body)) == made[:1]


@pytest.mark.clause("4.5.5")
def test_dataset_id_selects_the_view_not_the_entities(client: Client, uid: str) -> None:
    kind = f"DS{uid}"
    create(client, entity(eid("DS", uid), kind, name=[
        prop("Eiffel Tower"), prop("Tour Eiffel", datasetId="urn:ngsi-ld:Dataset:fr")]))
    reply = client.get(f"{ENTITIES}?type={kind}&attrs=name&datasetId=urn:ngsi-ld:Dataset:es")
    assert reply.status == 200 and reply.json == [{"id": eid("DS", uid), "type": kind}]
    reply = client.get(f"{ENTITIES}?type={kind}&attrs=name&datasetId=urn:ngsi-ld:Dataset:fr")
    assert reply.json[0]["name"]["value"] == "Tour Eiffel"
