"""Whether the broker may send a forwarded request to a URL: one function, one place.

Registrations are created by API clients, so a forwarded request is a request
made on their behalf to a URL they chose.  Every forward asks
:func:`refusal` first for the scheme (NGSI-LD sources are reached over
HTTP(S)); the addresses are then checked by the broker's outbound request
policy (``broker.outbound``: loopback, link-local and private addresses are
refused unless ``--outbound-allow`` lists them), which
:class:`~broker.federation.client.ForwardingClient` applies to IP literals and,
through its resolver, to every name it connects to.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["refusal"]


def refusal(url: str) -> str | None:
    """Why ``url`` may not be called (a short reason), or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{url!r} is not an http(s) URL"
    return None
