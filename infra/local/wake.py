"""Wake-ups from the local AWS to the delivery loop, so the loop need not poll.

The stack makes a connected pair of Unix datagram sockets before it starts
its processes: the local AWS (``python -m infra.local.aws``) gets one end,
the websocket/delivery process the other. No port is chosen, nothing else
on the machine can write to it, and a process that dies just closes its
end. Each datagram is a hint; the loop still reads the records through
boto3 (as Lambda's event source mappings read the stream and the queue):

- ``records``: records were just written to a Kinesis stream;
- ``visible <t>``: an SQS message becomes visible at ``t`` (seconds since
  the epoch; now, or later with ``DelaySeconds``).

Sending never blocks. The sender's buffer is raised to 1 MB (about 2,700
hints waiting); beyond that, while the loop is stuck in a slow handler, a
hint is dropped: what it announced then waits for the loop's next poll of
that stream or queue (a busy loop polls again at once; at the latest, its
safety poll, 5 s).
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
from dataclasses import dataclass, field

RECORDS = b"records"
VISIBLE = b"visible"
SEND_BUFFER = 1 << 20


def pair() -> tuple[socket.socket, socket.socket]:
    """The two ends: (the local AWS's, the delivery loop's)."""
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
    sender.setblocking(False)
    receiver.setblocking(False)
    return sender, receiver


class WakeSender:
    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock

    def records(self) -> None:
        self._send(RECORDS)

    def visible_at(self, when: float) -> None:
        self._send(b"%s %.3f" % (VISIBLE, when))

    def _send(self, datagram: bytes) -> None:
        with contextlib.suppress(OSError):  # a full buffer (the loop is busy) or no loop any more
            self._sock.send(datagram)


@dataclass
class Wakeups:
    """What arrived: whether records were written, and when messages become visible (epoch seconds)."""

    records: bool = False
    visible_at: list[float] = field(default_factory=list)


class WakeReceiver:
    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock

    def fileno(self) -> int:
        return self._sock.fileno()

    def wait(self, timeout_s: float) -> Wakeups:
        """Wait up to timeout_s for a hint, then take every hint that is waiting."""
        if timeout_s > 0:
            select.select([self._sock], [], [], timeout_s)
        return self.drain()

    def drain(self) -> Wakeups:
        got = Wakeups()
        while True:
            try:
                datagram = self._sock.recv(64)
            except (BlockingIOError, InterruptedError):
                return got
            except OSError:  # the other end is gone: nothing more will come
                return got
            if not datagram:
                return got
            kind, _, value = datagram.partition(b" ")
            if kind == RECORDS:
                got.records = True
            elif kind == VISIBLE:
                with contextlib.suppress(ValueError):
                    when = float(value)
                    if math.isfinite(when):
                        got.visible_at.append(when)

    def close(self) -> None:
        self._sock.close()
