"""A local OpenID Connect issuer for the tests: keys made here, its key set served on loopback.

``Issuer.token(...)`` signs a JWT with the current key; ``rotate()`` publishes a
new key (and signs with it from then on); ``serve(jwks=False)`` answers the
key set with 503 (an issuer that is down).  ``reads`` counts the key set
requests, so a test can tell whether the broker asked again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "ngsi-ld-broker"


@dataclass
class SigningKey:
    kid: str
    private: Any
    alg: str

    def public_jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg.startswith(("RS", "PS")) else ECAlgorithm
        jwk: dict[str, Any] = algorithm.to_jwk(self.private.public_key(), as_dict=True)
        jwk.update(kid=self.kid, use="sig", alg=self.alg)
        return jwk


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048),
                      "RS256")


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, ec.generate_private_key(ec.SECP256R1()), "ES256")


@dataclass
class Issuer:
    keys: list[SigningKey] = field(default_factory=lambda: [rsa_key("k1"), ec_key("e1")])
    reads: int = 0
    up: bool = True
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/realms/city"))

    @property
    def jwks_url(self) -> str:
        return self.url + "/protocol/openid-connect/certs"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/realms/city/.well-known/openid-configuration", self._config)
        app.router.add_get("/realms/city/protocol/openid-connect/certs", self._jwks)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    async def _config(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": self.url, "jwks_uri": self.jwks_url})

    async def _jwks(self, request: web.Request) -> web.Response:
        self.reads += 1
        if not self.up:
            return web.Response(status=503)
        return web.json_response({"keys": [key.public_jwk() for key in self.keys]})

    def rotate(self) -> SigningKey:
        """A new RSA key, published first in the set (the old ones stay, as Keycloak does)."""
        key = rsa_key(f"k{len(self.keys) + 1}")
        self.keys.insert(0, key)
        return key

    def token(self, roles: object = (), *, key: SigningKey | None = None,
              lifetime: float = 300, not_before: float | None = None,
              claim: str = "ngsi_ld_roles", **claims: Any) -> str:
        """A token signed by ``key`` (the first key by default) granting ``roles``."""
        key = key or self.keys[0]
        now = time.time()
        payload: dict[str, Any] = {"iss": self.url, "aud": AUDIENCE, "sub": "user-1",
                                   "iat": int(now), "exp": int(now + lifetime), claim: roles}
        if not_before is not None:
            payload["nbf"] = int(not_before)
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid})
