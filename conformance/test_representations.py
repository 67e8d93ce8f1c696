"""4.5 representations round trip on real data: the Smart Data Models examples.

Each example is created with its data model @context (hosted on the broker, 5.13.2,
since the broker under test cannot reach the internet) and read back in the
normalized, simplified and concise forms.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance.client import Client, link
from conformance.data import (
    BAD_DATA,
    CONTEXTS,
    ENTITIES,
    SDM_VALID,
    absent,
    create,
    host_context,
    is_problem,
    sdm_context_file,
    sdm_example,
    sdm_link,
    stored,
    with_id,
)

CORE_FILE = "contexts/ngsi-ld-core-context-v1.8.jsonld"
MAIN = {"Property": "value", "GeoProperty": "value", "Relationship": "object"}


def _core_terms() -> set[str]:
    here = Path(__file__).resolve().parent.parent / CORE_FILE
    context = json.loads(here.read_text())["@context"]
    docs = context if isinstance(context, list) else [context]
    return {term for doc in docs if isinstance(doc, dict) for term in doc}


def _unique_copy(name: str, uid: str) -> dict[str, Any]:
    example = sdm_example(name)
    return with_id(example, f"{example['id']}:{uid}")


def _simplified(attribute: dict[str, Any]) -> Any:
    return attribute[MAIN[attribute["type"]]]


@pytest.mark.clause("4.5.1")
@pytest.mark.parametrize("name", SDM_VALID)
def test_normalized_round_trip(client: Client, broker_url: str, uid: str, name: str) -> None:
    headers = sdm_link(client, broker_url, name)
    sent = _unique_copy(name, uid)
    create(client, sent, headers=headers)
    assert stored(client, sent["id"], headers=headers) == sent


@pytest.mark.clause("6.3.5")
@pytest.mark.parametrize("name", SDM_VALID)
def test_terms_expand_with_the_data_model_context(client: Client, broker_url: str, uid: str,
                                                  name: str) -> None:
    headers = sdm_link(client, broker_url, name)
    sent = _unique_copy(name, uid)
    create(client, sent, headers=headers)
    terms = json.loads(sdm_context_file(sdm_example(name)).read_text())["@context"]
    expanded = stored(client, sent["id"])  # no Link: the core context only
    core = _core_terms()
    assert expanded["type"] == terms[sent["type"]]
    for attr in sent:
        if attr in ("id", "type") or attr in core or not isinstance(terms.get(attr), str):
            continue
        assert terms[attr] in expanded, attr
        kind = sent[attr]["type"]
        assert expanded[terms[attr]]["type"] == kind
        assert _simplified(expanded[terms[attr]]) == _simplified(sent[attr]), attr


@pytest.mark.clause("4.5.4")
@pytest.mark.parametrize("name", SDM_VALID)
def test_key_values_match_the_key_values_example(client: Client, broker_url: str, uid: str,
                                                 name: str) -> None:
    headers = sdm_link(client, broker_url, name)
    sent = _unique_copy(name, uid)
    create(client, sent, headers=headers)
    got = stored(client, sent["id"], "options=keyValues", headers=headers)
    assert got["id"] == sent["id"] and got["type"] == sent["type"]
    assert set(got) == set(sent)
    for attr, value in sent.items():
        if attr not in ("id", "type"):
            assert got[attr] == _simplified(value), attr
    # where the published keyValues example agrees with the normalized one
    key_values = sdm_example(name, normalized=False)
    comparable = [attr for attr, value in sent.items()
                  if attr not in ("id", "type") and attr in key_values
                  and _simplified(value) == key_values[attr]]
    assert comparable, "the two examples share values"
    for attr in comparable:
        assert got[attr] == key_values[attr], attr


@pytest.mark.clause("4.5.1")
@pytest.mark.parametrize("name", SDM_VALID)
def test_concise_round_trip(client: Client, broker_url: str, uid: str, name: str) -> None:
    headers = sdm_link(client, broker_url, name)
    sent = _unique_copy(name, uid)
    create(client, sent, headers=headers)
    concise = stored(client, sent["id"], "options=concise", headers=headers)
    assert set(concise) == set(sent)
    again = {**concise, "id": sent["id"] + ":again"}
    create(client, again, headers=headers)
    assert stored(client, again["id"], headers=headers) == {**sent, "id": again["id"]}


@pytest.mark.clause("4.5.1")
def test_dataset_relationship_with_array_object(client: Client, broker_url: str,
                                                uid: str) -> None:
    headers = sdm_link(client, broker_url, "Dataset")
    sent = _unique_copy("Dataset", uid)
    create(client, sent, headers=headers)
    got = stored(client, sent["id"], headers=headers)
    assert isinstance(sent["distribution"]["object"], list)
    assert got["distribution"] == sent["distribution"]
    assert got["modified"]["value"] == {"@type": "DateTime", "@value": "2021-07-01T10:27:59Z"}


@pytest.mark.clause("4.5.1")
def test_streetlight_typed_literals_and_nested_properties(client: Client, broker_url: str,
                                                          uid: str) -> None:
    headers = sdm_link(client, broker_url, "Streetlight")
    sent = _unique_copy("Streetlight", uid)
    create(client, sent, headers=headers)
    got = stored(client, sent["id"], headers=headers)
    assert got["observationDateTime"]["value"] == {"@type": "DateTime",
                                                   "@value": "2021-01-11T15:51:02+05:30"}
    assert got["municipalityInfo"]["deviceInfo"] == sent["municipalityInfo"]["deviceInfo"]
    assert got["location"] == sent["location"]


@pytest.mark.clause("4.5.1")
def test_invalid_catalogue_example_is_rejected(client: Client, broker_url: str,
                                               uid: str) -> None:
    # the published Catalogue example gives its Relationships a "value", not an "object"
    headers = sdm_link(client, broker_url, "Catalogue")
    sent = _unique_copy("Catalogue", uid)
    reply = client.post(ENTITIES, sent, headers=headers)
    assert is_problem(reply, 400, BAD_DATA)
    assert absent(client, sent["id"])


@pytest.mark.clause("5.13.2")
def test_hosted_context_document_is_served_back(client: Client, broker_url: str) -> None:
    document = json.loads(sdm_context_file(sdm_example("Streetlight")).read_text())
    url = host_context(client, broker_url, document)
    served = client.get(url[url.index(CONTEXTS):])
    assert served.status == 200 and served.json == document
    assert link(url).startswith("<http")
