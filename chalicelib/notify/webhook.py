"""Webhook delivery: one HTTP POST to an address that was checked, never a redirect.

:func:`post` resolves the URL's host once with
:func:`chalicelib.rules.addresses.resolve_checked` and connects to exactly
those checked addresses (the next one when connecting to one fails), so a
name cannot resolve to an allowed address for the check and a refused one
for the connection. The Host header, TLS SNI and certificate verification
still use the URL's host name. No proxy is used and redirects are not
followed: either could lead where we refuse to go.

Whatever the subscriber configured or the network did becomes an
:class:`Outcome`, never an exception: ``retry`` for connection errors,
timeouts, TLS errors, names that do not resolve, 429 and 5xx; ``failed``
for refused addresses, invalid URLs or headers, redirects and other 4xx.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import hashlib
import hmac
import http.client
import socket
import ssl
import time
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from chalicelib import errors
from chalicelib.rules import addresses, options
from chalicelib.rules.options import DELIVERY_ID_HEADER, SIGNATURE_HEADER
from chalicelib.rules.trust import AUTH_TOKEN_HEADER

__all__ = ["DELIVERY_ID_HEADER", "SIGNATURE_HEADER", "Outcome", "post", "signature"]

MAX_RESPONSE_BYTES = 64 * 1024
_DETAIL_CHARS = 200
# everything printable but the space stays as it is in the request target; the rest is percent-encoded
_TARGET_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: str
    """``delivered``, ``retry`` (worth trying again) or ``failed`` (for good)."""
    detail: str = ""
    http_status: int | None = dataclasses.field(default=None, compare=False)
    """The receiver's HTTP status, when it answered."""


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." + body>``: receivers recompute and compare."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@functools.cache
def default_context() -> ssl.SSLContext:
    """The process-wide TLS context: system CAs, hostname checks (loaded once, on first use)."""
    return ssl.create_default_context()


def _port(scheme: str, port: int | None) -> int:
    return port if port is not None else (443 if scheme.lower() == "https" else 80)


def _open(address: str, port: int, timeout: float | None) -> socket.socket:
    sock = socket.create_connection((address, port), timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as exc:
        if exc.errno != errno.ENOPROTOOPT:
            sock.close()
            raise
    return sock


class _PinnedHTTP(http.client.HTTPConnection):
    """Speaks to ``host`` (Host header) over a socket opened to ``address``."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = _open(self.address, self.port, self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """Like :class:`_PinnedHTTP`; SNI and certificate verification use ``host``."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self.address = address
        self.tls = context

    def connect(self) -> None:
        sock = _open(self.address, self.port, self.timeout)
        try:
            self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float, allow_loopback: bool,
         secret: str | None, delivery_id: str | None = None, auth_token: str | None = None,
         resolver: addresses.Resolver = socket.getaddrinfo, context: ssl.SSLContext | None = None) -> Outcome:
    """POST ``body`` to ``url``; the outcome says whether it was delivered, is worth retrying, or failed.

    ``headers`` are the subscription's ``post_headers``, checked here (a
    subscription stored before a rule existed fails instead of sending);
    ``auth_token`` (a trust's token) is sent as ``X-Auth-Token`` and wins
    over one in ``headers``; ``timeout`` bounds each connection attempt and
    each read.
    """
    reason = addresses.literal_refusal(url, allow_loopback=allow_loopback)
    if reason is not None:
        return Outcome("failed", f"refused: {reason}")
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), str(parts.hostname)
    if scheme not in {"http", "https"}:
        return Outcome("failed", f"invalid URL: {scheme or 'no'} scheme (http or https expected)")
    try:
        extra = options.check_post_headers(headers)
    except errors.InvalidBody as exc:
        return Outcome("failed", f"invalid headers, not sent: {exc.description}")
    port = _port(scheme, parts.port)
    try:
        pinned = addresses.resolve_checked(host, port, allow_loopback=allow_loopback, resolver=resolver)
    except addresses.AddressRefused as exc:
        return Outcome("failed", f"refused: {exc.reason}")
    except addresses.ResolutionFailed as exc:
        return Outcome("retry", f"DNS: {exc.reason}")
    all_headers = _headers(extra, delivery_id, secret, body, auth_token)
    target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""), safe=_TARGET_SAFE)
    tls = (context or default_context()) if scheme == "https" else None
    return _exchange(host, port, pinned, target, body, all_headers, timeout=timeout, context=tls)


def _headers(extra: Mapping[str, str], delivery_id: str | None, secret: str | None, body: bytes,
             auth_token: str | None = None) -> dict[str, str]:
    result = {} if any(k.lower() == "content-type" for k in extra) else {"Content-Type": "application/json"}
    result.update(extra)
    if auth_token is not None:
        for name in [k for k in result if k.lower() == AUTH_TOKEN_HEADER.lower()]:
            del result[name]
        result[AUTH_TOKEN_HEADER] = auth_token
    if delivery_id is not None:
        result[DELIVERY_ID_HEADER] = delivery_id
    if secret is not None:
        result[SIGNATURE_HEADER] = signature(secret, int(time.time()), body)
    return result


def _exchange(host: str, port: int, pinned: list[str], target: str, body: bytes, headers: Mapping[str, str], *,
              timeout: float, context: ssl.SSLContext | None) -> Outcome:
    connection, detail = _connect(host, port, pinned, timeout=timeout, context=context)
    if connection is None:
        return Outcome("retry", detail)
    try:
        connection.request("POST", target, body=body, headers=dict(headers))
        response = connection.getresponse()
        status = response.status
        excerpt = _excerpt(response)
    except TimeoutError:
        return Outcome("retry", f"timed out after {timeout:g}s waiting for {host} ({connection.address})")
    except (OSError, http.client.HTTPException) as exc:
        return Outcome("retry", f"{_describe(exc)} talking to {host} ({connection.address})")
    finally:
        connection.close()
    if 200 <= status < 300:
        return Outcome("delivered", str(status), status)
    if 300 <= status < 400:
        location = response.getheader("Location") or "nowhere"
        return Outcome("failed", f"HTTP {status}: redirects are not followed (to {location[:_DETAIL_CHARS]})", status)
    if status == 429 or status >= 500:
        return Outcome("retry", f"HTTP {status}{excerpt}", status)
    return Outcome("failed", f"HTTP {status}{excerpt}", status)


def _connect(host: str, port: int, pinned: list[str], *, timeout: float,
             context: ssl.SSLContext | None) -> tuple[_PinnedHTTP | _PinnedHTTPS | None, str]:
    """A connection to the first checked address that accepts, else why none did."""
    deadline = time.monotonic() + timeout
    detail = "no address to connect to"
    for address in pinned:
        connection: _PinnedHTTP | _PinnedHTTPS
        if context is None:
            connection = _PinnedHTTP(host, port, address=address, timeout=timeout)
        else:
            connection = _PinnedHTTPS(host, port, address=address, timeout=timeout, context=context)
        try:
            connection.connect()
        except TimeoutError:
            detail = f"timed out after {timeout:g}s connecting to {host} ({address} port {port})"
        except OSError as exc:
            detail = f"{_describe(exc)} connecting to {host} ({address} port {port})"
        else:
            return connection, ""
        connection.close()
        if time.monotonic() >= deadline:  # do not multiply the timeout by the number of addresses
            break
    return None, detail


def _excerpt(response: http.client.HTTPResponse) -> str:
    """The start of the response body, for the delivery's record (at most MAX_RESPONSE_BYTES are read)."""
    try:
        data = response.read(MAX_RESPONSE_BYTES)
    except (OSError, http.client.HTTPException):
        return ""  # the status is what matters
    text = " ".join("".join(c if c.isprintable() else " " for c in data.decode("utf-8", "replace")).split())
    return f": {text[:_DETAIL_CHARS]}" if text else ""


def _describe(exc: OSError | http.client.HTTPException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return f"{type(exc).__name__}: {exc}"
