"""API keys for machine clients (IoT Agents, loaders): a file of key hashes and their roles.

``--api-keys FILE`` is JSON::

    {"keys": [{"name": "iot-agent-lamps", "sha256": "<hex digest of the key>",
               "roles": ["city:writer"]}]}

The file holds no key, only its SHA-256 (``ngsi-ld-broker api-key NAME ROLE...``
makes a key and prints its entry).  A client sends the key as ``X-API-Key`` or
as ``Authorization: Bearer <key>`` (what an IoT Agent with a permanent token
sends).  The digest of what was sent is compared with every entry in constant
time, with no early exit, so the answer time tells nothing about the entries.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import secrets
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from broker.auth.policy import Principal, grants_of

__all__ = ["ApiKeys", "main", "new_key"]


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes
    principal: Principal


class ApiKeys:
    """The keys of an ``--api-keys`` file (see the module docstring)."""

    def __init__(self, entries: Sequence[_Entry] = ()) -> None:
        self._entries = tuple(entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def load(cls, path: str) -> ApiKeys:
        """The keys of ``path``; ValueError naming what is wrong in it."""
        try:
            document = orjson.loads(Path(path).read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"--api-keys {path}: {exc}") from None
        items = document.get("keys") if isinstance(document, dict) else document
        if not isinstance(items, list):
            raise ValueError(f"--api-keys {path}: expected {{\"keys\": [...]}}")
        entries = []
        for number, item in enumerate(items, 1):
            digest = item.get("sha256") if isinstance(item, dict) else None
            try:
                raw = bytes.fromhex(digest) if isinstance(digest, str) else b""
            except ValueError:
                raw = b""
            if len(raw) != 32:
                raise ValueError(f"--api-keys {path}: entry {number} has no sha256 "
                                 "(64 hexadecimal digits)")
            name = str(item.get("name") or f"api-key-{number}")
            entries.append(_Entry(raw, Principal("api-key:" + name,
                                                 grants_of(item.get("roles", ())))))
        return cls(entries)

    def principal(self, key: str) -> Principal | None:
        """The caller ``key`` belongs to, or None."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
        found = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, digest):
                found = entry.principal
        return found


def new_key(name: str, roles: Sequence[str]) -> tuple[str, dict[str, object]]:
    """A fresh random key and the file entry that grants it ``roles``."""
    key = secrets.token_urlsafe(32)
    return key, {"name": name, "sha256": hashlib.sha256(key.encode()).hexdigest(),
                 "roles": list(roles)}


def main(argv: Sequence[str]) -> int:
    """``ngsi-ld-broker api-key NAME TENANT:ROLE...``: a new key, and its --api-keys entry."""
    parser = argparse.ArgumentParser(
        prog="ngsi-ld-broker api-key",
        description="Make an API key: the key goes to the client (shown once), the entry "
        "printed after it goes in the --api-keys file (it holds only the key's SHA-256).")
    parser.add_argument("name", help="who the key is for (shown in the log)")
    parser.add_argument("roles", nargs="+", metavar="TENANT:ROLE",
                        help="e.g. city:writer (@default is the default tenant, * every tenant)")
    args = parser.parse_args(list(argv))
    if not grants_of(args.roles):
        parser.error("no TENANT:ROLE among the roles (roles: reader, writer, admin)")
    key, entry = new_key(args.name, args.roles)
    sys.stdout.write(f"key:   {key}\nentry: {orjson.dumps(entry).decode()}\n")
    return 0
