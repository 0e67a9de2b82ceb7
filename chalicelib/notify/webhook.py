"""Webhook delivery: one HTTP POST with a timeout, never following redirects.

By default a webhook may not reach loopback, private, link-local (cloud
metadata) or otherwise reserved addresses; the check runs on every address
the host name resolves to, at delivery time. The local stack allows
loopback so people can test against their own machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Zaqar-Signature"


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: str
    """``delivered``, ``retry`` (worth trying again) or ``failed`` (for good)."""
    detail: str = ""


def forbidden_address(address: str, *, allow_loopback: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if ip.is_loopback:
        return not allow_loopback
    return ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified


def refusal(url: str, *, allow_loopback: bool, resolve: bool = True) -> str | None:
    """Why this URL may not be a webhook target, or None when it may."""
    host = urlsplit(url).hostname
    if not host:
        return "the URL has no host"
    try:
        addresses: set[str] = {host} if _is_ip(host) else (
            {str(info[4][0]) for info in socket.getaddrinfo(host, None)} if resolve else set())
    except OSError as exc:
        return f"{host} does not resolve ({exc.strerror or exc})"
    bad = sorted(a for a in addresses if forbidden_address(a, allow_loopback=allow_loopback))
    if bad:
        return f"{host} resolves to {', '.join(bad)}, a loopback, private, link-local or reserved address"
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>``: receivers recompute and compare."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect could lead anywhere, including where we refuse to go


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirects())


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float, allow_loopback: bool,
         secret: str | None) -> Outcome:
    reason = refusal(url, allow_loopback=allow_loopback)
    if reason is not None:
        return Outcome("failed", f"refused: {reason}")
    all_headers = {"Content-Type": "application/json", **headers}
    if secret is not None:
        all_headers[SIGNATURE_HEADER] = signature(secret, int(time.time()), body)
    request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return Outcome("retry", f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")
    if 200 <= status < 300:
        return Outcome("delivered", str(status))
    if status == 429 or status >= 500:
        return Outcome("retry", f"HTTP {status}")
    return Outcome("failed", f"HTTP {status}")
