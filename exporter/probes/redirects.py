"""Where a redirect may take a probe: the rules the http and journey probers share.

The allowlist (probes.targets, probes.allow) decides which targets /probe may name; a redirect must not
turn a listed target into a way to reach what is not listed. A redirect is followed when

1. its URL is accepted by probes.targets (with the probe's module) or probes.allow: the operator said
   Pulse may probe it; or
2. it stays within the module's limits: with `same_origin_redirects_only`, the same origin (scheme,
   host, port) as the request the probe started with; and, always, the address-class rule below.

Address classes, from the most external to the most internal: public, private, then loopback and
link-local (each its own class). The server that sent a redirect may send the probe to an address of
its own class or a more external one, never to a more internal one, and never between loopback and
link-local: a public site cannot steer Pulse at 10.0.0.5, 127.0.0.1 or 169.254.169.254, and a
loopback service cannot steer it at the cloud metadata address. The destination is checked on the
address resolved for it, before connecting, and the connection goes to that address (no second lookup,
so DNS rebinding cannot swap it).

Credentials (basic_auth, bearer_token, authorization) and configured headers (Cookie, X-Api-Key, ...)
go only to the origin they were configured for, as curl and Go's client do for Authorization and
Cookie; a module can opt out with `cross_origin_redirect_credentials`.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: a NAT64 gateway connects to the embedded IPv4
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated ::a.b.c.d


class AddressClass(StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"  # RFC 1918, unique local fc00::/7, CGNAT, and anything else not globally reachable
    LOOPBACK = "loopback"  # also the unspecified address (0.0.0.0, ::), which Linux connects to this host
    LINK_LOCAL = "link_local"  # 169.254.0.0/16 (cloud metadata), fe80::/10


_DEPTH = {AddressClass.PUBLIC: 0, AddressClass.PRIVATE: 1, AddressClass.LOOPBACK: 2, AddressClass.LINK_LOCAL: 2}


def address_class(ip: str) -> AddressClass:
    """The class of an IP address (an IPv6 scope id like `%eth0` is ignored).

    An IPv6 address that carries an IPv4 one the connection really goes to (IPv4-mapped ::ffff:a.b.c.d,
    NAT64 64:ff9b::a.b.c.d, IPv4-compatible ::a.b.c.d) is classed by that IPv4 address: the standard
    library's flags do not look inside them (::ffff:127.0.0.1 is not `is_loopback` before Python 3.13).
    """
    address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(ip.partition("%")[0])
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
            address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.is_loopback or address.is_unspecified:
        return AddressClass.LOOPBACK
    if address.is_link_local:
        return AddressClass.LINK_LOCAL
    if address.is_global and not address.is_multicast:
        return AddressClass.PUBLIC
    return AddressClass.PRIVATE


def may_redirect(sender: AddressClass, destination: AddressClass) -> bool:
    """Whether a server at a `sender` address may send the probe to a `destination` address."""
    return destination == sender or _DEPTH[destination] < _DEPTH[sender]


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL, with the default port filled in and the host in lower case."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    return scheme, host, parts.port or _DEFAULT_PORTS.get(scheme, 0)


class RedirectBlocked(Exception):
    """A redirect the rules above refuse; the message says which rule and why."""


@dataclass(frozen=True)
class RedirectRules:
    """The rules for one probe: the listed check (from the runner) and the module's option."""

    listed: Callable[[str], bool]  # probes.targets / probes.allow accept this URL with the probe's module
    same_origin_only: bool = False

    def check_url(self, url: str, start: str) -> bool:
        """Before resolving the redirect's host. True: the URL is listed, no address check is needed.
        Raises RedirectBlocked when the module allows only same-origin redirects and this one is not."""
        if self.listed(url):
            return True
        if self.same_origin_only and origin(url) != origin(start):
            raise RedirectBlocked(
                f"redirect to {url} leaves the origin {_show(origin(start))} (same_origin_redirects_only)"
            )
        return False

    @staticmethod
    def check_address(url: str, ip: str, sender: AddressClass) -> AddressClass:
        """Before connecting to `ip` for the redirect to `url`: its class, or RedirectBlocked."""
        destination = address_class(ip)
        if not may_redirect(sender, destination):
            raise RedirectBlocked(
                f"redirect to {url} ({ip}, {destination.value} address) refused: it came from a {sender.value} "
                "address; list the URL in probes.targets or probes.allow to follow it"
            )
        return destination


def _show(parts: tuple[str, str, int]) -> str:
    scheme, host, port = parts
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"
