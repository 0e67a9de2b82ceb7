"""HTTP for the local stack's REST worker processes: waitress, adjusted for hostile input.

Each worker process serves the gateway (:meth:`infra.local.gateway.Gateway.respond`) with waitress on
the listening socket the stack bound (and shares between its workers). Waitress reads and writes every connection on its event loop
and hands a request on only once it has arrived whole, so a slow client
holds a connection, never the worker. It does keep-alive, pipelining,
``Transfer-Encoding: chunked`` request bodies and ``Expect:
100-continue``; Nagle's algorithm is off.

What is added here:

- No threads: :class:`InlineDispatcher` runs each request on the event
  loop's thread (like a Lambda container, a worker runs one invocation at
  a time, and Chalice keeps the current request on the app object). That
  halves what serving a request costs beside the app (no thread switches,
  no wake-up pipe), and SIGTERM stops the worker after the request in
  progress.
- Limits (:class:`Limits`, from the environment): a connection with no
  request in progress is closed after ``HTTP_IDLE_TIMEOUT`` seconds; a
  request must arrive whole (headers and body) within
  ``HTTP_REQUEST_TIMEOUT`` seconds of its first byte, or it is answered 408
  and the connection closed (a client trickling a byte at a time is no
  longer idle, but still too slow); at most ``HTTP_MAX_CONNECTIONS``
  connections per worker (fewer if the file descriptor limit is lower),
  beyond which waitress stops accepting until some close.
- No WSGI: :class:`ResponderTask` hands the gateway what waitress parsed
  and writes the answer's head and body as one buffer (one send), with the
  headers as the app spelled them and a ``Date`` made once a second. The
  connection is kept alive after 204 and 304 answers too (waitress closes
  it after any answer without a Content-Length, which those may not carry).
- Errors in Zaqar's format: what waitress refuses itself (a malformed
  request line or header, an oversized header or body, an unsupported
  transfer coding) is answered ``{"title": ..., "description": ...}`` as
  JSON, and a request target that makes the URI parser raise (an absolute
  URI with a broken IPv6 host) is a 400 instead of a dropped connection.
- Running out of file descriptors on accept pauses accepting for a second
  (with a rate-limited warning) instead of spinning, and no error while
  accepting closes the listening socket.
"""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import resource
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError, TransferEncodingNotImplemented
from waitress.server import TcpWSGIServer
from waitress.task import ErrorTask, Task
from waitress.utilities import BadRequest, build_http_date

from infra.local.logs import AccessLog
from infra.local.processes import count_of

log = logging.getLogger(__name__)
Responder = Callable[[str, str, list[tuple[str, str]], bytes, str], tuple[str, list[tuple[str, str]], bytes]]
"""(method, request target, headers, body, client address) -> (status line, headers, body): Gateway.respond."""
_FD_RESERVE = 128  # descriptors a worker keeps for Redis, the catalog, AWS and the log
_ACCEPT_PAUSE_S = 1.0


@dataclass(frozen=True)
class Limits:
    idle_timeout_s: float = 60.0
    request_timeout_s: float = 30.0
    max_connections: int = 1000
    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 16 * 1024 * 1024

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Limits:
        """HTTP_IDLE_TIMEOUT, HTTP_REQUEST_TIMEOUT (seconds) and HTTP_MAX_CONNECTIONS; ValueError names a bad one."""
        defaults = cls()

        def number(name: str, default: float) -> float:
            raw = env.get(name)
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{name} must be a number of seconds, not {raw!r}") from None
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number of seconds, not {raw!r}")
            return value

        return cls(
            idle_timeout_s=number("HTTP_IDLE_TIMEOUT", defaults.idle_timeout_s),
            request_timeout_s=number("HTTP_REQUEST_TIMEOUT", defaults.request_timeout_s),
            max_connections=count_of(env, "HTTP_MAX_CONNECTIONS", defaults.max_connections),
        )

    def connection_limit(self) -> int:
        """max_connections, lowered to what this process's file descriptor limit leaves room for."""
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return max(1, min(self.max_connections, soft - _FD_RESERVE))


def _json_error(code: int, reason: str, description: str) -> bytes:
    return json.dumps({"title": reason, "description": description}).encode()


class ZaqarErrorTask(ErrorTask):  # type: ignore[misc]
    """What waitress answers by itself (its parser refused the request), as Zaqar's JSON error."""

    def execute(self) -> None:
        error = self.request.error
        body = _json_error(error.code, error.reason, str(error.body))
        self.status = f"{error.code} {error.reason}"
        self.response_headers.append(("Content-Type", "application/json"))
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)
        server = self.channel.server
        if isinstance(server, ZaqarServer):
            method = getattr(self.request, "command", None) or "-"
            path = (getattr(self.request, "request_uri", None) or "-").split("?", 1)[0]
            server.access_log.request(method, path, error.code, (time.time() - self.start_time) * 1000, str(error.body))


_BODYLESS = ("1", "204", "304")


class ResponderTask(Task):  # type: ignore[misc]
    """Calls the server's responder with what waitress parsed, with no WSGI environment in between (building
    one and reading it back costs more than the rest of serving the request), and writes the answer as one
    buffer: head and body together, in one send.

    The responder's headers are sent as it spelled them (it drops what may not be sent: see
    :func:`infra.local.gateway.render`), with a cached ``Date``. The connection stays open unless the client
    asked otherwise (``Connection: close``, or HTTP/1.0 without ``keep-alive``), also after 204 and 304
    answers (waitress closes every answer without a Content-Length, which those may not carry: RFC 9110)."""

    close_on_finish: bool
    wrote_header: bool
    status: str

    def service(self) -> None:
        request = self.request
        channel = self.channel
        headers = [(_header_name(name), value) for name, value in request.headers.items()]
        received = request.body_rcv  # the body's buffer, read as it is (get_body_stream() would copy it into a file)
        body = received.getbuf().get() if received is not None else b""
        status, response_headers, payload = channel.server.responder(request.command, request.request_uri, headers,
                                                                     body, str(channel.addr[0]))
        self.status = status
        connection = request.headers.get("CONNECTION", "").lower()
        keep_alive = connection != "close" if self.version == "1.1" else connection == "keep-alive"
        if keep_alive and not status.startswith(_BODYLESS):
            keep_alive = any(name.lower() == "content-length" for name, _ in response_headers)
        lines = [f"HTTP/{self.version} {status}"]
        lines.extend(f"{name}: {value}" for name, value in response_headers)
        lines.append(f"Date: {_http_date()}")
        if not keep_alive:
            lines.append("Connection: close")
            self.close_on_finish = True
        elif self.version == "1.0":
            lines.append("Connection: Keep-Alive")
        lines.append("\r\n")
        self.wrote_header = True
        channel.write_soon("\r\n".join(lines).encode("latin-1") + payload)  # render() lets only Latin-1 through


class _HttpDate:
    """The Date header's value, made once a second."""

    def __init__(self) -> None:
        self.second = -1
        self.text = ""

    def __call__(self) -> str:
        now = int(time.time())
        if now != self.second:
            self.second, self.text = now, build_http_date(now)
        return self.text


_http_date = _HttpDate()
_HEADER_NAMES: dict[str, str] = {}
_MAX_HEADER_NAMES = 1024


def _header_name(key: str) -> str:
    """A header as waitress keeps it (``X_PROJECT_ID``) named as clients usually spell it (``X-Project-Id``),
    remembered: the same few names come with every request."""
    name = _HEADER_NAMES.get(key)
    if name is None:
        name = key.replace("_", "-").title()
        if len(_HEADER_NAMES) < _MAX_HEADER_NAMES:
            _HEADER_NAMES[key] = name
    return name


class TolerantParser(HTTPRequestParser):  # type: ignore[misc]
    """Waitress's parser, with whatever it did not expect to raise turned into a 400."""

    def parse_header(self, header_plus: bytes) -> None:
        try:
            super().parse_header(header_plus)
        except (ParsingError, TransferEncodingNotImplemented):
            raise
        except Exception as exc:  # urlsplit's ValueError("Invalid IPv6 URL") on an absolute URI, for one
            raise ParsingError(f"Malformed request: {str(exc)[:100] or type(exc).__name__}.") from exc

    def received(self, data: bytes) -> int:
        try:
            consumed: int = super().received(data)
        except Exception as exc:
            log.warning("the HTTP parser raised on a request: %s", exc)
            self.error = BadRequest("Malformed request.")
            self.completed = True
            return len(data)
        return consumed


class InlineDispatcher:
    """Waitress's task dispatcher, without threads: each request runs on the event loop's own thread, right
    after the read that completed it (so a worker is one thread, and pays for no thread switch per request).

    Waitress hands a completed request over while it holds the channel's lock, and a request's end queues
    the next pipelined one: tasks are queued here, and :meth:`run_pending` (called after each read, outside
    those locks) serves them one after the other, never recursively.
    """

    def __init__(self) -> None:
        self.pending: deque[Any] = deque()
        self.running = False
        self.stop_requested = False

    def set_thread_count(self, count: int) -> None:
        pass

    def add_task(self, task: Any) -> None:
        self.pending.append(task)

    def run_pending(self) -> list[Any]:
        """Serve what is queued; returns the channels served."""
        if self.running:
            return []
        self.running = True
        served = []
        try:
            while self.pending:
                task = self.pending.popleft()
                served.append(task)
                try:
                    task.service()
                except Exception:
                    log.exception("REST worker %d: serving a request", os.getpid())
        finally:
            self.running = False
        if self.stop_requested:
            raise SystemExit(0)
        return served

    def stop(self) -> None:
        """Stop serving: now if idle, else once the request in progress is answered (a signal handler)."""
        if self.running:
            self.stop_requested = True
        else:
            raise SystemExit(0)

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        while self.pending:
            self.pending.popleft().cancel()
        return True


class ZaqarChannel(HTTPChannel):  # type: ignore[misc]
    parser_class = TolerantParser
    task_class = ResponderTask
    error_task_class = ZaqarErrorTask
    request: Any = None
    """The request being received (waitress's parser), until it has arrived whole."""
    current_outbuf_count: int
    total_outbufs_len: int
    request_started = 0.0
    """When the first byte of the request being received arrived (time.time(), as waitress's clock)."""

    def handle_read(self) -> None:
        super().handle_read()
        dispatcher = self.server.task_dispatcher
        if isinstance(dispatcher, InlineDispatcher):
            for channel in dispatcher.run_pending():
                if channel.connected and channel.total_outbufs_len and not channel.requests:
                    channel.handle_write()  # the whole answer in one send, head and body together

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_started = time.time()
        result: bool = super().received(data)
        return result

    def time_out(self, after_s: float) -> None:
        """Answer 408 to a request that did not arrive whole in time, then close (main thread, no task running)."""
        body = _json_error(408, "Request Timeout", f"The request did not arrive whole within {after_s:g} s.")
        head = ("HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        with self.outbuf_lock:
            self.outbufs[-1].append(head + body)
            self.total_outbufs_len += len(head) + len(body)
            self.current_outbuf_count += len(head) + len(body)
        self.request = None
        self.close_when_flushed = True
        server = self.server
        if isinstance(server, ZaqarServer):
            server.access_log.request("-", "-", 408, (time.time() - self.request_started) * 1000,
                                      "request not received in time")


class ZaqarServer(TcpWSGIServer):  # type: ignore[misc]
    channel_class = ZaqarChannel

    def __init__(self, responder: Responder, sock: socket.socket, limits: Limits, access_log: AccessLog) -> None:
        self.responder = responder
        self.limits = limits
        self.access_log = access_log
        self._accept_paused_until = 0.0
        timeouts = min(limits.idle_timeout_s, limits.request_timeout_s)
        tick = max(1, min(5, int(timeouts // 4) or 1))  # how often timeouts are looked at (whole seconds)
        adj = Adjustments(
            threads=1, ident="", expose_tracebacks=False, log_socket_errors=False,
            channel_timeout=max(1, math.ceil(limits.idle_timeout_s)), cleanup_interval=tick,
            asyncore_loop_timeout=tick, connection_limit=limits.connection_limit(),
            max_request_header_size=limits.max_header_bytes, max_request_body_size=limits.max_body_bytes,
            backlog=1024, outbuf_high_watermark=1 << 40,  # a task on the loop's thread must never wait for it
        )
        self.dispatcher = InlineDispatcher()
        super().__init__(_no_wsgi_app, map={}, _sock=sock, adj=adj, bind_socket=False, dispatcher=self.dispatcher,
                         sockinfo=(sock.family, sock.type, sock.proto, sock.getsockname()))

    def pull_trigger(self) -> None:
        """Waitress wakes its loop after a task; tasks run on the loop's thread here, which is awake."""

    def maintenance(self, now: float) -> None:
        """Close connections idle for HTTP_IDLE_TIMEOUT; answer 408 to requests not whole after HTTP_REQUEST_TIMEOUT."""
        idle_cutoff = now - self.adj.channel_timeout
        request_cutoff = now - self.limits.request_timeout_s
        for channel in list(self.active_channels.values()):
            if channel.requests or channel.will_close or channel.close_when_flushed:
                continue  # being answered, or on its way out
            if isinstance(channel, ZaqarChannel) and channel.request is not None:  # a request is arriving
                if channel.request_started < request_cutoff:
                    channel.time_out(self.limits.request_timeout_s)
            elif channel.last_activity < idle_cutoff:
                channel.will_close = True

    def readable(self) -> bool:
        accepting: bool = super().readable()  # runs maintenance when due
        return accepting and time.monotonic() >= self._accept_paused_until

    def handle_accept(self) -> None:
        try:
            pair = self.accept()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                self._accept_paused_until = time.monotonic() + _ACCEPT_PAUSE_S
                log.warning("REST worker %d cannot accept connections: %s (pausing %g s)", os.getpid(),
                            exc.strerror, _ACCEPT_PAUSE_S)
            else:
                log.warning("REST worker %d: accept failed: %s", os.getpid(), exc)
            return
        if pair is None:
            return
        conn, addr = pair
        try:
            self.set_socket_options(conn)
            self.channel_class(self, conn, self.fix_addr(addr), self.adj, map=self._map)
        except OSError:  # the client left before we got to it
            conn.close()

    def handle_error(self) -> None:
        """An error in the listening side's handling: log it and keep listening (waitress would close)."""
        log.exception("REST worker %d: error while accepting", os.getpid())


def _no_wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    raise AssertionError("requests go to the responder (ResponderTask), never to a WSGI app")


def serve(responder: Responder, sock: socket.socket, limits: Limits, access_log: AccessLog | None = None,
          ready: Callable[[], None] | None = None) -> None:
    """Serve on an already listening socket (shared with the other workers) until SIGTERM or SIGINT."""
    assert threading.current_thread() is threading.main_thread()
    server = ZaqarServer(responder, sock, limits, access_log or AccessLog(enabled=False))
    signal.signal(signal.SIGTERM, lambda *_: server.dispatcher.stop())  # after the request in progress
    if ready is not None:
        ready()
    server.run()  # until SIGTERM, or SIGINT (KeyboardInterrupt)
