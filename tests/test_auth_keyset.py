"""The issuer's key set: read at start, again for an unknown kid (rate-limited), refreshed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from auth_issuer import ec_key, rsa_key

from broker.auth import KeySet


def _write(path: Path, *jwks: dict[str, object]) -> None:
    path.write_bytes(orjson.dumps({"keys": list(jwks)}))


async def test_a_file_set_is_read_again_for_a_new_kid_then_rate_limited(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    first = rsa_key("one").public_jwk()
    _write(path, first, {"kty": "oct", "kid": "secret", "k": "c2VjcmV0"},
           {**ec_key("enc").public_jwk(), "use": "enc"})
    keys = KeySet(file=str(path), refetch_interval=60)
    await keys.start()
    try:
        assert keys.reads == 1 and set(keys.keys) == {"one"}  # no symmetric, no encryption key
        assert await keys.find("one") == first
        assert await keys.find("secret") is None and keys.reads == 2  # read again once...
        second = ec_key("two").public_jwk()
        _write(path, first, second)
        assert await keys.find("two") is None and keys.reads == 2  # ...then not for 60 s
        keys._last_refetch = float("-inf")  # the minute has passed
        assert await keys.find("two") == second and keys.reads == 3
    finally:
        await keys.close()


async def test_an_old_set_is_refreshed_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    _write(path, rsa_key("one").public_jwk())
    keys = KeySet(file=str(path), max_age=0.0)
    await keys.start()
    try:
        _write(path, rsa_key("two").public_jwk())  # the issuer withdrew "one"
        assert await keys.find("one") is not None  # answered at once from what is kept
        for _ in range(100):
            if "one" not in keys.keys:
                break
            await asyncio.sleep(0.01)
        assert set(keys.keys) == {"two"}
    finally:
        await keys.close()


async def test_a_key_without_kid_is_used_when_it_is_the_only_one(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    jwk = rsa_key("x").public_jwk()
    del jwk["kid"]
    _write(path, jwk)
    keys = KeySet(file=str(path))
    await keys.start()
    try:
        assert await keys.find(None) == jwk
    finally:
        await keys.close()


def test_a_set_needs_a_place_to_come_from() -> None:
    with pytest.raises(ValueError, match="--auth-jwks-url"):
        KeySet()
