"""A small HTTP/1.1 server for the local stack's worker processes.

One event loop per worker process (``selectors``), no threads: like a
Lambda container, a worker runs one invocation at a time, and it never
pays for thread switches or for the standard library's email-based header
parser. Keep-alive connections, pipelined requests and partial reads and
writes are handled; Nagle's algorithm is off on every connection.
"""

from __future__ import annotations

import json
import selectors
import socket
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

Handler = Callable[[str, str, list[tuple[str, str]], bytes, str], dict[str, Any]]
MAX_HEADER = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
_REASONS = {status.value: status.phrase for status in HTTPStatus}


class _Connection:
    __slots__ = ("address", "inbox", "outbox", "sock")

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address
        self.inbox = bytearray()
        self.outbox = bytearray()


def _parse(buffer: bytearray) -> tuple[str, str, str, list[tuple[str, str]], bytes, int] | None:
    """One complete request at the start of ``buffer``, or None when more bytes are needed."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_HEADER:
            raise ValueError("headers too large")
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers: list[tuple[str, str]] = []
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        value = value.strip()
        headers.append((name, value))
        if name.lower() == "content-length":
            length = int(value)
    if length < 0 or length > MAX_BODY:
        raise ValueError("bad content length")
    total = end + 4 + length
    if len(buffer) < total:
        return None
    return method, target, version, headers, bytes(buffer[end + 4 : total]), total


def _render(result: dict[str, Any], method: str, keep_alive: bool) -> bytes:
    status = int(result["statusCode"])
    payload = result.get("body") or b""
    if result.get("isBase64Encoded"):
        import base64

        payload = base64.b64decode(payload)
    elif isinstance(payload, str):
        payload = payload.encode()
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
    headers = result.get("headers") or {}
    for name, value in headers.items():
        lines.append(f"{name}: {value}")
    for name, values in (result.get("multiValueHeaders") or {}).items():
        lines.extend(f"{name}: {value}" for value in values)
    if status not in (204, 304):
        lines.append(f"Content-Length: {len(payload)}")
        if payload and not any(name.lower() == "content-type" for name in headers):
            lines.append("Content-Type: application/json")
    if not keep_alive:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    if method == "HEAD" or status in (204, 304):
        return head
    return head + payload


def _error(status: int, text: str) -> bytes:
    body = json.dumps({"title": _REASONS.get(status, "Error"), "description": text}).encode()
    return (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def serve(handler: Handler, listener: socket.socket) -> None:
    """Serve forever on an already listening socket (shared with the other workers)."""
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)

    def close(conn: _Connection) -> None:
        selector.unregister(conn.sock)
        conn.sock.close()

    def flush(conn: _Connection) -> bool:
        """Write what can be written; False when the peer went away."""
        try:
            sent = conn.sock.send(conn.outbox)
        except BlockingIOError:
            sent = 0
        except OSError:
            return False
        del conn.outbox[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbox else 0)
        selector.modify(conn.sock, events, conn)
        return True

    def readable(conn: _Connection) -> None:
        try:
            chunk = conn.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            close(conn)
            return
        conn.inbox += chunk
        keep_alive = True
        while keep_alive:
            try:
                parsed = _parse(conn.inbox)
            except (ValueError, UnicodeDecodeError):
                conn.outbox += _error(400, "Malformed HTTP request.")
                flush(conn)
                close(conn)
                return
            if parsed is None:
                break
            method, target, version, headers, body, used = parsed
            del conn.inbox[:used]
            connection = next((v.lower() for n, v in headers if n.lower() == "connection"), "")
            keep_alive = connection != "close" and (version == "HTTP/1.1" or connection == "keep-alive")
            result = handler(method, target, headers, body, conn.address)
            conn.outbox += _render(result, method, keep_alive)
        if not flush(conn) or (not keep_alive and not conn.outbox):
            close(conn)  # the peer left, or we said Connection: close and all is written

    while True:
        for key, events in selector.select():
            if key.data is None:
                try:
                    sock, address = listener.accept()
                except BlockingIOError:
                    continue
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                selector.register(sock, selectors.EVENT_READ, _Connection(sock, address[0]))
                continue
            conn = key.data
            if events & selectors.EVENT_WRITE and conn.outbox and not flush(conn):
                close(conn)
                continue
            if events & selectors.EVENT_READ:
                readable(conn)
