"""Where capgate may connect for an integration set up over HTTP (SSRF defence).

By default an upstream address must be public: loopback, private, link-local, unspecified, multicast and
other reserved addresses are refused after DNS resolution, and so is capgate's own public host. The
operator allows more with ``CAPGATE_INTEGRATION_ALLOWED_URLS`` (host or URL patterns, CIDR networks).
The same rules run when a URL is set over HTTP and on every connection (``GuardedNetworkBackend``),
which connects to the very address it checked, so a name that re-resolves elsewhere (DNS rebinding)
gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpcore2
import httpx2

from auth.errors import InvalidRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
SETTING = "CAPGATE_INTEGRATION_ALLOWED_URLS"
DEFAULT_PORTS = {"http": 80, "https": 443}
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class DestinationRefused(ConnectionError):
    """An upstream address the rules refuse; the message names the address and the rule."""


async def resolve(host: str, port: int) -> list[str]:
    found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def embedded_ipv4(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64), which is where it really goes."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def rule_refusing(address: Address) -> str | None:
    """Which default rule refuses ``address`` (None: a public address)."""
    address = embedded_ipv4(address)
    for rule, hit in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
    ):
        if hit:
            return rule
    return None if address.is_global else "reserved"


@dataclass(frozen=True, slots=True)
class Pattern:
    host: str | None = None
    port: int | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None

    def allows(self, host: str, port: int, addresses: Iterable[Address]) -> bool:
        if self.network is not None:
            return all(embedded_ipv4(a) in self.network or a in self.network for a in addresses)
        assert self.host is not None
        return fnmatchcase(host.lower(), self.host) and self.port in (None, port)


def parse_pattern(text: str) -> Pattern:
    """``10.0.0.0/8``, ``127.0.0.1``, ``localhost:3001``, ``*.corp.example``, ``[::1]:*`` or a URL
    (``http://127.0.0.1:3001/mcp``: its host and port; a path is ignored)."""
    text = text.strip()
    try:
        return Pattern(network=ipaddress.ip_network(text, strict=False))
    except ValueError:
        pass
    if "://" in text:
        parts = urlsplit(text.replace("*", "wildcard-"))
        host = (parts.hostname or "").replace("wildcard-", "*")
        return Pattern(host=host, port=parts.port or DEFAULT_PORTS.get(parts.scheme))
    host, _, port = text.rpartition(":") if text.count(":") == 1 or text.startswith("[") else (text, "", "")
    host = host.strip("[]").lower()
    return Pattern(host=host, port=None if port in ("", "*") else int(port))


class DestinationRules:
    def __init__(self, patterns: Sequence[str], *, own_base_url: str, resolver: Resolver = resolve) -> None:
        self.patterns = [parse_pattern(pattern) for pattern in patterns]
        own = urlsplit(own_base_url)
        self.own_host = (own.hostname or "").lower()
        self.own_port = own.port or DEFAULT_PORTS.get(own.scheme, 80)
        self.resolver = resolver

    def refusal(self, host: str, port: int, addresses: Sequence[Address]) -> str | None:
        """Why a connection to ``host:port`` (resolving to ``addresses``) is refused, or None."""
        if any(pattern.allows(host, port, addresses) for pattern in self.patterns):
            return None
        for address in addresses:
            rule = rule_refusing(address)
            if rule is not None:
                article = "an" if rule[0] in "aeiou" else "a"
                return f"{host} resolves to {address}, {article} {rule} address"
        return None

    async def checked_addresses(self, host: str, port: int) -> list[Address]:
        """The addresses of ``host``, all allowed; raises DestinationRefused otherwise."""
        if host.lower() == self.own_host and port == self.own_port:
            if not any(pattern.host is not None and pattern.allows(host, port, ()) for pattern in self.patterns):
                raise DestinationRefused(
                    f"{host}:{port} is capgate's own address; the operator may allow it in {SETTING}"
                )
        try:
            addresses = [ipaddress.ip_address(a.split("%")[0]) for a in await self.resolver(host, port)]
        except OSError:
            raise DestinationRefused(f"{host} does not resolve") from None
        if not addresses:
            raise DestinationRefused(f"{host} does not resolve")
        refused = self.refusal(host, port, addresses)
        if refused is not None:
            raise DestinationRefused(f"{refused}; the operator may allow it in {SETTING}")
        return addresses

    async def check_url(self, url: str) -> None:
        """A URL set over HTTP: a 400 naming ``url`` and the rule when capgate may not connect there."""
        parts = urlsplit(url)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            return  # not an http(s) URL: the store's validation names that
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise InvalidRequest("Invalid url: bad port", details={"url": "bad port"}) from None
        try:
            await self.checked_addresses(parts.hostname or "", port)
        except DestinationRefused as refused:
            raise InvalidRequest(f"Invalid url: {refused}", details={"url": str(refused)}) from None


class GuardedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """Resolves, checks and connects to the checked address itself (TLS still verifies the host name)."""

    def __init__(self, rules: DestinationRules) -> None:
        self.rules = rules
        self.inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        failure: Exception | None = None
        for address in await self.rules.checked_addresses(host, port):
            try:
                return await self.inner.connect_tcp(str(address), port, timeout, local_address, socket_options)
            except httpcore2.ConnectError as error:
                failure = error
        raise failure or DestinationRefused(f"{host} does not resolve")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        raise DestinationRefused("unix sockets are not upstreams")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


def guarded_transport(rules: DestinationRules) -> httpx2.AsyncHTTPTransport:
    """An HTTP transport whose every connection goes through ``rules``; proxies from the environment are
    ignored, since a proxy would make the connection (and the check) elsewhere."""
    transport = httpx2.AsyncHTTPTransport(trust_env=False)
    # httpx2 takes no network backend of its own, so its connection pool is replaced by one that has ours.
    transport._pool = httpcore2.AsyncConnectionPool(
        ssl_context=httpx2.create_ssl_context(trust_env=False), network_backend=GuardedNetworkBackend(rules)
    )
    return transport
