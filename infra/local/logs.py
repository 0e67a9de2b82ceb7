"""Readable logs for the local stack, which runs in a terminal rather than on CloudWatch.

- :func:`configure` gives each process of the stack a plain-text handler on
  stderr (``12:00:01 WARNING chalicelib.api.relay: ...``) whose
  :class:`RateLimit` filter lets one record a minute through per distinct
  message (logger, level and text, the same warning about the same pool),
  and says how many were held back when the next one is let through.
- :class:`AccessLog` writes one line per REST request to stdout: method,
  path (without its query, which may carry pre-signed URLs' signatures),
  status, milliseconds and, on 4xx/5xx, the description from the Zaqar
  error body (``{"title": ..., "description": ...}``).

Both only ever print what they were given with control characters replaced,
so a hostile request cannot forge log lines.
"""

from __future__ import annotations

import logging
import os
import re
import select
import stat
import sys
import threading
import time
from collections.abc import Callable

WINDOW_S = 60.0
_MAX_KEYS = 4096  # distinct messages remembered at once; the oldest are forgotten past that
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%H:%M:%S"


def printable(text: str, limit: int = 300) -> str:
    """text with control characters shown as '?' and cut to limit characters."""
    if not text.isprintable():  # False for every control character (and for some other text: the regex decides)
        text = _CONTROL.sub("?", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RateLimit(logging.Filter):
    """At most one record per window for each distinct (logger, level, message)."""

    def __init__(self, window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}  # key -> (when let through, held back since)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: let logging report it
            return True
        key = (record.name, record.levelno, text)
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and now - seen[0] < self.window_s:
                self._seen[key] = (seen[0], seen[1] + 1)
                return False
            held = seen[1] if seen is not None else 0
            self._seen.pop(key, None)
            self._seen[key] = (now, 0)
            if len(self._seen) > _MAX_KEYS:
                del self._seen[next(iter(self._seen))]
        if held:
            record.msg = f"{text} ({held} more like this in the last {self.window_s:.0f} s not shown)"
            record.args = None
        return True


def configure(level: int = logging.WARNING, window_s: float = WINDOW_S) -> logging.Handler:
    """Plain-text, rate-limited records on stderr for this process (replaces the handlers it inherited)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, DATE_FORMAT))
    handler.addFilter(RateLimit(window_s))
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("infra.local").setLevel(logging.INFO)
    return handler


class AccessLog:
    """One line per request on a file descriptor (stdout): ``12:00:01 GET /v2/queues 200 1.2 ms``.

    A line that cannot be written at once (stdout is a pipe nobody reads any more, and it is full) is
    dropped rather than left to block the worker; the next line that gets through says how many were.
    Writes to a regular file or /dev/null never wait, so only pipes, terminals and sockets are polled
    before each line.
    """

    def __init__(self, fd: int = 1, enabled: bool = True) -> None:
        self.fd = fd
        self.enabled = enabled
        self.dropped = 0
        self._second = -1
        self._stamp = ""
        self._poll = enabled and not _never_blocks(fd)

    def request(self, method: str, path: str, status: int, elapsed_ms: float, description: str | None = None) -> None:
        if not self.enabled:
            return
        now = int(time.time())
        if now != self._second:
            self._second, self._stamp = now, time.strftime(DATE_FORMAT, time.localtime(now))
        line = f"{self._stamp} {printable(method, 20)} {printable(path)} {status} {elapsed_ms:.1f} ms"
        if description:
            line += f" - {printable(description)}"
        try:
            if self._poll and not select.select([], [self.fd], [], 0)[1]:
                self.dropped += 1
                return
            if self.dropped:
                line += f" ({self.dropped} lines before this one were dropped: the output was not read)"
                self.dropped = 0
            os.write(self.fd, (line + "\n").encode("utf-8", "replace")[:4000])  # < PIPE_BUF: lines never mix
        except (OSError, ValueError):  # nothing to write to any more: serving matters more than logging
            self.dropped += 1


def _never_blocks(fd: int) -> bool:
    """Whether writing to fd never waits for a reader: a regular file, or /dev/null."""
    try:
        mode = os.fstat(fd)
        if stat.S_ISREG(mode.st_mode):
            return True
        return stat.S_ISCHR(mode.st_mode) and mode.st_rdev == os.stat(os.devnull).st_rdev
    except OSError:
        return False
