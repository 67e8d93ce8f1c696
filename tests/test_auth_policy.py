"""The authorization rules, without HTTP: grants, roles, public tenants, the route table."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from broker.app import create_app
from broker.auth import ApiKeys, apikeys
from broker.auth.policy import (
    ROUTES,
    Decision,
    Need,
    Policy,
    Principal,
    Role,
    Scope,
    grants_of,
    need_of,
    route_key,
)
from broker.config import Settings

READ, WRITE, ADMIN = Need(Role.READER), Need(Role.WRITER), Need(Role.ADMIN)
SYSTEM = Need(Role.ADMIN, Scope.SYSTEM)
POLICY = Policy(frozenset({"opendata", ""}))


def registered_routes(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.method not in ("OPTIONS", "*")
    }


def test_every_registered_route_has_a_rule() -> None:
    # a route added without a rule would be refused to everyone (fail closed); this
    # test makes its author choose the role it needs
    app = create_app(Settings(store="memory:", explorer=True))
    missing = sorted(key for key in registered_routes(app) if need_of(*key) is None)
    assert not missing, f"add these routes to broker.auth.policy.ROUTES: {missing}"


def test_route_keys_ignore_variable_names_trailing_slashes_and_head() -> None:
    assert route_key("HEAD", "/ngsi-ld/v1/entities/{entityId}/") == (
        "GET", "/ngsi-ld/v1/entities/{}")
    assert need_of("DELETE", "/ngsi-ld/v1/csourceRegistrations/{registrationId}") == ADMIN
    assert need_of("GET", "/ngsi-ld/v1/nothing-here") is None
    assert all(key == route_key(*key) for key in ROUTES)


def test_the_roles_the_issue_names() -> None:
    assert need_of("DELETE", "/ngsi-ld/v1/entities") == ADMIN  # purge
    assert need_of("POST", "/ngsi-ld/v1/jsonldContexts") == ADMIN
    assert need_of("DELETE", "/ngsi-ld/v1/jsonldContexts/{contextId}") == ADMIN
    assert need_of("POST", "/ngsi-ld/v1/csourceSubscriptions") == ADMIN
    assert need_of("GET", "/metrics") == SYSTEM
    assert need_of("POST", "/ngsi-ld/v1/entities") == WRITE
    assert need_of("POST", "/ngsi-ld/v1/entityOperations/query") == READ
    assert need_of("GET", "/health").role is None  # type: ignore[union-attr]


def test_grants_from_a_list_an_object_or_a_string() -> None:
    assert grants_of(["city:writer", "city:reader", "*:reader", "@default:admin"]) == {
        "city": Role.WRITER, "*": Role.READER, "": Role.ADMIN}
    assert grants_of({"City": ["reader"], "farm": "admin"}) == {
        "city": Role.READER, "farm": Role.ADMIN}
    assert grants_of("city:writer other:reader") == {"city": Role.WRITER, "other": Role.READER}
    # what is not a grant gives nothing: unknown roles, no tenant, other shapes
    assert grants_of(["city:owner", "writer", ":admin", 7, None]) == {}
    assert grants_of(None) == {} and grants_of(42) == {}


def test_higher_roles_include_lower_ones_and_star_is_every_tenant() -> None:
    writer = Principal("w", {"city": Role.WRITER})
    assert POLICY.decide(writer, "city", READ) is Decision.ALLOW
    assert POLICY.decide(writer, "city", WRITE) is Decision.ALLOW
    assert POLICY.decide(writer, "city", ADMIN) is Decision.FORBIDDEN
    assert POLICY.decide(writer, "farm", READ) is Decision.FORBIDDEN  # another tenant
    root = Principal("r", {"*": Role.ADMIN, "city": Role.READER})
    assert POLICY.decide(root, "city", ADMIN) is Decision.ALLOW  # the higher grant wins
    assert POLICY.decide(root, "any", SYSTEM) is Decision.ALLOW
    assert POLICY.decide(Principal("a", {"city": Role.ADMIN}), "city", SYSTEM) \
        is Decision.FORBIDDEN


def test_public_tenants_are_readable_by_anyone_and_writable_by_no_anonymous() -> None:
    assert POLICY.decide(None, "opendata", READ) is Decision.ALLOW
    assert POLICY.decide(None, "", READ) is Decision.ALLOW  # the default tenant is public here
    assert POLICY.decide(None, "opendata", WRITE) is Decision.UNAUTHENTICATED
    assert POLICY.decide(None, "city", READ) is Decision.UNAUTHENTICATED
    assert POLICY.decide(Principal("x"), "city", READ) is Decision.FORBIDDEN
    assert POLICY.decide(Principal("x"), "opendata", READ) is Decision.ALLOW
    assert POLICY.decide(None, "x", SYSTEM) is Decision.UNAUTHENTICATED


def test_an_unclassified_route_is_closed() -> None:
    assert POLICY.decide(None, "", None) is Decision.UNAUTHENTICATED
    assert POLICY.decide(Principal("r", {"*": Role.ADMIN}), "", None) is Decision.FORBIDDEN


_roles = st.sampled_from(list(Role))
_tenants = st.sampled_from(["", "city", "farm", "opendata"])


@given(st.dictionaries(st.sampled_from(["", "city", "farm", "*"]), _roles), _tenants, _roles)
def test_a_decision_follows_the_highest_applicable_grant(grants: dict[str, Role], tenant: str,
                                                         needed: Role) -> None:
    decision = Policy().decide(Principal("p", grants), tenant, Need(needed))
    applicable = [role for name, role in grants.items() if name in (tenant, "*")]
    expected = bool(applicable) and max(applicable) >= needed
    assert (decision is Decision.ALLOW) == expected


def test_the_api_key_command_makes_a_key_its_file_accepts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert apikeys.main(["iot-agent", "city:writer", "@default:reader"]) == 0
    out = capsys.readouterr().out
    key = out.split("key:")[1].split()[0]
    entry = orjson.loads(out.split("entry:")[1])
    assert key not in out.split("entry:")[1]  # the file holds the hash, never the key
    path = tmp_path / "keys.json"
    path.write_bytes(orjson.dumps({"keys": [entry]}))
    keys = ApiKeys.load(str(path))
    principal = keys.principal(key)
    assert principal is not None and principal.subject == "api-key:iot-agent"
    assert principal.grants == {"city": Role.WRITER, "": Role.READER}
    assert keys.principal(key[:-1]) is None and keys.principal("") is None
