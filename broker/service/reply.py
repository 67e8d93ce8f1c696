"""What an operation answers, before any web framework sees it.

A :class:`Reply` is the status, the headers and the encoded body of an answer
(ETSI GS CIM 009 clause 6.3: the status codes and headers of the HTTP binding
are part of what NGSI-LD specifies).  The service builds replies; the HTTP
adapter (``broker.routes``) writes them, and the answer cache keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from ngsi_ld.bodies import JSON

__all__ = ["Reply", "empty", "json_reply"]


@dataclass(slots=True)
class Reply:
    """One answer: status, headers and body (None: no body)."""

    status: int = 200
    body: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def frozen(self) -> Reply:
        """A copy whose headers the caller may not change under it (kept in a cache)."""
        return Reply(self.status, self.body, self.content_type, dict(self.headers))

    def copy(self) -> Reply:
        """A copy to hand out: its headers may be changed without touching this one."""
        return Reply(self.status, self.body, self.content_type, dict(self.headers))

    def add_links(self, links: list[str]) -> None:
        """Append ``links`` to the Link header: one header, the @context link first
        (some clients keep only one Link header)."""
        if links:
            self.headers["Link"] = ", ".join(filter(None, [self.headers.get("Link"), *links]))


def json_reply(data: Any, status: int = 200, content_type: str = JSON,
               headers: dict[str, str] | None = None) -> Reply:
    """A reply with an orjson body."""
    return Reply(status, orjson.dumps(data), content_type, dict(headers or {}))


def empty(status: int = 204, headers: dict[str, str] | None = None) -> Reply:
    """A reply without a body."""
    return Reply(status, None, None, dict(headers or {}))
