"""OpenID Connect bearer tokens: a JWT (RFC 7519) checked against the issuer's keys.

A token is accepted when its signature verifies with a key of the issuer's
set (asymmetric algorithms only: ``none`` and the HMAC family are refused, so a
public key can never be used as a shared secret), ``iss`` is the configured
issuer, ``aud`` includes the configured audience, and the time is between
``nbf`` and ``exp`` (give or take ``leeway`` seconds).  The caller's roles come
from one claim (``--auth-claim``), read by :func:`broker.auth.policy.grants_of`.
PyJWT does the cryptography.

A token checked once is remembered until it expires (a bounded map): the
signature check costs more than the rest of a small request.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import jwt

from broker.auth.keyset import KeySet
from broker.auth.policy import Principal, grants_of

__all__ = ["ASYMMETRIC", "TokenError", "TokenVerifier", "claim_at"]

#: the signature algorithms a token may use, by the key type that verifies them
ASYMMETRIC: dict[str, frozenset[str]] = {
    "RSA": frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
    "EC": frozenset({"ES256", "ES384", "ES512"}),
    "OKP": frozenset({"EdDSA"}),
}
_ALL = frozenset().union(*ASYMMETRIC.values())
#: verified tokens remembered at most
CACHE_SIZE = 4096


class TokenError(Exception):
    """A token that is not accepted; the message says why (RFC 6750 error_description)."""

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        #: the broker has no key to check any token with (not the caller's fault)
        self.unavailable = unavailable


def claim_at(claims: Mapping[str, Any], path: str) -> object:
    """The claim at ``path``: a name, or names joined by dots into nested objects.

    A name holding dots itself is found too (the longest name that exists wins):
    ``resource_access.ngsi-ld.roles`` reads Keycloak's client roles.
    """
    node: object = claims
    rest = path
    while rest:
        if not isinstance(node, Mapping):
            return None
        if rest in node:
            return node[rest]
        head, dot, tail = rest.partition(".")
        if not dot or head not in node:
            return None
        node, rest = node[head], tail
    return node


class TokenVerifier:
    """Checks bearer tokens and names the caller (see the module docstring)."""

    def __init__(self, keys: KeySet, *, issuer: str, audience: str, claim: str,
                 leeway: float = 30.0) -> None:
        if not audience:
            raise ValueError("--auth oidc needs --auth-audience: the client id tokens are "
                             "issued for (a token for another client must not be accepted)")
        if not issuer:
            raise ValueError("--auth oidc needs --auth-issuer: the iss tokens must name")
        self.keys = keys
        self.issuer, self.audience, self.claim, self.leeway = issuer, audience, claim, leeway
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def principal(self, token: str) -> Principal:
        """The caller ``token`` names; TokenError when it is not accepted."""
        kept = self._verified.get(token)
        if kept is not None:
            principal, expires = kept
            if time.time() < expires + self.leeway:
                return principal
            del self._verified[token]
        claims = await self._claims(token)
        subject = next((str(claims[name]) for name in ("sub", "preferred_username", "azp",
                                                       "client_id") if claims.get(name)), "?")
        principal = Principal(subject, grants_of(claim_at(claims, self.claim)))
        if len(self._verified) >= CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, float(claims["exp"]))
        return principal

    async def _claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("the token is not a JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in _ALL:
            raise TokenError(f"the token's algorithm {alg!r} is not accepted")
        if kid is not None and not isinstance(kid, str):
            raise TokenError("the token's kid is not a string")
        jwk = await self.keys.find(kid)
        if jwk is None:
            if not self.keys.available:
                raise TokenError("the issuer's signing keys are not available", unavailable=True)
            raise TokenError("the token is signed with a key the issuer does not publish")
        if alg not in ASYMMETRIC.get(jwk.get("kty", ""), ()) or jwk.get("alg", alg) != alg:
            raise TokenError(f"the token's algorithm {alg} does not match its key")
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
            return jwt.decode(
                token, key, algorithms=[alg], audience=self.audience, issuer=self.issuer,
                leeway=self.leeway, options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise TokenError("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise TokenError("the token is not issued for this broker (aud)") from None
        except jwt.InvalidIssuerError:
            raise TokenError("the token is not issued by the trusted issuer (iss)") from None
        except jwt.InvalidSignatureError:
            raise TokenError("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"the token has no {exc.claim} claim") from None
        except (jwt.PyJWTError, ValueError) as exc:
            raise TokenError(f"the token is not valid ({type(exc).__name__})") from None
