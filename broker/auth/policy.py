"""Who may do what: roles per tenant, the role every route needs, and the decision.

Pure: no HTTP, no I/O.  The middleware (``broker.auth.middleware``) finds the
route's :class:`Need` in :data:`ROUTES`, the caller's :class:`Principal` (from a
token or an API key, or none) and the tenant the request names, and asks
:meth:`Policy.decide`.

Roles are ordered: ``admin`` can do what ``writer`` can, ``writer`` what
``reader`` can.  A grant names one tenant (``@default`` is the default tenant,
the one a request without a tenant header targets) or every tenant (``*``).

- ``reader``: entity data (retrieve, query, types, attributes, temporal
  reads), the @context documents, Snapshot reads;
- ``writer``: every entity write, batches, Snapshots, subscriptions (reading
  them too: a subscription holds its endpoint and the headers sent to it) and
  reading context source registrations (they hold the source's headers);
- ``admin``: purge, hosted @contexts (add, delete), registrations and
  registration subscriptions (writes), Snapshot purge; with a grant on every
  tenant (``*``), the broker-wide resources: ``/metrics`` and the explorer's
  tenant list.

A tenant named public (``--public-tenant``) may be read by anyone, anonymous
callers included.  ``/version``, ``/health`` and the explorer's page and assets
need nothing: they hold no tenant's data.  A route missing from :data:`ROUTES`
is refused (fail closed); ``tests/test_auth_routes.py`` fails when a registered
route has no entry, so a new route cannot be left open by mistake.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, IntEnum

__all__ = [
    "ALL_TENANTS", "DEFAULT_TENANT", "ROUTES", "Decision", "Need", "Policy", "Principal",
    "Role", "Scope", "TenantFrom", "grants_of", "need_of", "route_key", "tenant_key",
]

#: how grants, --public-tenant and API key files name the default tenant ('' inside)
DEFAULT_TENANT = "@default"
#: a grant on every tenant (and on the broker-wide resources)
ALL_TENANTS = "*"


class Role(IntEnum):
    """What a caller may do in a tenant; a higher role includes the lower ones."""

    READER = 1
    WRITER = 2
    ADMIN = 3


class Scope(Enum):
    """What a route's role applies to."""

    #: nothing: the route is open to anyone (no tenant's data behind it)
    PUBLIC = "public"
    #: the tenant the request names
    TENANT = "tenant"
    #: the whole broker: a grant on every tenant (``*``) is needed
    SYSTEM = "system"


class TenantFrom(Enum):
    """Where a tenant-scoped route names its tenant."""

    #: NGSILD-Tenant or Fiware-Service (6.3.14)
    HEADER = "header"
    #: the ``tenant`` query parameter (the explorer's event stream: EventSource sends no headers)
    QUERY = "query"


@dataclass(frozen=True, slots=True)
class Need:
    """What a route needs: a role in a scope."""

    role: Role | None
    scope: Scope = Scope.TENANT
    tenant_from: TenantFrom = TenantFrom.HEADER


OPEN = Need(None, Scope.PUBLIC)
READ = Need(Role.READER)
WRITE = Need(Role.WRITER)
ADMIN = Need(Role.ADMIN)
SYSTEM_ADMIN = Need(Role.ADMIN, Scope.SYSTEM)

_API = "/ngsi-ld/v1"
_ENTITY = _API + "/entities/{}"
_ATTR = _ENTITY + "/attrs/{}"
_TEMPORAL = _API + "/temporal/entities"

#: (method, path with every path variable written ``{}``) -> what it needs.  HEAD is
#: looked up as GET; OPTIONS is always allowed (CORS preflights carry no credentials).
ROUTES: dict[tuple[str, str], Need] = {
    # operational endpoints
    ("GET", "/version"): OPEN,
    ("GET", "/ngsi-ld/ex/v1/version"): OPEN,
    ("GET", "/health"): OPEN,
    ("GET", "/metrics"): SYSTEM_ADMIN,
    # 5.6, 5.7: entities and attributes
    ("POST", _API + "/entities"): WRITE,
    ("GET", _API + "/entities"): READ,
    ("DELETE", _API + "/entities"): ADMIN,  # purge (5.6.21): every match of a query
    ("GET", _ENTITY): READ,
    ("DELETE", _ENTITY): WRITE,
    ("PATCH", _ENTITY): WRITE,
    ("PUT", _ENTITY): WRITE,
    ("POST", _ENTITY + "/attrs"): WRITE,
    ("PATCH", _ENTITY + "/attrs"): WRITE,
    ("PATCH", _ATTR): WRITE,
    ("PUT", _ATTR): WRITE,
    ("DELETE", _ATTR): WRITE,
    # the paths of a missing entity id (answered 400)
    **{(method, _API + "/entities//attrs" + tail): WRITE
       for method in ("POST", "PATCH", "PUT", "DELETE") for tail in ("", "/{}")},
    # batch operations and the query by POST
    ("POST", _API + "/entityOperations/create"): WRITE,
    ("POST", _API + "/entityOperations/upsert"): WRITE,
    ("POST", _API + "/entityOperations/update"): WRITE,
    ("POST", _API + "/entityOperations/merge"): WRITE,
    ("POST", _API + "/entityOperations/delete"): WRITE,
    ("POST", _API + "/entityOperations/query"): READ,
    # 5.7.5 to 5.7.12: discovery
    ("GET", _API + "/types"): READ,
    ("GET", _API + "/types/{}"): READ,
    ("GET", _API + "/attributes"): READ,
    ("GET", _API + "/attributes/{}"): READ,
    # 5.8: subscriptions (their endpoint and receiverInfo are the subscriber's)
    ("POST", _API + "/subscriptions"): WRITE,
    ("GET", _API + "/subscriptions"): WRITE,
    ("GET", _API + "/subscriptions/{}"): WRITE,
    ("PATCH", _API + "/subscriptions/{}"): WRITE,
    ("DELETE", _API + "/subscriptions/{}"): WRITE,
    # 5.9, 5.10: context source registrations (contextSourceInfo holds the source's headers)
    ("POST", _API + "/csourceRegistrations"): ADMIN,
    ("GET", _API + "/csourceRegistrations"): WRITE,
    ("GET", _API + "/csourceRegistrations/{}"): WRITE,
    ("PATCH", _API + "/csourceRegistrations/{}"): ADMIN,
    ("DELETE", _API + "/csourceRegistrations/{}"): ADMIN,
    # 5.11: registration subscriptions
    ("POST", _API + "/csourceSubscriptions"): ADMIN,
    ("GET", _API + "/csourceSubscriptions"): WRITE,
    ("GET", _API + "/csourceSubscriptions/{}"): WRITE,
    ("PATCH", _API + "/csourceSubscriptions/{}"): ADMIN,
    ("DELETE", _API + "/csourceSubscriptions/{}"): ADMIN,
    # 5.6.11 to 5.6.16, 5.7.3, 5.7.4: the temporal API
    ("GET", _TEMPORAL): READ,
    ("POST", _TEMPORAL): WRITE,
    ("GET", _TEMPORAL + "/{}"): READ,
    ("DELETE", _TEMPORAL + "/{}"): WRITE,
    ("POST", _TEMPORAL + "/{}/attrs"): WRITE,
    ("DELETE", _TEMPORAL + "/{}/attrs/{}"): WRITE,
    ("PATCH", _TEMPORAL + "/{}/attrs/{}/{}"): WRITE,
    ("DELETE", _TEMPORAL + "/{}/attrs/{}/{}"): WRITE,
    ("POST", _API + "/temporal/entityOperations/query"): READ,
    # an id or attribute name left out of the path: 400 BadRequestData once let in
    ("POST", _TEMPORAL + "//attrs"): WRITE,
    ("DELETE", _TEMPORAL + "//attrs/{}"): WRITE,
    ("PATCH", _TEMPORAL + "//attrs/{}/{}"): WRITE,
    ("DELETE", _TEMPORAL + "//attrs/{}/{}"): WRITE,
    ("DELETE", _TEMPORAL + "/{}/attrs//{}"): WRITE,
    # distributed operations: entity maps (/entityMap/{id}: the 1.8.1 OpenAPI's path)
    ("GET", _API + "/entityMap/{}"): READ,
    ("PATCH", _API + "/entityMap/{}"): WRITE,
    ("DELETE", _API + "/entityMap/{}"): WRITE,
    ("GET", _API + "/entityMaps"): READ,  # 5.14.4: a query, its map kept for the pages
    ("GET", _API + "/temporal/entityMaps"): READ,
    ("GET", _API + "/entityMaps/{}"): READ,
    ("PATCH", _API + "/entityMaps/{}"): WRITE,
    ("DELETE", _API + "/entityMaps/{}"): WRITE,
    # 5.8.1.4: context sources notify the copies of subscriptions (and this broker its
    # internal registration subscriptions) without this broker's credentials; a
    # notification is only taken for a copy id the broker made (a random URN, known
    # to the source alone), so the id is the capability
    ("POST", "/ngsi-ld/ex/remote-notify"): OPEN,
    ("POST", "/ngsi-ld/ex/csource-notify"): OPEN,
    # 5.13: @context management (Hosted contexts belong to a tenant)
    ("POST", _API + "/jsonldContexts"): ADMIN,
    ("GET", _API + "/jsonldContexts"): READ,
    ("GET", _API + "/jsonldContexts/{}"): READ,
    ("DELETE", _API + "/jsonldContexts/{}"): ADMIN,
    # 5.15: the context source identity
    ("GET", _API + "/info/sourceIdentity"): READ,
    # 5.16: snapshots
    ("POST", _API + "/snapshots"): WRITE,
    ("DELETE", _API + "/snapshots"): ADMIN,
    ("GET", _API + "/snapshots/{}"): READ,
    ("PATCH", _API + "/snapshots/{}"): WRITE,
    ("DELETE", _API + "/snapshots/{}"): WRITE,
    ("POST", _API + "/snapshots/{}/clone"): WRITE,
    # the explorer: a static page, then the NGSI-LD API; its event stream names the tenant
    ("GET", "/explorer"): OPEN,
    ("GET", "/explorer/assets/{}"): OPEN,
    ("GET", "/explorer/events"): Need(Role.READER, tenant_from=TenantFrom.QUERY),
    ("GET", "/explorer/tenants"): SYSTEM_ADMIN,
    # whether the temporal API is on: no more than its 501 would tell anyone
    ("GET", "/explorer/features"): OPEN,
}

_VARIABLE = re.compile(r"\{[^}]*\}")


def route_key(method: str, path: str) -> tuple[str, str]:
    """The :data:`ROUTES` key of a route: HEAD as GET, ``{name}`` as ``{}``, no trailing /."""
    method = "GET" if method == "HEAD" else method
    path = _VARIABLE.sub("{}", path)
    if len(path) > 1:
        path = path.rstrip("/")
    return method, path


def need_of(method: str, path: str) -> Need | None:
    """What the route ``method path`` (aiohttp's canonical form) needs; None: not in the table."""
    return ROUTES.get(route_key(method, path))


def tenant_key(name: str) -> str:
    """A tenant as grants and --public-tenant name it, as the store names it."""
    name = name.strip()
    return "" if name == DEFAULT_TENANT else name.lower()


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: who (for the log) and its role in each tenant."""

    subject: str
    #: tenant ('' the default, ``*`` every tenant) -> the highest role granted there
    grants: Mapping[str, Role] = field(default_factory=dict)

    def role_in(self, tenant: str) -> Role | None:
        """The caller's role in ``tenant``: the higher of its grant there and on every tenant."""
        here, everywhere = self.grants.get(tenant), self.grants.get(ALL_TENANTS)
        if here is None or (everywhere is not None and everywhere > here):
            return everywhere
        return here


_ROLES = {"reader": Role.READER, "writer": Role.WRITER, "admin": Role.ADMIN}


def grants_of(value: object) -> dict[str, Role]:
    """The grants a claim (or an API key entry) lists; what is not a grant is ignored.

    Accepted: a list of ``"TENANT:ROLE"`` strings (Keycloak client or realm roles
    named so), one string of such entries separated by spaces or commas, or an
    object ``{"TENANT": ["ROLE", ...]}`` (or one role as a string).
    """
    pairs: list[tuple[str, object]] = []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if isinstance(value, Mapping):
        for tenant, roles in value.items():
            for role in [roles] if isinstance(roles, str) else roles or ():
                pairs.append((str(tenant), role))
    elif isinstance(value, Iterable):
        for item in value:
            if isinstance(item, str) and ":" in item:
                tenant, _, role = item.rpartition(":")
                pairs.append((tenant, role))
    grants: dict[str, Role] = {}
    for tenant, role_name in pairs:
        role = _ROLES.get(str(role_name).strip().lower())
        if role is None or not tenant.strip():
            continue
        key = tenant_key(tenant)
        if role > grants.get(key, 0):
            grants[key] = role
    return grants


class Decision(Enum):
    """The answer to a request: go on, 401 (say who you are), or 403 (you may not)."""

    ALLOW = "allow"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True, slots=True)
class Policy:
    """The broker's authorization rules (see the module docstring)."""

    #: tenants anyone may read (store names: '' is the default tenant)
    public_tenants: frozenset[str] = frozenset()

    def decide(self, principal: Principal | None, tenant: str, need: Need | None) -> Decision:
        """Whether ``principal`` (None: anonymous) may do what ``need`` asks in ``tenant``."""
        if need is None:  # a route nobody classified: closed
            return Decision.FORBIDDEN if principal is not None else Decision.UNAUTHENTICATED
        if need.role is None:
            return Decision.ALLOW
        if need.scope is Scope.SYSTEM:
            role = principal.grants.get(ALL_TENANTS) if principal is not None else None
        else:
            if need.role is Role.READER and tenant in self.public_tenants:
                return Decision.ALLOW
            role = principal.role_in(tenant) if principal is not None else None
        if role is not None and role >= need.role:
            return Decision.ALLOW
        return Decision.FORBIDDEN if principal is not None else Decision.UNAUTHENTICATED
