"""Which addresses a webhook may connect to.

The base rule is :attr:`ipaddress.IPv4Address.is_global`: anything that is
not globally routable (private, shared, link-local, reserved, documentation,
benchmarking...) is refused, and so is multicast. Loopback is refused unless
the caller allows it (the local stack does, so people can test against
their own machine).

An IPv6 address that carries an IPv4 address (IPv4-mapped, -compatible and
-translated forms, 6to4, Teredo, NAT64) is judged by that IPv4 address:
``[2002:a9fe:a9fe::]`` reaches 169.254.169.254 as surely as the plain form.

Host names are resolved once, every address is checked, and the caller
connects to the checked addresses only: resolving again when connecting
would let a name answer differently the second time (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
import unicodedata
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Refused although ``is_global`` says otherwise on some Python versions.
_ALSO_REFUSED: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    _V6("3fff::/20"),  # documentation (RFC 9637)
    _V6("fec0::/10"),  # site-local (deprecated)
)

# How to name a refused address, most specific first.
_NAMES: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (_V4("0.0.0.0/32"), "the unspecified address"),
    (_V4("0.0.0.0/8"), "in the 'this network' range 0.0.0.0/8"),
    (_V4("10.0.0.0/8"), "a private address (10.0.0.0/8)"),
    (_V4("100.64.0.0/10"), "in the shared address space 100.64.0.0/10"),
    (_V4("169.254.169.254/32"), "a link-local address (cloud metadata)"),
    (_V4("169.254.0.0/16"), "a link-local address"),
    (_V4("172.16.0.0/12"), "a private address (172.16.0.0/12)"),
    (_V4("192.0.0.0/24"), "an IETF protocol assignment (192.0.0.0/24)"),
    (_V4("192.0.2.0/24"), "a documentation address (192.0.2.0/24)"),
    (_V4("192.168.0.0/16"), "a private address (192.168.0.0/16)"),
    (_V4("198.18.0.0/15"), "in the benchmarking range 198.18.0.0/15"),
    (_V4("198.51.100.0/24"), "a documentation address (198.51.100.0/24)"),
    (_V4("203.0.113.0/24"), "a documentation address (203.0.113.0/24)"),
    (_V4("255.255.255.255/32"), "the broadcast address"),
    (_V4("240.0.0.0/4"), "a reserved address (240.0.0.0/4)"),
    (_V6("::/128"), "the unspecified address"),
    (_V6("100::/64"), "a discard-only address (100::/64)"),
    (_V6("2001:2::/48"), "in the benchmarking range 2001:2::/48"),
    (_V6("2001::/23"), "an IETF protocol assignment (2001::/23)"),
    (_V6("2001:db8::/32"), "a documentation address (2001:db8::/32)"),
    (_V6("3fff::/20"), "a documentation address (3fff::/20)"),
    (_V6("fd00:ec2::254/128"), "a unique local address (cloud metadata)"),
    (_V6("fc00::/7"), "a unique local (private) address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a site-local address (deprecated)"),
)

_TRANSLATED = _V6("::ffff:0:0:0/96")
_COMPATIBLE = _V6("::/96")
_NAT64 = (_V6("64:ff9b::/96"), _V6("64:ff9b:1::/48"))


class AddressError(Exception):
    """A webhook target that cannot be reached; ``reason`` says why, for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AddressRefused(AddressError):
    """The target is not allowed (or not a valid host): retrying will not help."""


class ResolutionFailed(AddressError):
    """The name did not resolve: worth retrying later."""


class Resolver(Protocol):
    """The part of :func:`socket.getaddrinfo` used here."""

    def __call__(self, host: str, port: int, family: int = ..., type: int = ...) -> Sequence[tuple[Any, ...]]: ...


def refused_reason(ip: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why a webhook may not connect to ``ip``, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner, form = embedded
            what = _refused_as(inner, allow_loopback=allow_loopback)
            return None if what is None else f"{_shown(ip, inner)} embeds {inner} ({form}), {what}"
    what = _refused_as(ip, allow_loopback=allow_loopback)
    return None if what is None else f"{ip} is {what}"


def _refused_as(ip: IPAddress, *, allow_loopback: bool) -> str | None:
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_global and not any(ip in net for net in _ALSO_REFUSED):
        return None
    return next((name for net, name in _NAMES if ip in net), "not a globally routable address")


def _shown(ip: ipaddress.IPv6Address, inner: ipaddress.IPv4Address) -> str:
    """``ip`` as people write it: ``::ffff:127.0.0.1`` rather than ``::ffff:7f00:1``."""
    zone = f"%{ip.scope_id}" if ip.scope_id else ""
    if ip.ipv4_mapped is not None:
        return f"::ffff:{inner}{zone}"
    if ip in _TRANSLATED:
        return f"::ffff:0:{inner}{zone}"
    if ip in _COMPATIBLE:
        return f"::{inner}{zone}"
    return str(ip)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """The IPv4 address this IPv6 address stands for, with the name of the form."""
    last32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped, "IPv4-mapped"
    if ip in _TRANSLATED:
        return last32, "IPv4-translated"
    if ip in _COMPATIBLE and int(ip) > 1:  # not :: nor ::1, which are IPv6's own
        return last32, "IPv4-compatible"
    if ip.sixtofour is not None:
        return ip.sixtofour, "6to4"
    if ip.teredo is not None:
        return ip.teredo[1], "Teredo client"
    if any(ip in net for net in _NAT64):
        return last32, "NAT64"
    return None


def literal_ip(host: str) -> IPAddress | None:
    """``host`` as an address when it is one (brackets, zone ids and legacy IPv4 forms too)."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    for candidate in (host.replace("%25", "%", 1), host):  # a zone id is percent-encoded in URLs
        try:
            return ipaddress.ip_address(candidate)
        except ValueError:
            pass
    # "127.1", "0x7f000001", "2130706433": resolvers read these as IPv4 addresses without asking DNS
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def name_problem(host: str) -> str | None:
    """Why ``host`` cannot be a host name, or None when it can."""
    if any(c.isspace() or unicodedata.category(c) == "Cc" or c in '"<>\\^`{|}%' for c in host):
        return f"{host!r} is not a valid host name"
    try:
        host.encode("idna")
    except UnicodeError:
        return f"{host!r} is not a valid host name (a label is empty or longer than 63 characters)"
    return None


def resolve_checked(host: str, port: int, *, allow_loopback: bool,
                    resolver: Resolver = socket.getaddrinfo) -> list[str]:
    """Resolve ``host`` once and check every address; the caller must connect to these and no others.

    Returns the addresses, deduplicated, in the resolver's order. Raises
    :class:`AddressRefused` when any address is refused (a name that mixes
    allowed and refused addresses is refused as a whole) and
    :class:`ResolutionFailed` when the name does not resolve. A literal
    address is checked without resolving.
    """
    ip = literal_ip(host)
    if ip is not None:
        reason = _literal_reason(host, ip, allow_loopback=allow_loopback)
        if reason is not None:
            raise AddressRefused(reason)
        return [str(ip)]
    problem = name_problem(host)
    if problem is not None:
        raise AddressRefused(problem)
    try:
        infos = resolver(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:
        raise AddressRefused(f"{host!r} is not a valid host name ({exc})") from exc
    except OSError as exc:
        raise ResolutionFailed(f"{host} does not resolve ({exc.strerror or exc})") from exc
    found: list[str] = []
    for family, *_, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and str(sockaddr[0]) not in found:
            found.append(str(sockaddr[0]))
    if not found:
        raise ResolutionFailed(f"{host} resolves to no IPv4 or IPv6 address")
    for address in found:
        reason = refused_reason(ipaddress.ip_address(address), allow_loopback=allow_loopback)
        if reason is not None:
            raise AddressRefused(f"{reason} (resolved from {host})")
    return found


def literal_refusal(url: str, *, allow_loopback: bool) -> str | None:
    """Why this URL may not be a webhook target, judged without resolving; None when it may.

    For subscribe time: a URL that does not parse, has no host or a port
    outside 1..65535, or whose host is a refused literal address, is refused.
    A host name is only checked for shape; its addresses are checked when
    delivering.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        return f"the URL cannot be parsed ({exc})"
    if not host:
        return "the URL has no host"
    shape = authority_problem(parts.netloc)
    if shape is not None:
        return shape
    if port is not None and not 1 <= port <= 65535:
        return f"the port {port} is outside 1..65535"
    ip = literal_ip(host)
    if ip is None:
        return name_problem(host)
    return _literal_reason(host, ip, allow_loopback=allow_loopback)


def authority_problem(netloc: str) -> str | None:
    """What is malformed in a URL's ``[userinfo@]host[:port]`` that :func:`urllib.parse.urlsplit` lets
    through: text after an IPv6 literal's bracket, stray brackets, IPvFuture literals, control characters."""
    if any(unicodedata.category(c) == "Cc" for c in netloc):
        return "the URL's host contains a control character"
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        end = hostport.find("]")
        if end == -1:
            return "the URL's IPv6 address lacks its closing bracket"
        if hostport[1:2].lower() == "v":
            return f"{hostport[: end + 1][:60]!r} is an IPvFuture address, which is not supported"
        rest = hostport[end + 1 :]
        if rest and not (rest.startswith(":") and all(c in "0123456789" for c in rest[1:])):
            return f"{rest[:20]!r} follows the URL's IPv6 address"
    elif "[" in hostport or "]" in hostport:
        return "the URL has a bracket outside an IPv6 address"
    return None


def _literal_reason(host: str, ip: IPAddress, *, allow_loopback: bool) -> str | None:
    reason = refused_reason(ip, allow_loopback=allow_loopback)
    if reason is not None and isinstance(ip, ipaddress.IPv4Address) and host != str(ip):
        return f"{reason} (written {host})"  # a legacy form such as 127.1 or 0x7f000001
    return reason
