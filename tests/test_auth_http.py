"""Authentication over HTTP: tokens of a local issuer, API keys, public tenants, every route.

The issuer (``tests/auth_issuer.py``) makes its keys in the test and serves its
key set on loopback; the broker reads it at start, as it would Keycloak's.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from auth_issuer import AUDIENCE, Issuer, rsa_key

from broker.app import AUTHENTICATION, create_app
from broker.auth import Authentication
from broker.auth.policy import Role, Scope, need_of
from broker.config import Settings

API_KEY = "iot-agent-secret-key-1"
ENTITY = {"id": "urn:ngsi-ld:Lamp:1", "type": "Lamp",
          "power": {"type": "Property", "value": 1}}
FORBIDDEN = "https://uri.etsi.org/ngsi-ld/errors/Forbidden"
UNAUTHORIZED = "https://uri.etsi.org/ngsi-ld/errors/Unauthorized"


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    issuer = Issuer()
    await issuer.start()
    yield issuer
    await issuer.close()


def _settings(issuer: Issuer, tmp_path: Path, **changes: Any) -> Settings:
    keys = tmp_path / "api-keys.json"
    keys.write_bytes(orjson.dumps({"keys": [
        {"name": "iot-agent", "sha256": hashlib.sha256(API_KEY.encode()).hexdigest(),
         "roles": ["city:writer"]}]}))
    values: dict[str, Any] = dict(
        store="memory:", auth="oidc", auth_issuer=issuer.url, auth_audience=AUDIENCE,
        public_tenants=("opendata",), api_keys=str(keys))
    values.update(changes)
    return Settings(**values)


async def _client(settings: Settings) -> TestClient:
    client = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    return client


@pytest.fixture
async def broker(issuer: Issuer, tmp_path: Path) -> AsyncIterator[TestClient]:
    client = await _client(_settings(issuer, tmp_path))
    yield client
    await client.close()


def _as(token: str | None, tenant: str | None = "city", **more: str) -> dict[str, str]:
    headers = dict(more)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if tenant is not None:
        headers["NGSILD-Tenant"] = tenant
    return headers


async def _problem(response: Any, status: int, type_uri: str) -> dict[str, Any]:
    assert response.status == status, await response.text()
    body = await response.json()
    assert body["type"] == type_uri and body["status"] == status
    return body


async def _create(client: TestClient, token: str, tenant: str = "city") -> None:
    response = await client.post("/ngsi-ld/v1/entities", json=ENTITY, headers=_as(token, tenant))
    assert response.status == 201, await response.text()


async def test_a_writer_writes_and_reads_its_tenant(broker: TestClient, issuer: Issuer) -> None:
    token = issuer.token(["city:writer"])
    await _create(broker, token)
    response = await broker.get(f"/ngsi-ld/v1/entities/{ENTITY['id']}", headers=_as(token))
    assert response.status == 200
    assert (await response.json())["power"]["value"] == 1


async def test_no_token_is_401_with_a_bearer_challenge(broker: TestClient) -> None:
    response = await broker.get("/ngsi-ld/v1/entities?type=Lamp", headers=_as(None))
    body = await _problem(response, 401, UNAUTHORIZED)
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="ngsi-ld"')
    assert "credentials" in body["detail"]


@pytest.mark.parametrize(("case", "reason"), [
    ("expired", "expired"),
    ("not yet valid", "not valid yet"),
    ("wrong audience", "aud"),
    ("wrong issuer", "iss"),
    ("bad signature", "signature"),
    ("unknown key", "does not publish"),
    ("no expiry", "exp"),
    ("not a jwt", "not a JWT"),
    ("symmetric algorithm", "algorithm"),
])
async def test_a_token_not_accepted_is_401_invalid_token(
        broker: TestClient, issuer: Issuer, case: str, reason: str) -> None:
    grants = ["city:admin"]
    tokens = {
        "expired": lambda: issuer.token(grants, lifetime=-3600),
        "not yet valid": lambda: issuer.token(grants, not_before=time.time() + 3600),
        "wrong audience": lambda: issuer.token(grants, aud="another-client"),
        "wrong issuer": lambda: issuer.token(grants, iss="https://evil.example.org/realms/city"),
        # the kid of the issuer's key, the signature of another key
        "bad signature": lambda: issuer.token(grants, key=rsa_key("k1")),
        "unknown key": lambda: issuer.token(grants, key=rsa_key("stranger")),
        "no expiry": lambda: issuer.token(grants, exp=None),
        "not a jwt": lambda: "a.b.c",
        "symmetric algorithm": lambda: _hs256(issuer),
    }
    response = await broker.get("/ngsi-ld/v1/entities?type=Lamp",
                                headers=_as(tokens[case]()))
    body = await _problem(response, 401, UNAUTHORIZED)
    assert reason in body["detail"], body["detail"]
    challenge = response.headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in challenge and re.fullmatch(r'[ -~]+', challenge)


def _hs256(issuer: Issuer) -> str:
    public = issuer.keys[0].public_jwk()["n"]  # the public key as an HMAC secret
    return jwt.encode({"iss": issuer.url, "aud": AUDIENCE, "exp": int(time.time()) + 60},
                      public, algorithm="HS256", headers={"kid": issuer.keys[0].kid})


async def test_an_ec_key_signs_too(broker: TestClient, issuer: Issuer) -> None:
    token = issuer.token(["city:reader"], key=issuer.keys[1])
    response = await broker.get("/ngsi-ld/v1/types", headers=_as(token))
    assert response.status == 404 or response.status == 200, await response.text()
    assert response.status != 401


async def test_key_rotation_reads_the_set_again_once(broker: TestClient, issuer: Issuer) -> None:
    assert issuer.reads == 1  # read at start
    writer = issuer.token(["city:writer"])
    await _create(broker, writer)
    assert issuer.reads == 1  # a known key: the set is not read again
    new_key = issuer.rotate()
    response = await broker.get(f"/ngsi-ld/v1/entities/{ENTITY['id']}",
                                headers=_as(issuer.token(["city:reader"], key=new_key)))
    assert response.status == 200, await response.text()
    assert issuer.reads == 2
    # a made-up kid right after: the set is not read again (rate limit), the token is refused
    for number in range(5):
        response = await broker.get("/ngsi-ld/v1/types", headers=_as(
            issuer.token(["city:reader"], key=rsa_key(f"made-up-{number}"))))
        assert response.status == 401
    assert issuer.reads == 2


async def test_an_issuer_down_at_start_is_503_until_its_keys_are_read(
        issuer: Issuer, tmp_path: Path) -> None:
    issuer.up = False
    client = await _client(_settings(issuer, tmp_path))
    try:
        token = issuer.token(["city:writer"])
        response = await client.get("/ngsi-ld/v1/types", headers=_as(token))
        assert response.status == 503  # not the caller's fault: no key to check with
        issuer.up = True
        for auth in _keysets(client):
            auth._last_refetch = float("-inf")  # the rate limit has passed
        response = await client.get("/ngsi-ld/v1/types", headers=_as(token))
        assert response.status in (200, 404), await response.text()
    finally:
        await client.close()


def _keysets(client: TestClient) -> list[Any]:
    found = []
    owner = client.app.get(AUTHENTICATION)
    if isinstance(owner, Authentication) and owner.tokens is not None:
        found.append(owner.tokens.keys)
    return found


async def test_the_jwks_url_given_outright_and_a_keycloak_style_claim(
        issuer: Issuer, tmp_path: Path) -> None:
    client = await _client(_settings(issuer, tmp_path, auth_jwks_url=issuer.jwks_url,
                                     auth_claim="resource_access.ngsi-ld.roles"))
    try:
        token = issuer.token(None, resource_access={"ngsi-ld": {"roles": ["city:writer"]}})
        await _create(client, token)
    finally:
        await client.close()


async def test_a_jwks_file(issuer: Issuer, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(orjson.dumps({"keys": [key.public_jwk() for key in issuer.keys]}))
    client = await _client(_settings(issuer, tmp_path, auth_jwks_file=str(jwks)))
    try:
        await _create(client, issuer.token(["city:writer"]))
        assert issuer.reads == 0  # never fetched
    finally:
        await client.close()


async def test_another_tenant_is_forbidden(broker: TestClient, issuer: Issuer) -> None:
    await _create(broker, issuer.token(["city:writer"]))
    farm = issuer.token(["farm:admin"])
    response = await broker.get(f"/ngsi-ld/v1/entities/{ENTITY['id']}", headers=_as(farm))
    body = await _problem(response, 403, FORBIDDEN)
    assert "city" in body["detail"]
    # the tenant compares lower-cased, as the operation does: no way around by case
    response = await broker.get(f"/ngsi-ld/v1/entities/{ENTITY['id']}",
                                headers=_as(farm, tenant=None, **{"Fiware-Service": "CITY"}))
    await _problem(response, 403, FORBIDDEN)


async def test_a_public_tenant_is_read_anonymously_and_not_written(
        broker: TestClient, issuer: Issuer) -> None:
    await _create(broker, issuer.token(["opendata:writer"]), tenant="opendata")
    response = await broker.get("/ngsi-ld/v1/entities?type=Lamp", headers=_as(None, "opendata"))
    assert response.status == 200
    assert [e["id"] for e in await response.json()] == [ENTITY["id"]]
    response = await broker.delete(f"/ngsi-ld/v1/entities/{ENTITY['id']}",
                                   headers=_as(None, "opendata"))
    await _problem(response, 401, UNAUTHORIZED)
    # subscriptions are not public data: their endpoints are the subscriber's
    response = await broker.get("/ngsi-ld/v1/subscriptions", headers=_as(None, "opendata"))
    await _problem(response, 401, UNAUTHORIZED)
    # the default tenant is not public here
    response = await broker.get("/ngsi-ld/v1/entities?type=Lamp", headers=_as(None, None))
    await _problem(response, 401, UNAUTHORIZED)


async def test_a_bad_token_on_a_public_tenant_is_still_401(broker: TestClient,
                                                            issuer: Issuer) -> None:
    response = await broker.get("/ngsi-ld/v1/entities?type=Lamp",
                                headers=_as(issuer.token([], lifetime=-600), "opendata"))
    await _problem(response, 401, UNAUTHORIZED)


async def test_api_keys_as_header_or_bearer(broker: TestClient) -> None:
    response = await broker.post("/ngsi-ld/v1/entities", json=ENTITY,
                                 headers=_as(None, "city", **{"X-API-Key": API_KEY}))
    assert response.status == 201, await response.text()
    response = await broker.get(f"/ngsi-ld/v1/entities/{ENTITY['id']}", headers=_as(API_KEY))
    assert response.status == 200
    response = await broker.delete("/ngsi-ld/v1/entities?type=Lamp", headers=_as(API_KEY))
    await _problem(response, 403, FORBIDDEN)  # purge is admin
    for wrong in (API_KEY + "x", "", "x" * 5000):
        response = await broker.get("/ngsi-ld/v1/types",
                                    headers=_as(None, "city", **{"X-API-Key": wrong}))
        await _problem(response, 401, UNAUTHORIZED)
    response = await broker.get("/ngsi-ld/v1/types", headers=_as(None, "city", Authorization=
                                                               f"Basic {API_KEY}"))
    await _problem(response, 401, UNAUTHORIZED)


async def test_api_keys_only(issuer: Issuer, tmp_path: Path) -> None:
    client = await _client(_settings(issuer, tmp_path, auth="api-keys", auth_issuer=""))
    try:
        await _create(client, API_KEY)
        response = await client.get("/ngsi-ld/v1/types",
                                    headers=_as(issuer.token(["city:admin"])))
        await _problem(response, 401, UNAUTHORIZED)  # no issuer trusted: a JWT is no key
        assert issuer.reads == 0
    finally:
        await client.close()


def test_options_that_do_not_fit_are_refused_at_start(issuer: Issuer, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--auth-audience"):
        create_app(_settings(issuer, tmp_path, auth_audience=""))
    with pytest.raises(ValueError, match="--api-keys"):
        create_app(_settings(issuer, tmp_path, auth="api-keys", api_keys=""))
    bad = tmp_path / "bad.json"
    bad.write_text('{"keys": [{"name": "x", "sha256": "abc"}]}')
    with pytest.raises(ValueError, match="sha256"):
        create_app(_settings(issuer, tmp_path, api_keys=str(bad)))


async def test_operational_endpoints(broker: TestClient, issuer: Issuer) -> None:
    assert (await broker.get("/health")).status == 200
    assert (await broker.get("/version")).status == 200
    await _problem(await broker.get("/metrics"), 401, UNAUTHORIZED)
    city_admin = issuer.token(["city:admin"])
    await _problem(await broker.get("/metrics", headers=_as(city_admin)), 403, FORBIDDEN)
    response = await broker.get("/metrics", headers=_as(issuer.token(["*:admin"])))
    assert response.status == 200
    assert 'status="401"' in await response.text()  # refusals are counted
    # OPTIONS (CORS preflights) and unknown paths need nothing
    assert (await broker.options("/ngsi-ld/v1/entities")).status == 204
    assert (await broker.get("/ngsi-ld/v1/nowhere")).status == 404


# -- every route, every role --------------------------------------------------------------


def _routes(client: TestClient) -> list[tuple[str, str]]:
    found = set()
    for route in client.app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("OPTIONS", "HEAD", "*"):
            continue
        canonical = resource.canonical
        if canonical != "/" and canonical.endswith("/"):
            continue  # the trailing-slash twin of a route
        found.add((route.method, canonical))
    return sorted(found)


def _sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "urn:ngsi-ld:X:1", path)


@pytest.mark.parametrize("role", ["reader", "writer", "admin", None])
async def test_each_role_on_every_route(broker: TestClient, issuer: Issuer,
                                        role: str | None) -> None:
    """A role is let through exactly where the table says: never 401/403 there, else 403."""
    token = issuer.token([f"city:{role}"]) if role else None
    granted = Role[role.upper()] if role else None
    checked = 0
    for method, path in _routes(broker):
        need = need_of(method, path)
        assert need is not None
        if need.role is None:
            continue
        if need.scope is Scope.SYSTEM or path.startswith("/explorer"):
            allowed = False  # a single tenant's grant never reaches the broker-wide ones
        else:
            allowed = granted is not None and granted >= need.role
        headers = _as(token, "city", **{"Content-Type": "application/json"})
        response = await broker.request(method, _sample(path), headers=headers,
                                        data=b"{}" if method in ("POST", "PATCH", "PUT") else None)
        if allowed:
            assert response.status not in (401, 403), (method, path, await response.text())
        else:
            expected = (401, UNAUTHORIZED) if token is None else (403, FORBIDDEN)
            await _problem(response, *expected)
        checked += 1
    assert checked > 60


async def test_auth_off_changes_nothing(tmp_path: Path) -> None:
    client = await _client(Settings(store="memory:"))
    try:
        response = await client.post("/ngsi-ld/v1/entities", json=ENTITY,
                                     headers={"Authorization": "Bearer garbage"})
        assert response.status == 201
        assert (await client.get("/metrics")).status == 200
        assert (await client.delete("/ngsi-ld/v1/entities?type=Lamp")).status == 204
    finally:
        await client.close()


async def test_many_requests_with_a_new_key_share_one_read(broker: TestClient,
                                                           issuer: Issuer) -> None:
    new_key = issuer.rotate()
    token = issuer.token(["city:reader"], key=new_key)
    responses = await asyncio.gather(*(
        broker.get("/ngsi-ld/v1/types", headers=_as(token)) for _ in range(20)))
    assert {response.status for response in responses} <= {200, 404}
    assert issuer.reads == 2  # at start, then once for the twenty


async def test_the_explorer_stream_names_its_tenant_in_the_query(broker: TestClient,
                                                                 issuer: Issuer) -> None:
    await _create(broker, issuer.token(["city:writer", "opendata:writer"]))
    await _create(broker, issuer.token(["opendata:writer"]), tenant="opendata")
    reader = issuer.token(["city:reader"])
    for token, tenant, status in ((reader, "city", 200), (reader, "farm", 403),
                                  (None, "opendata", 200), (None, "city", 401)):
        headers = _as(token, tenant=None)
        async with broker.get(f"/explorer/events?tenant={tenant}", headers=headers) as response:
            assert response.status == status, (tenant, status)
    # the tenant list is the operator's
    await _problem(await broker.get("/explorer/tenants", headers=_as(reader)), 403, FORBIDDEN)
    assert (await broker.get("/explorer/", headers=_as(None))).status == 200
    assert (await broker.get("/explorer/features", headers=_as(None))).status == 200


def _unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    return f"{part(header)}.{part(payload)}."


@pytest.mark.parametrize("authorization", [
    "Bearer", "Bearer ", "Bearer  x", "bearer x.y.z", "Bearer a.b", "Bearer ....",
    "Bearer eyJ.eyJ.sig", "Bearer \u00e9t\u00e9.\u00e9.\u00e9", "Token abc", "Basic Zm9vOmJhcg==",
    "Bearer " + "A" * 8000,
    "Bearer " + _unsigned({"alg": "none", "kid": "k1"}, {"iss": "x", "aud": AUDIENCE}),
    "Bearer " + _unsigned({"alg": "RS256", "kid": 7}, {"iss": "x"}) + "c2ln",
    "Bearer " + _unsigned({"alg": "RS256", "kid": "k1"}, {"iss": "x"}) + "c2ln",
])
async def test_a_malformed_credential_is_401_never_a_500(broker: TestClient,
                                                         authorization: str) -> None:
    response = await broker.get("/ngsi-ld/v1/types", headers={
        "Authorization": authorization.encode("utf-8").decode("latin-1")})
    await _problem(response, 401, UNAUTHORIZED)
