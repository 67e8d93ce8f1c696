"""Tenants over HTTP: one naming rule whatever the header, conflicts refused, private contexts.

6.3.14 names the headers (NGSILD-Tenant, and Fiware-Service as FIWARE clients
send it); the broker compares names lower-cased whichever carries them, and a
request naming two tenants is 400 BadRequestData.  A Hosted @context belongs to
the tenant that added it, an ImplicitlyCreated one to the tenant whose request
carried its inline value (5.13, 5.5.10).
"""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.headers import tenant_name

ENTITY = {"id": "urn:ngsi-ld:Lamp:t1", "type": "Lamp", "power": {"type": "Property", "value": 3}}
BAD_REQUEST_DATA = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


async def test_a_tenant_is_one_whatever_header_and_case_names_it(client: TestClient) -> None:
    response = await client.post("/ngsi-ld/v1/entities", json=ENTITY,
                                 headers={"NGSILD-Tenant": "TenC"})
    assert response.status == 201
    assert response.headers["NGSILD-Tenant"] == "TenC"  # echoed as sent (6.3.14)
    for headers in ({"Fiware-Service": "TenC"}, {"Fiware-Service": "tenc"},
                    {"NGSILD-Tenant": "TENC"}, {"NGSILD-Tenant": "tenc", "Fiware-Service": "TenC"}):
        response = await client.get(f"/ngsi-ld/v1/entities/{ENTITY['id']}", headers=headers)
        assert response.status == 200, (headers, await response.text())
    response = await client.get(f"/ngsi-ld/v1/entities/{ENTITY['id']}")
    assert response.status == 404  # not the default tenant's


async def test_headers_naming_two_tenants_are_refused(client: TestClient) -> None:
    await client.post("/ngsi-ld/v1/entities", json=ENTITY, headers={"NGSILD-Tenant": "a"})
    await client.post("/ngsi-ld/v1/entities", json=ENTITY, headers={"NGSILD-Tenant": "b"})
    for headers in ([("NGSILD-Tenant", "a"), ("Fiware-Service", "b")],
                    [("NGSILD-Tenant", "a"), ("NGSILD-Tenant", "b")],
                    [("Fiware-Service", "a, b")]):
        response = await client.get(f"/ngsi-ld/v1/entities/{ENTITY['id']}", headers=headers)
        assert response.status == 400, headers
        body = await response.json()
        assert body["type"] == BAD_REQUEST_DATA and "different tenants" in body["detail"]
    # the same tenant twice is one tenant
    response = await client.get(f"/ngsi-ld/v1/entities/{ENTITY['id']}",
                                headers=[("NGSILD-Tenant", "a"), ("NGSILD-Tenant", "A")])
    assert response.status == 200


async def test_a_hosted_context_is_private_to_its_tenant(client: TestClient) -> None:
    document = {"@context": {"PrivateTerm": "https://a.example.org/PrivateTerm"}}
    response = await client.post("/ngsi-ld/v1/jsonldContexts", json=document,
                                 headers={"NGSILD-Tenant": "a"})
    assert response.status == 201
    location = response.headers["Location"]
    local_id = location.rsplit("/", 1)[1]
    for tenant in ("b", None):  # another tenant, the default tenant
        headers = {"NGSILD-Tenant": tenant} if tenant else {}
        assert (await client.get(location, headers=headers)).status == 404
        assert (await client.get(location + "?details=true", headers=headers)).status == 404
        listing = await client.get("/ngsi-ld/v1/jsonldContexts?details=true", headers=headers)
        assert local_id not in await listing.text()
        assert (await client.delete(location, headers=headers)).status == 404
    # the owner, named in either header and any case, still has it
    response = await client.get(location, headers={"Fiware-Service": "A"})
    assert response.status == 200 and "PrivateTerm" in await response.text()
    assert (await client.delete(location, headers={"NGSILD-Tenant": "a"})).status == 204


async def test_an_implicitly_created_context_is_private_to_its_tenant(
        client: TestClient) -> None:
    inline = {"PrivateTerm": "https://a.example.org/PrivateTerm"}
    core = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
    entity = {**ENTITY, "@context": [inline, core]}
    response = await client.post("/ngsi-ld/v1/entities", json=entity,
                                 headers={"NGSILD-Tenant": "a",
                                          "Content-Type": "application/ld+json"})
    assert response.status == 201, await response.text()
    # the Link header names the context the broker made of the inline value (5.13.1)
    url = response.headers["Link"].split(">", 1)[0].lstrip("<")
    path = url[url.index("/ngsi-ld/v1/jsonldContexts/"):]
    local_id = path.rsplit("/", 1)[1]
    owner = {"NGSILD-Tenant": "a"}
    listing = await client.get("/ngsi-ld/v1/jsonldContexts?kind=ImplicitlyCreated",
                               headers=owner)
    assert url in await listing.json()
    await client.post("/ngsi-ld/v1/entities", json=ENTITY, headers={"NGSILD-Tenant": "b"})
    for tenant in ("b", None):  # another tenant, the default tenant
        headers = {"NGSILD-Tenant": tenant} if tenant else {}
        assert (await client.get(path, headers=headers)).status == 404
        assert (await client.get(path + "?details=true", headers=headers)).status == 404
        for kind in ("?kind=ImplicitlyCreated&details=true", "?details=true", ""):
            listing = await client.get("/ngsi-ld/v1/jsonldContexts" + kind, headers=headers)
            assert listing.status == 200
            assert local_id not in await listing.text()
        assert (await client.delete(path, headers=headers)).status == 404
        # its URL still resolves for a request that names it (it is in the Link header
        # of tenant a's answers, and of its notifications)
        response = await client.get(
            "/ngsi-ld/v1/entities?type=Lamp&attrs=PrivateTerm",
            headers={**headers, "Link": f'<{url}>; rel="http://www.w3.org/ns/json-ld#context"'})
        assert response.status == 200, await response.text()
    # the same inline value in tenant b makes b a context of its own, listed to b only
    response = await client.post("/ngsi-ld/v1/entities",
                                 json={**entity, "id": "urn:ngsi-ld:Lamp:t2"},
                                 headers={"NGSILD-Tenant": "b",
                                          "Content-Type": "application/ld+json"})
    assert response.status == 201
    other = response.headers["Link"].split(">", 1)[0].lstrip("<")
    assert other != url
    listing = await client.get("/ngsi-ld/v1/jsonldContexts?kind=ImplicitlyCreated",
                               headers={"NGSILD-Tenant": "b"})
    assert await listing.json() == [other]
    # the owner, named in either header and any case, still has it, and may delete it
    response = await client.get(path, headers={"Fiware-Service": "A"})
    assert response.status == 200 and "PrivateTerm" in await response.text()
    details = await (await client.get(path + "?details=true", headers=owner)).json()
    assert details["kind"] == "ImplicitlyCreated" and details["URL"] == url
    assert (await client.delete(path, headers=owner)).status == 204
    assert (await client.get(path, headers=owner)).status == 404


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-",
                 min_size=1, max_size=50)


@given(_names, st.booleans(), st.booleans())
def test_any_spelling_of_a_name_in_either_header_is_one_tenant(
        name: str, upper: bool, alias: bool) -> None:
    spelled = name.upper() if upper else name.swapcase()
    by_header = tenant_name(None, spelled, True) if alias else tenant_name(spelled, None, True)
    assert by_header == name.lower() == tenant_name(name, name.upper(), True)


@given(_names, _names)
def test_two_names_are_one_tenant_or_a_400(first: str, second: str) -> None:
    if first.lower() == second.lower():
        assert tenant_name(first, second, True) == first.lower()
    else:
        with pytest.raises(BadRequestData, match="different tenants"):
            tenant_name(first, second, True)
        with pytest.raises(BadRequestData, match="different tenants"):
            tenant_name(f"{first}, {second}", None, True)
