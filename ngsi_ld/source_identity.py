"""The Context Source identity (ETSI GS CIM 009 v1.9.1 clauses 5.2.40 and 5.15.1).

A Context Source tells who it is with a ContextSourceIdentity object:

- ``contextSourceAlias`` (mandatory): a unique id other brokers use to detect
  loops when they forward requests (6.3.18 ``Via``).  In the multi-tenancy case
  it "shall be identifying a specific Tenant" (Table 5.2.40-1), so each tenant
  has its own alias: the broker's alias with ``:`` and the tenant appended;
- ``contextSourceUptime`` (mandatory): how long the broker has been running, an
  ISO 8601 duration;
- ``contextSourceTimeAt`` (mandatory): the broker's current time (4.6.3, UTC ``Z``);
- ``contextSourceExtras`` (optional): free-form details about the implementation.

The broker's own part of the alias is a digest of what makes a deployment one
Context Source (its public URL and its store), so it is stable across restarts
and shared by the processes of one cluster.
"""

from __future__ import annotations

import hashlib
from typing import Any

ALIAS_PREFIX = "urn:ngsi-ld:ContextSource:"
ID_PREFIX = "urn:ngsi-ld:ContextSourceIdentity:"


def source_digest(*parts: str) -> str:
    """A stable short digest naming one deployment (its URL and store, say)."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]


def source_alias(digest: str, tenant: str = "") -> str:
    """The contextSourceAlias of the default tenant ('') or of ``tenant``."""
    alias = ALIAS_PREFIX + digest
    return f"{alias}:{tenant}" if tenant else alias


def iso_duration(seconds: float) -> str:
    """``seconds`` as an ISO 8601 duration: ``P2DT3H4M5.678S``, ``PT0.25S``, ``PT0S``."""
    millis = max(0, round(seconds * 1000))
    days, millis = divmod(millis, 86_400_000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    text = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if secs or millis or not (days or clock):
        clock += f"{secs}.{millis:03d}".rstrip("0").rstrip(".") + "S"
    return text + ("T" + clock if clock else "")


def identity(
    digest: str, tenant: str, uptime: float, now: str, extras: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ContextSourceIdentity of this broker as ``tenant`` sees it (5.2.40)."""
    body: dict[str, Any] = {
        "id": ID_PREFIX + digest,
        "type": "ContextSourceIdentity",
        "contextSourceAlias": source_alias(digest, tenant),
        "contextSourceUptime": iso_duration(uptime),
        "contextSourceTimeAt": now,
    }
    if extras:
        body["contextSourceExtras"] = extras
    return body


__all__ = ["identity", "iso_duration", "source_alias", "source_digest"]
