"""What a notification endpoint may say, checked when the subscription is written.

A subscription that is accepted must be deliverable: its ``endpoint.uri`` must
fit in a request line (or an MQTT connection) and every ``receiverInfo`` item
must be an HTTP header the broker can send without changing the framing of its
own request (5.2.15: receiverInfo are "key-value pairs ... sent as HTTP headers").
Refused at create and update (400 BadRequestData), never found out at delivery:

* receiverInfo keys that are not tokens (RFC 9110 5.1), and the hop-by-hop and
  framing headers the broker writes itself or that would change how the request
  is read: ``Content-Length``, ``Transfer-Encoding``, ``Host``, ``Connection``,
  ``Keep-Alive``, ``TE``, ``Trailer``, ``Upgrade``, ``Proxy-*``;
* receiverInfo values with control characters (NUL, CR, LF...) or characters
  outside Latin-1 (RFC 9110 5.5: a field value is visible ASCII, space, tab and
  obs-text);
* URIs with control characters or spaces in the host, hosts that are neither a
  name, an IPv4 address nor a bracketed IPv6 address; international names are
  accepted as their IDNA (punycode) form.

A URI's path, query and user information are percent-encoded where the URI
syntax allows it (a space becomes ``%20``, ``é`` becomes ``%C3%A9``); what is
already a valid URI is kept byte for byte.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import quote, urlsplit, urlunsplit

from ngsi_ld.errors import BadRequestData

__all__ = ["FORBIDDEN_HEADERS", "check_header", "check_uri"]

#: receiverInfo keys the broker refuses (lower case); ``proxy-*`` too
FORBIDDEN_HEADERS = frozenset({
    "content-length", "transfer-encoding", "host", "connection", "keep-alive", "te",
    "trailer", "upgrade",
})
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: RFC 9110 5.5 field-value characters: HTAB, SP, VCHAR, obs-text (Latin-1 upper half)
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?)*\.?")
#: characters kept as they are in a path or query (RFC 3986 pchar, "/", "?", and "%")
_SAFE_PATH = "/:@!$&'()*+,;=-._~%"
_SAFE_QUERY = _SAFE_PATH + "?"
_SAFE_USER = "!$&'()*+,;=-._~%:"


def check_header(key: str, value: str, where: str) -> None:
    """BadRequestData unless ``key: value`` is a header the broker may send as it is."""
    lowered = key.lower()
    if not _TOKEN.fullmatch(key):
        raise BadRequestData(f"{where} key {key!r} is not an HTTP header name")
    if lowered in FORBIDDEN_HEADERS or lowered.startswith("proxy-"):
        raise BadRequestData(f"{where} key {key!r} is a header the broker sets itself or "
                             "that changes how the notification is framed")
    if not _FIELD_VALUE.fullmatch(value):
        raise BadRequestData(f"{where} value of {key!r} has characters an HTTP header "
                             "cannot carry (control characters, or beyond Latin-1)")


def _host(host: str, uri: str) -> str:
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1].split("%", 1)[0])
        except ValueError:
            raise BadRequestData(f"endpoint uri {uri!r}: {host} is not an IPv6 address") \
                from None
        return host
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise BadRequestData(f"endpoint uri {uri!r}: {host!r} is not a host name") \
                from None
    if not _HOST_NAME.fullmatch(host):
        raise BadRequestData(f"endpoint uri {uri!r}: {host!r} is not a host name")
    return host


def check_uri(uri: str) -> str:
    """The endpoint URI as it will be used: encoded where needed; BadRequestData when no
    request could carry it."""
    if re.search(r"[\x00-\x1f\x7f]", uri):
        raise BadRequestData(f"endpoint uri {uri!r} has control characters")
    try:
        parts = urlsplit(uri)
    except ValueError as exc:  # e.g. brackets around something that is no IPv6 address
        raise BadRequestData(f"endpoint uri {uri!r}: {exc}") from None
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, port = hostport, ""
    if hostport.startswith("["):
        close = hostport.find("]")
        host, port = hostport[:close + 1], hostport[close + 1:]
    elif ":" in hostport:
        host, _, rest = hostport.partition(":")
        port = ":" + rest
    if _CONTROL.search(hostport):
        raise BadRequestData(f"endpoint uri {uri!r}: the host has spaces or control characters")
    netloc = f"{quote(userinfo, safe=_SAFE_USER)}{at}{_host(host, uri)}{port}"
    return urlunsplit((parts.scheme, netloc, quote(parts.path, safe=_SAFE_PATH),
                       quote(parts.query, safe=_SAFE_QUERY),
                       quote(parts.fragment, safe=_SAFE_QUERY)))
