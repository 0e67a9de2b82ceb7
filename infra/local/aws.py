"""The local stack's AWS: moto's server for Kinesis, SQS and SES, adjusted for a long-running stack.

``python -m infra.local.aws [--host 127.0.0.1] [--port $MOTO_PORT | --fd N] [--wake-fd N] [--ready-fd N]``
serves moto's own WSGI app (the one ``python -m moto.server`` serves; its
``/moto-api`` too) after installing these adjustments into moto's classes,
all of them local to this process:

1. A Kinesis shard keeps its records in a :class:`RecordLog`: still a
   mapping of sequence number to moto's ``Record``, oldest first, but it
   also knows its highest sequence number and keeps its sequence numbers in
   a sorted list. Writing a record is O(1) (moto takes
   ``list(records.keys())[-1]`` on every write) and ``GetRecords`` finds its
   starting point by bisection and reads only what it returns (moto walks
   every record ever written on every call).
2. Local retention: a shard drops records older than ``--retention-s``
   (10 minutes) or beyond the newest ``--max-records`` (100,000), as Kinesis
   drops records past the stream's retention period (24 h by default).
   Sequence numbers keep growing, so iterators stay valid; one that points
   before the oldest record left reads from that record (TRIM_HORIZON).
3. Kinesis writes no longer add CloudWatch ``IncomingBytes``/``IncomingRecords``
   data points: moto keeps every data point forever and nothing local reads them.
4. With ``--wake-fd``, a file descriptor of the datagram socket the stack
   made for it (see :mod:`infra.local.wake`): after Kinesis ``PutRecord`` /
   ``PutRecords`` it tells the delivery loop that records are waiting, and
   after SQS ``SendMessage`` (and each entry of ``SendMessageBatch``) when
   the message becomes visible (with its ``DelaySeconds``), so the loop
   waits instead of polling.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, MutableMapping
from types import FrameType
from typing import Any

from infra.local.wake import WakeSender

RETENTION_S = 600.0
MAX_RECORDS = 100_000
_COMPACT_AT = 1024  # dropped keys left at the front of the sorted list before it is compacted


class RecordLog(MutableMapping[int, Any]):
    """A shard's records, oldest first, with what reading and writing need in O(1) or O(log n).

    ``_keys[_head:]`` are the sequence numbers held, sorted, and ``_arrived``
    (parallel to ``_keys``) when each was written, by ``clock``; records are
    dropped from the front, by moving ``_head``, and the list is compacted
    once most of it is dropped keys. moto's server answers requests on
    threads: a lock keeps the lists consistent and sequence numbers unique.
    """

    def __init__(self, *, retention_s: float = RETENTION_S, max_records: int = MAX_RECORDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.retention_s = retention_s
        self.max_records = max_records
        self._clock = clock
        self._records: dict[int, Any] = {}
        self._keys: list[int] = []
        self._arrived: list[float] = []
        self._head = 0
        self._lock = threading.RLock()
        self.highest = 0
        """The highest sequence number ever written: what the next one follows, even after retention."""

    # -- the mapping (what moto's own code uses) ----------------------------------------

    def __getitem__(self, key: int) -> Any:
        return self._records[key]

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def __iter__(self) -> Iterator[int]:
        with self._lock:
            return iter(self._keys[self._head:])

    def __reversed__(self) -> Iterator[int]:
        with self._lock:
            return iter(self._keys[:self._head - 1 if self._head else None:-1])

    def __setitem__(self, key: int, record: Any) -> None:
        with self._lock:
            self._set(key, record)

    def _set(self, key: int, record: Any) -> None:
        if key in self._records:
            self._records[key] = record
            return
        if self._head == len(self._keys) or key > self._keys[-1]:
            self._keys.append(key)
            self._arrived.append(self._clock())
        else:  # moto writes in order; keep the list sorted anyway
            at = bisect_left(self._keys, key, lo=self._head)
            self._keys.insert(at, key)
            self._arrived.insert(at, self._arrived[at])
        self._records[key] = record
        self.highest = max(self.highest, key)

    def __delitem__(self, key: int) -> None:
        with self._lock:
            del self._records[key]
            at = bisect_left(self._keys, key, lo=self._head)
            if at == self._head:
                self._head += 1
                self._compact()
            else:
                del self._keys[at]
                del self._arrived[at]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
            self._keys.clear()
            self._arrived.clear()
            self._head = 0

    # -- what the adjusted shard uses ---------------------------------------------------

    def first(self) -> int | None:
        with self._lock:
            return self._keys[self._head] if self._head < len(self._keys) else None

    def append(self, make: Callable[[int], Any]) -> Any:
        """Store make(the next sequence number) after the newest record, then apply retention."""
        with self._lock:
            record = make(self.highest + 1)
            self._set(self.highest + 1, record)
            self.expire()
            return record

    def after(self, sequence_number: int, limit: int | None) -> tuple[list[Any], Any]:
        """The records after sequence_number, oldest first, at most limit of them; and the newest record."""
        with self._lock:
            self.expire()
            start = bisect_right(self._keys, sequence_number, lo=self._head)
            end = len(self._keys) if limit is None else min(len(self._keys), start + max(0, limit))
            newest = self._records[self._keys[-1]] if self._head < len(self._keys) else None
            return [self._records[key] for key in self._keys[start:end]], newest

    def last_created_before(self, timestamp: float) -> int:
        """The sequence number of the newest record moto stamped before timestamp; 0 if none."""
        with self._lock:
            at = bisect_left(self._keys, timestamp, lo=self._head, key=lambda key: self._records[key].created_at)
            return self._keys[at - 1] if at > self._head else 0

    def expire(self) -> int:
        """Drop what is past retention (by age or by count); returns how many records were dropped."""
        with self._lock:
            cutoff = self._clock() - self.retention_s
            dropped = 0
            while self._head < len(self._keys) and (
                self._arrived[self._head] < cutoff or len(self._records) > self.max_records
            ):
                del self._records[self._keys[self._head]]
                self._head += 1
                dropped += 1
            if dropped:
                self._compact()
            return dropped

    def _compact(self) -> None:
        if self._head == len(self._keys) or (self._head >= _COMPACT_AT and self._head * 2 >= len(self._keys)):
            del self._keys[:self._head]
            del self._arrived[:self._head]
            self._head = 0


# -- the adjustments, installed into moto's classes --------------------------------------


class _Patches:
    def __init__(self) -> None:
        self._originals: list[tuple[type, str, Any]] = []

    def replace(self, owner: type, name: str, value: Any) -> None:
        self._originals.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, value)

    def undo(self) -> None:
        while self._originals:
            owner, name, original = self._originals.pop()
            setattr(owner, name, original)


def _adjust_shards(patches: _Patches, retention_s: float, max_records: int, clock: Callable[[], float]) -> None:
    from moto.kinesis.models import Record, Shard

    def log(shard: Any) -> RecordLog:
        records = shard.records
        if not isinstance(records, RecordLog):  # a shard made before the adjustments: take its records over
            adopted = RecordLog(retention_s=retention_s, max_records=max_records, clock=clock)
            for key, record in records.items():
                adopted[key] = record
            shard.records = records = adopted
        return records

    original_init = Shard.__dict__["__init__"]

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.records = RecordLog(retention_s=retention_s, max_records=max_records, clock=clock)

    def put_record(self: Any, partition_key: str, data: str, explicit_hash_key: str) -> str:
        record = log(self).append(lambda number: Record(partition_key, data, number, explicit_hash_key))
        return str(record.sequence_number)

    def get_records(self: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
        last = int(last_sequence_id)
        results, newest = log(self).after(last, limit)
        if not results:
            return [], last, 0
        return results, results[-1].sequence_number, int((newest.created_at - results[-1].created_at) * 1000)

    def get_min_sequence_number(self: Any) -> int:
        return log(self).first() or 0

    def get_max_sequence_number(self: Any) -> int:
        return log(self).highest

    def get_sequence_number_at(self: Any, at_timestamp: float) -> int:
        return log(self).last_created_before(at_timestamp)

    patches.replace(Shard, "__init__", init)
    patches.replace(Shard, "put_record", put_record)
    patches.replace(Shard, "get_records", get_records)
    patches.replace(Shard, "get_min_sequence_number", get_min_sequence_number)
    patches.replace(Shard, "get_max_sequence_number", get_max_sequence_number)
    patches.replace(Shard, "get_sequence_number_at", get_sequence_number_at)


def _skip_stream_metrics(patches: _Patches) -> None:
    from moto.kinesis.models import KinesisBackend

    def send_stream_metrics(self: Any, stream_name: str, incoming_bytes: int, incoming_records: int) -> None:
        return None

    patches.replace(KinesisBackend, "_send_stream_metrics", send_stream_metrics)


def _wake_on_writes(patches: _Patches, wake: WakeSender) -> None:
    from moto.kinesis.models import KinesisBackend
    from moto.sqs.models import SQSBackend

    put_record = KinesisBackend.__dict__["put_record"]
    put_records = KinesisBackend.__dict__["put_records"]
    send_message = SQSBackend.__dict__["send_message"]

    def woken_put_record(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = put_record(self, *args, **kwargs)
        wake.records()
        return result

    def woken_put_records(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = put_records(self, *args, **kwargs)
        wake.records()
        return result

    def woken_send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        message = send_message(self, *args, **kwargs)  # SendMessageBatch sends each entry through here
        wake.visible_at(max(time.time(), message.delayed_until / 1000, message.visible_at / 1000))
        return message

    patches.replace(KinesisBackend, "put_record", woken_put_record)
    patches.replace(KinesisBackend, "put_records", woken_put_records)
    patches.replace(SQSBackend, "send_message", woken_send_message)


def install(*, retention_s: float = RETENTION_S, max_records: int = MAX_RECORDS, wake: WakeSender | None = None,
            clock: Callable[[], float] = time.monotonic) -> Callable[[], None]:
    """Install the adjustments into moto's classes; returns what removes them again."""
    patches = _Patches()
    _adjust_shards(patches, retention_s, max_records, clock)
    _skip_stream_metrics(patches)
    if wake is not None:
        _wake_on_writes(patches, wake)
    return patches.undo


@contextlib.contextmanager
def adjusted(**options: Any) -> Iterator[None]:
    """The adjustments, installed for the duration of a block (tests use moto in-process)."""
    undo = install(**options)
    try:
        yield
    finally:
        undo()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.aws", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("MOTO_PORT") or 9100))
    parser.add_argument("--fd", type=int, default=None,
                        help="serve on this listening socket (the stack binds MOTO_PORT itself) instead of --port")
    parser.add_argument("--wake-fd", type=int, default=None,
                        help="a datagram socket to send wake-ups to the delivery loop on (see infra.local.wake)")
    parser.add_argument("--ready-fd", type=int, default=None,
                        help="a pipe to write one byte to, then close, once the server is ready")
    parser.add_argument("--retention-s", type=float, default=RETENTION_S)
    parser.add_argument("--max-records", type=int, default=MAX_RECORDS)
    args = parser.parse_args(argv)

    wake = None
    if args.wake_fd is not None:
        wake = WakeSender(socket.socket(fileno=args.wake_fd))
    install(retention_s=args.retention_s, max_records=args.max_records, wake=wake)

    import waitress
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    # moto's own app (what moto.server serves), bound here so that a port in use fails the start.
    # waitress rather than werkzeug's development server: werkzeug closes every connection after
    # one request, so each boto3 call would pay for a new connection (and moto for a new thread).
    app = DomainDispatcherApplication(create_backend_app)
    where: dict[str, Any] = ({"sockets": [socket.socket(fileno=args.fd)]} if args.fd is not None
                             else {"host": args.host, "port": args.port})
    server = waitress.create_server(app, threads=8, ident="moto", channel_timeout=300, **where)
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=server.run, name="moto", daemon=True).start()
    if args.ready_fd is not None:
        with contextlib.suppress(OSError):
            os.write(args.ready_fd, b"1")
            os.close(args.ready_fd)
    while not stopping.wait(3600):
        pass
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
