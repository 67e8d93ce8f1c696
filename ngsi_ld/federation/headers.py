"""The HTTP headers of distributed operations, as pure functions (6.3.17, 6.3.18, 4.3.6.5).

* ``Via`` (RFC 9110 7.6.3): every broker appends its pseudonym, the
  ``contextSourceAlias`` of its tenant (5.2.40), to the requests it forwards.
  The pseudonyms already in a request are the Context Sources it went
  through: registrations naming one of them do not match (Table 6.3.18-2), and
  a request that comes back to this broker is a loop (:func:`guard_loop`).
* ``NGSILD-Warning`` (6.3.17, RFC 7234 warn-value syntax): one value per
  source that did not answer usefully.
* :func:`forward_headers`: the headers a forwarded request carries: ``Via``,
  the registration's ``tenant`` (never the requester's, 4.14), its
  ``contextSourceInfo`` (4.3.6.5, with ``urn:ngsi-ld:request`` taken from the
  triggering request), ``Link``/``Content-Type`` for the @context and ``Accept``
  (4.3.6.6).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

from ngsi_ld.errors import ERROR_NAMESPACE, InvalidRequest, NgsiLdError
from ngsi_ld.federation.model import Registration

JSON_LD = "application/ld+json"
JSON = "application/json"
#: 4.3.6.5: the value that copies the header from the request that triggered the forward
FROM_REQUEST = "urn:ngsi-ld:request"
_LINK_REL = 'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
# contextSourceInfo keys never sent as they are: the tenant travels in the registration's
# ``tenant`` (4.3.6.5 "shall not be part of contextSourceInfo"), headers of the connection
# and of the negotiation are the broker's ("shall be ignored"), and the 4.3.6.6 keys are
# interpreted
_NOT_SENT = frozenset(name.lower() for name in (
    "NGSILD-Tenant", "Fiware-Service", "Fiware-ServicePath", "Via", "Host", "Connection",
    "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
    "Content-Length", "Content-Type", "Content-Encoding", "Link", "Accept",
    "contentType", "accept", "jsonldContext", "ngsildConformance",
))


class LoopDetected(NgsiLdError):
    """508: the request came back to this broker through a proxied registration (6.3.17)."""

    status: ClassVar[int] = 508
    title: ClassVar[str] = "Loop detected"

    @property
    def type_uri(self) -> str:
        """``…/errors/LoopDetected``: the registry has no type for 508."""
        return ERROR_NAMESPACE + "LoopDetected"


# -- Via ---------------------------------------------------------------------------------------

# RFC 9110: Via = #( received-protocol RWS received-by [ RWS comment ] )
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_HOP = re.compile(
    rf"(?:(?P<name>{_TOKEN})/)?(?P<version>{_TOKEN})[ \t]+(?P<by>[^\s,()]+)"
    r"(?:[ \t]+(?P<comment>\((?:[^()\\]|\\.)*\)))?"
)
_SEPARATOR = re.compile(r"[ \t]*,[ \t]*")


@dataclass(frozen=True)
class Hop:
    """One element of a Via header: the protocol, who received the request, a comment."""

    protocol: str
    received_by: str
    comment: str | None = None

    def __str__(self) -> str:
        text = f"{self.protocol} {self.received_by}"
        return f"{text} {self.comment}" if self.comment else text


def parse_via(values: Iterable[str]) -> tuple[Hop, ...]:
    """The hops of every ``Via`` field of a request, in order; InvalidRequest if malformed.

    A malformed Via is refused rather than read partly: a hop read wrongly
    would let a loop through.
    """
    hops: list[Hop] = []
    for value in values:
        text = value.strip(" \t")
        pos = 0
        while pos < len(text):
            if text[pos] in ", \t":  # empty list elements are allowed (RFC 9110 5.6.1)
                pos += 1
                continue
            match = _HOP.match(text, pos)
            if match is None:
                raise InvalidRequest(f"malformed Via header at {text[pos:pos + 40]!r}")
            name, version = match.group("name"), match.group("version")
            protocol = f"{name}/{version}" if name else version
            hops.append(Hop(protocol, match.group("by"), match.group("comment")))
            pos = match.end()
            sep = _SEPARATOR.match(text, pos)
            if sep is None and pos < len(text):
                raise InvalidRequest(f"malformed Via header at {text[pos:pos + 40]!r}")
            pos = sep.end() if sep is not None else pos
    return tuple(hops)


def visited(hops: Iterable[Hop]) -> frozenset[str]:
    """The pseudonyms (Context Source aliases) a request has already passed through."""
    return frozenset(hop.received_by for hop in hops)


def append_via(hops: Iterable[Hop], alias: str, protocol: str = "1.1") -> str:
    """The Via value of a forwarded request: the hops so far, then this broker."""
    return ", ".join([*(str(hop) for hop in hops), str(Hop(protocol, alias))])


def guard_loop(own_alias: str, hops: Iterable[Hop], proxied: Iterable[bool]) -> bool:
    """What to do when the request already passed through this broker (6.3.17, 6.3.18).

    ``proxied`` tells, for each source the request would go to, whether its
    registration is exclusive or redirect.  The request did not pass here:
    True (forward as planned).  It did and a single proxied source holds all
    the data: LoopDetected ("the single registered source ... is registered to
    redirect back on to the Context Broker").  Otherwise False: serve the
    request from local data only, forwarding nothing.
    """
    if own_alias not in visited(hops):
        return True
    kinds = list(proxied)
    if len(kinds) == 1 and kinds[0]:
        raise LoopDetected(f"the request already passed through {own_alias}: its only "
                           "context source redirects back to this broker")
    return False


# -- NGSILD-Warning ----------------------------------------------------------------------------


class WarnCode(IntEnum):
    """6.3.17 Table 6.3.17-1."""

    #: a cached answer is given because the source could not be asked
    STALE = 110
    #: the source answered within the timeout, but not with valid NGSI-LD
    REVALIDATION_FAILED = 111
    #: no answer within the timeout (or the registration is cooling down)
    MISCELLANEOUS = 199
    #: the source answered with an error
    PERSISTENT = 299


def warning(code: WarnCode, agent: str, text: str) -> str:
    """One NGSILD-Warning value: ``code agent "text"`` (RFC 7234 5.5)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'{int(code)} {agent} "{escaped}"'


def source_warning(registration: Registration, agent: str, *, status: int | None = None,
                   timed_out: bool = False, invalid: bool = False) -> str | None:
    """The warning for one source's answer, or None when it is not abnormal.

    ``status`` is the HTTP status the source answered (None: no answer).  A 404
    "should not be considered as abnormal behaviour" (6.3.17): no warning.
    """
    where = f"{registration.id} at {registration.endpoint}"
    if timed_out or status is None:
        return warning(WarnCode.MISCELLANEOUS, agent, f"{where} did not answer in time")
    if status == 404:
        return None
    if status >= 400:
        return warning(WarnCode.PERSISTENT, agent, f"{where} answered {status}")
    if invalid:
        return warning(WarnCode.REVALIDATION_FAILED, agent,
                       f"{where} answered a payload that is not valid NGSI-LD")
    return None


# -- headers of forwarded requests ----------------------------------------------------------


def link_header(context_url: str) -> str:
    """The Link header conveying a JSON-LD @context (6.3.5)."""
    return f"<{context_url}>; {_LINK_REL}"


@dataclass(frozen=True)
class Outbound:
    """The headers of a forwarded request, and whether its body carries the @context."""

    headers: tuple[tuple[str, str], ...]
    inline_context: bool
    context_url: str | None


def forward_headers(
    registration: Registration,
    *,
    via: str,
    context_url: str | None,
    incoming: Mapping[str, str],
    has_body: bool,
) -> Outbound:
    """The headers of a request forwarded to ``registration``'s source.

    ``via`` is :func:`append_via`'s value; ``context_url`` the @context of the
    request (None: the core context only); ``incoming`` the triggering
    request's headers (case-insensitive lookup is the caller's: pass a
    ``CIMultiDict`` or lower-cased keys).  By default a body travels as
    ``application/json`` with the @context in a Link header; a
    ``contentType: application/ld+json`` pair puts it in the body instead,
    a ``jsonldContext`` pair replaces the @context (4.3.6.6: the payload is
    then recompacted with it), an ``accept`` pair sets Accept.
    """
    info = dict(registration.context_source_info or ())
    context = info.get("jsonldContext", context_url)
    inline = has_body and info.get("contentType") == JSON_LD and "jsonldContext" not in info
    out: list[tuple[str, str]] = [("Via", via), ("Accept", info.get("accept", JSON))]
    if registration.tenant is not None:
        out.append(("NGSILD-Tenant", registration.tenant))
    if has_body:
        out.append(("Content-Type", JSON_LD if inline else JSON))
    if context is not None and not inline:
        out.append(("Link", link_header(context)))
    for key, value in registration.context_source_info or ():
        if key.lower() in _NOT_SENT:
            continue
        if value == FROM_REQUEST:
            copied = incoming.get(key, incoming.get(key.lower()))
            if copied is None:
                continue  # "if present": nothing to convey
            value = copied
        out.append((key, value))
    return Outbound(tuple(out), inline, context)


__all__ = [
    "FROM_REQUEST",
    "Hop",
    "LoopDetected",
    "Outbound",
    "WarnCode",
    "append_via",
    "forward_headers",
    "guard_loop",
    "link_header",
    "parse_via",
    "source_warning",
    "visited",
    "warning",
]
