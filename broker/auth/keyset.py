"""The issuer's signing keys: a JSON Web Key Set (RFC 7517), fetched and cached.

The set is read once at start-up (from ``--auth-jwks-url``, from the issuer's
OpenID configuration when only ``--auth-issuer`` is given, or from
``--auth-jwks-file``) and kept.  Issuers rotate keys by publishing the new one
beside the old before signing with it, so a token whose ``kid`` is unknown
makes the broker read the set again: at most once per ``refetch_interval``
(a stream of tokens with made-up key ids must not turn the broker into a
client hammering the issuer), and one read at a time however many requests
wait for it.  A set older than ``max_age`` is read again in the background, so
a key the issuer withdrew stops being trusted.  Nothing here blocks the event
loop: HTTP through aiohttp, the file through a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

__all__ = ["KeySet", "KeySetError"]

log = logging.getLogger("broker.auth")

#: the largest key set or OpenID configuration document read (bytes)
MAX_DOCUMENT = 256 * 1024


class KeySetError(Exception):
    """The key set could not be read (the detail is for the log, not the client)."""


class KeySet:
    """The issuer's public keys by key id (see the module docstring)."""

    def __init__(self, *, url: str = "", file: str = "", issuer: str = "",
                 timeout: float = 10.0, refetch_interval: float = 30.0,
                 max_age: float = 3600.0) -> None:
        if not (url or file or issuer):
            raise ValueError("--auth oidc needs --auth-jwks-url, --auth-jwks-file or "
                             "--auth-issuer (whose OpenID configuration names the key set)")
        self.url, self.file, self.issuer = url, file, issuer.rstrip("/")
        self.timeout = timeout
        self.refetch_interval = refetch_interval
        self.max_age = max_age
        #: kid -> the JWK ('' for a key without kid)
        self.keys: dict[str, dict[str, Any]] = {}
        self.loaded_at = 0.0
        self._last_refetch = float("-inf")
        self._session: aiohttp.ClientSession | None = None
        self._loading: asyncio.Task[None] | None = None
        #: reads of the set, for the tests and the log
        self.reads = 0

    async def start(self) -> None:
        """Read the set once; a failure is logged, and the next unknown kid tries again."""
        if self.url or self.issuer:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout))
        try:
            await self._reload()
        except KeySetError as exc:
            log.warning("cannot read the token signing keys at start: %s", exc)

    async def close(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
        if self._session is not None:
            await self._session.close()

    async def find(self, kid: str | None) -> dict[str, Any] | None:
        """The JWK of ``kid`` (a key without kid when the set has only that one); None: unknown.

        An unknown kid reads the set again unless it was read for that reason
        less than ``refetch_interval`` ago.
        """
        if time.monotonic() - self.loaded_at > self.max_age:
            self._reload_soon()
        key = self._lookup(kid)
        if key is not None:
            return key
        in_flight = self._loading is not None and not self._loading.done()
        if not in_flight:
            if time.monotonic() - self._last_refetch < self.refetch_interval:
                return None
            self._last_refetch = time.monotonic()
        try:  # a read already under way is joined, whatever the rate limit
            await self._shared_reload()
        except KeySetError as exc:
            if not in_flight:
                log.warning("cannot read the token signing keys again: %s", exc)
        return self._lookup(kid)

    @property
    def available(self) -> bool:
        """Whether any key was ever read (no key: tokens cannot be checked at all)."""
        return bool(self.keys)

    def _lookup(self, kid: str | None) -> dict[str, Any] | None:
        if kid is not None:
            return self.keys.get(kid)
        return next(iter(self.keys.values())) if len(self.keys) == 1 else None

    def _reload_soon(self) -> None:
        if self._loading is None or self._loading.done():
            self._loading = asyncio.get_running_loop().create_task(self._quiet_reload())

    async def _quiet_reload(self) -> None:
        try:
            await self._reload()
        except KeySetError as exc:
            log.warning("cannot refresh the token signing keys: %s", exc)

    async def _shared_reload(self) -> None:
        # one read at a time: every request waiting on an unknown kid shares it
        if self._loading is None or self._loading.done():
            self._loading = asyncio.get_running_loop().create_task(self._reload())
        await asyncio.shield(self._loading)

    async def _reload(self) -> None:
        document = await (self._read_file() if self.file else self._fetch_set())
        keys = _keys_of(document)
        self.keys, self.loaded_at = keys, time.monotonic()
        self.reads += 1
        log.info("token signing keys read: %d key(s)", len(keys))

    async def _read_file(self) -> Any:
        try:
            raw = await asyncio.to_thread(Path(self.file).read_bytes)
            return orjson.loads(raw)
        except (OSError, orjson.JSONDecodeError) as exc:
            raise KeySetError(f"{self.file}: {exc}") from None

    async def _fetch_set(self) -> Any:
        url = self.url
        if not url:
            config = await self._get_json(self.issuer + "/.well-known/openid-configuration")
            named = config.get("jwks_uri") if isinstance(config, dict) else None
            if not isinstance(named, str) or not named.startswith(("https://", "http://")):
                raise KeySetError(f"the OpenID configuration of {self.issuer} names no jwks_uri")
            self.url = url = named
        return await self._get_json(url)

    async def _get_json(self, url: str) -> Any:
        session = self._session
        if session is None:
            raise KeySetError("the key set client is not started")
        try:
            async with session.get(url, allow_redirects=False,
                                   headers={"Accept": "application/json"}) as response:
                if response.status != 200:
                    raise KeySetError(f"{url} answered {response.status}")
                raw = await response.content.read(MAX_DOCUMENT + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KeySetError(f"{url}: {type(exc).__name__} {exc}") from None
        if len(raw) > MAX_DOCUMENT:
            raise KeySetError(f"{url}: more than {MAX_DOCUMENT} bytes")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise KeySetError(f"{url}: not JSON ({exc})") from None


def _keys_of(document: Any) -> dict[str, dict[str, Any]]:
    """The signing keys of a JWKS document: public, asymmetric, for signatures."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise KeySetError("not a JSON Web Key Set (no keys array)")
    keys: dict[str, dict[str, Any]] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") not in ("RSA", "EC", "OKP"):
            continue  # symmetric ("oct") or unknown: never a key tokens may be checked with
        if jwk.get("use", "sig") != "sig":
            continue  # an encryption key
        kid = jwk.get("kid", "")
        keys[kid if isinstance(kid, str) else str(kid)] = jwk
    return keys
