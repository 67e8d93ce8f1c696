"""Which addresses the broker may call: remote @contexts, notifications, forwarded requests.

Clients name URLs the broker then calls (a ``Link`` to a remote ``@context``, a
subscription's ``endpoint.uri``, a registration's ``endpoint``).  Unchecked, a
client could make the broker reach what only the broker can reach: the cloud
metadata service at 169.254.169.254, services on loopback, the private network
behind it, and tell by the error which ports are open.

The rule, applied after name resolution and to every address a name resolves to:

* refused by default: loopback, link-local, private (RFC 1918, unique-local
  IPv6), shared (100.64/10), unspecified, multicast, reserved and every other
  address that is not globally reachable (``ipaddress``'s ``is_global``); an
  IPv4-mapped IPv6 address is judged as the IPv4 address it carries;
* allowed whatever it is: an address inside a network of the allow-list
  (``--outbound-allow 127.0.0.0/8,10.1.0.0/16``).

A name that resolves to several addresses keeps the allowed ones; none allowed
is a :class:`Refused`.  The caller connects to the addresses returned here, never
resolves again (no DNS-rebinding gap), and keeps the name for ``Host`` and TLS
(SNI and certificate checks): :meth:`OutboundPolicy.resolver` is an aiohttp
resolver that does just that, and aiohttp skips resolvers for IP literals, so
callers check literal URLs with :meth:`OutboundPolicy.check` first, and at each
redirect (aiohttp redirects are then followed by hand).

:class:`Refused` is an ``OSError``: code that already treats connection errors
as "unreachable" needs no new branch.  Callers answer clients one generic message
and log the reason (refused by policy, timeout, refused port) themselves.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["DEFAULT_PORTS", "OutboundPolicy", "Refused", "parse_networks"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: the port a URL without one names, by scheme
DEFAULT_PORTS = {"http": 80, "https": 443, "mqtt": 1883, "mqtts": 8883}

_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class Refused(OSError):
    """The outbound policy refuses this destination; ``reason`` says why (for the log)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_networks(text: str | Iterable[str]) -> tuple[IPNetwork, ...]:
    """``"127.0.0.0/8, ::1"`` (or its items) as networks; ValueError for a bad one.

    A bare address is a network of one address; host bits set are tolerated
    (``127.0.0.1/8`` is ``127.0.0.0/8``).
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    networks: list[IPNetwork] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an IP network (CIDR) or address: {item!r}") from None
    return tuple(networks)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


class OutboundPolicy:
    """The outbound request policy: ``permits(address)``, ``check(url)``, a resolver."""

    def __init__(self, allow: Iterable[IPNetwork] = ()) -> None:
        self.allow = tuple(allow)

    @classmethod
    def parse(cls, text: str) -> OutboundPolicy:
        """The policy of the ``--outbound-allow`` option's value."""
        return cls(parse_networks(text))

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be called, or None if it may."""
        mapped = getattr(address, "ipv4_mapped", None)
        judged: IPAddress = mapped if mapped is not None else address
        if any(judged in net or address in net for net in self.allow):
            return None
        for kind in ("loopback", "link_local", "private", "unspecified", "multicast",
                     "reserved"):
            if getattr(judged, f"is_{kind}"):
                return f"{address} is a {kind.replace('_', '-')} address"
        if not judged.is_global:
            return f"{address} is not a globally reachable address"
        return None

    def permits(self, address: str | IPAddress) -> bool:
        """True if the policy allows calling ``address`` (an IP address)."""
        ip = _literal(address) if isinstance(address, str) else address
        return ip is not None and self.refusal(ip) is None

    def check_literal(self, host: str) -> None:
        """:class:`Refused` if ``host`` is an IP address the policy refuses (names pass)."""
        literal = _literal(host)
        if literal is not None:
            reason = self.refusal(literal)
            if reason is not None:
                raise Refused(f"{host}: {reason}")

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses of ``host`` that may be called (resolved off the event loop).

        Refused when none may (the reason names each address refused), or when the
        name does not resolve.
        """
        literal = _literal(host)
        if literal is not None:
            reason = self.refusal(literal)
            if reason is not None:
                raise Refused(f"{host}: {reason}")
            return [str(literal)]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise Refused(f"{host} does not resolve: {exc}") from None
        allowed: list[str] = []
        reasons: list[str] = []
        for _family, _, _, _, sockaddr in infos:
            address = str(sockaddr[0])
            ip = _literal(address)
            reason = self.refusal(ip) if ip is not None else f"{address} is not an address"
            if reason is None:
                if address not in allowed:
                    allowed.append(address)
            else:
                reasons.append(reason)
        if not allowed:
            raise Refused(f"{host}: " + ("; ".join(dict.fromkeys(reasons)) or "no address"))
        return allowed

    async def check(self, url: str) -> list[str]:
        """The addresses ``url``'s host may be called at; :class:`Refused` otherwise.

        Only ``http``, ``https``, ``mqtt`` and ``mqtts`` URLs with a host are callable.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise Refused(f"{url!r} is not a URL") from None
        default = DEFAULT_PORTS.get(parts.scheme)
        if default is None or not parts.hostname:
            raise Refused(f"{url!r}: only http, https, mqtt and mqtts URLs with a host")
        return await self.addresses(parts.hostname, port or default)

    def resolver(self) -> AbstractResolver:
        """An aiohttp resolver that answers only the addresses this policy allows.

        aiohttp connects to what it answers and keeps the name for Host and TLS.
        IP literals never reach a resolver: :meth:`check` them before each request.
        """
        return _PolicyResolver(self)


class _PolicyResolver(AbstractResolver):
    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results: list[ResolveResult] = []
        for address in await self.policy.addresses(host, port):
            ip = ipaddress.ip_address(address)
            results.append(ResolveResult(
                hostname=host, host=address, port=port,
                family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                proto=0, flags=_NUMERIC))
        return results

    async def close(self) -> None:
        return None
