"""The HTTP side of authentication: credentials in, 401 or 403 out, or the handler.

Every request passes here when ``--auth`` is on (``create_app`` adds the
middleware inside the edge middleware, so answers are counted and carry the
request id).  The route's need comes from ``broker.auth.policy.ROUTES``; the
tenant from the same headers, and by the same rule, as the operation itself
(``ngsi_ld.headers.tenant_name``).  OPTIONS and requests no route matches
(404, 405) pass: they name no data.

Credentials: ``Authorization: Bearer <token>`` (a JWT when it looks like one,
else an API key) or ``X-API-Key: <key>``.  A credential that is sent and not
accepted is 401 even where anonymous reading is allowed (RFC 6750 3.1:
``invalid_token``), so a client learns that its token expired instead of
silently reading as nobody.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from broker.auth.apikeys import ApiKeys
from broker.auth.keyset import KeySet
from broker.auth.policy import Decision, Need, Policy, Principal, TenantFrom, need_of, tenant_key
from broker.auth.tokens import TokenError, TokenVerifier
from broker.config import Settings
from broker.http import joined, json_response
from ngsi_ld.errors import Forbidden, NgsiLdError, ServiceUnavailable, Unauthorized
from ngsi_ld.headers import tenant_name

__all__ = ["PRINCIPAL", "Authentication"]

log = logging.getLogger("broker.auth")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: the caller of a request that was let through (absent: anonymous), for handlers and logs
PRINCIPAL = web.RequestKey("ngsi_ld_principal", Principal)
_REALM = 'Bearer realm="ngsi-ld"'


@dataclass(slots=True)
class Authentication:
    """The broker's credentials checks and its policy (built from the settings)."""

    policy: Policy
    tokens: TokenVerifier | None = None
    api_keys: ApiKeys | None = None
    multi_tenancy: bool = True
    #: (method, canonical path) -> its rule, looked up once per route
    _needs: dict[tuple[str, str], Need | None] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Authentication:
        """The checks ``--auth`` asks for; ValueError for options that do not fit together."""
        policy = Policy(frozenset(tenant_key(name) for name in settings.public_tenants))
        api_keys = ApiKeys.load(settings.api_keys) if settings.api_keys else None
        tokens = None
        if settings.auth == "oidc":
            keys = KeySet(url=settings.auth_jwks_url, file=settings.auth_jwks_file,
                          issuer=settings.auth_issuer)
            tokens = TokenVerifier(keys, issuer=settings.auth_issuer,
                                   audience=settings.auth_audience, claim=settings.auth_claim,
                                   leeway=settings.auth_leeway)
        elif api_keys is None:
            raise ValueError("--auth api-keys needs --api-keys FILE")
        return cls(policy, tokens, api_keys, settings.multi_tenancy)

    async def start(self, app: web.Application) -> None:
        if self.tokens is not None:
            await self.tokens.keys.start()

    async def close(self, app: web.Application) -> None:
        if self.tokens is not None:
            await self.tokens.keys.close()

    async def principal(self, request: web.Request) -> Principal | None:
        """The caller the request's credential names; None without one; TokenError if refused."""
        key = request.headers.get("X-API-Key")
        if key is not None:
            return self._by_key(key)
        authorization = request.headers.get("Authorization")
        if authorization is None:
            return None
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise TokenError("the Authorization header is not a bearer credential")
        if credential.count(".") == 2 and self.tokens is not None:
            return await self.tokens.principal(credential)
        return self._by_key(credential)

    def _by_key(self, key: str) -> Principal:
        principal = self.api_keys.principal(key) if self.api_keys is not None else None
        if principal is None:
            raise TokenError("the credential is not a known API key or a valid token")
        return principal

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Let the request through, or answer 401 / 403 (see the module docstring)."""
        match = request.match_info
        resource = match.route.resource
        if request.method == "OPTIONS" or resource is None or match.http_exception is not None:
            return await handler(request)
        route = (match.route.method, resource.canonical)
        try:
            need = self._needs[route]
        except KeyError:
            need = self._needs[route] = need_of(*route)
        if need is not None and need.role is None:
            return await handler(request)
        tenant = self._tenant(request, need)
        try:
            principal = await self.principal(request)
        except TokenError as exc:
            if exc.unavailable:
                raise ServiceUnavailable("the credentials cannot be checked now; retry "
                                         "later") from None
            return _unauthorized(str(exc), invalid_token=True)
        decision = self.policy.decide(principal, tenant, need)
        if decision is Decision.ALLOW:
            if principal is not None:
                request[PRINCIPAL] = principal
            return await handler(request)
        if need is None:
            log.error("no authorization rule for %s %s: refused", request.method,
                      resource.canonical)
        if decision is Decision.UNAUTHENTICATED:
            return _unauthorized("this operation needs credentials (a bearer token or an "
                                 "API key)")
        assert principal is not None
        log.info("refused %s %s to %s (tenant %r)", request.method, request.path,
                 principal.subject, tenant)
        return _problem(Forbidden(f"the caller may not do this in tenant {tenant or '@default'!r}"))

    def _tenant(self, request: web.Request, need: Need | None) -> str:
        if need is not None and need.tenant_from is TenantFrom.QUERY:
            return tenant_name(request.query.get("tenant"), None, self.multi_tenancy)
        headers = request.headers
        return tenant_name(joined(headers, "NGSILD-Tenant"), joined(headers, "Fiware-Service"),
                           self.multi_tenancy)


def _problem(error: NgsiLdError, headers: dict[str, str] | None = None) -> web.Response:
    return json_response(error.to_problem(), status=error.status, headers=headers)


def _unauthorized(detail: str, *, invalid_token: bool = False) -> web.Response:
    challenge = _REALM
    if invalid_token:  # RFC 6750 3: error_description is a quoted-string of visible ASCII
        description = detail.replace("\\", "").replace('"', "'")
        challenge += f', error="invalid_token", error_description="{description}"'
    return _problem(Unauthorized(detail), {"WWW-Authenticate": challenge})
