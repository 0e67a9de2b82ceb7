"""The benchmark's webhook receiver, run as a process of its own: ``python -m bench.receiver``.

It is neither stack's process, so its CPU is counted for neither. It prints
``port <n>`` on stdout once it listens on 127.0.0.1, answers every
notification ``200`` at once (HTTP/1.1, keep-alive honoured) and records
when each one arrived, on ``time.monotonic()`` (CLOCK_MONOTONIC, one clock
for every process of the machine, so the benchmark can subtract its own
send times from it).

A notification is recognised by the ``run`` and ``seq`` keys the benchmark
puts in each message body; the payload's ``body`` (ours and upstream's
alike) carries them. Control endpoints, for the benchmark only:

- ``GET /count?run=<tag>``: ``{"count": distinct seqs arrived, "total": requests}``
- ``GET /arrivals?run=<tag>``: ``{"arrivals": [[seq, t], ...]}`` (first arrival of each seq)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class Arrivals:
    def __init__(self) -> None:
        self.first: dict[str, dict[int, float]] = {}
        self.total: dict[str, int] = {}
        self.unrecognised = 0

    def record(self, body: bytes, arrived: float) -> None:
        try:
            message = json.loads(body)
            inner: Any = message.get("body") if isinstance(message, dict) else None
            run, seq = str(inner["run"]), int(inner["seq"])
        except (ValueError, TypeError, KeyError, AttributeError):
            self.unrecognised += 1
            return
        self.total[run] = self.total.get(run, 0) + 1
        self.first.setdefault(run, {}).setdefault(seq, arrived)

    def answer(self, target: str) -> bytes:
        parts = urlsplit(target)
        run = parse_qs(parts.query).get("run", [""])[0]
        seen = self.first.get(run, {})
        if parts.path == "/count":
            doc: dict[str, object] = {"count": len(seen), "total": self.total.get(run, 0),
                                      "unrecognised": self.unrecognised}
        elif parts.path == "/arrivals":
            doc = {"arrivals": sorted(seen.items())}
        else:
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        payload = json.dumps(doc).encode()
        return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode() + b"\r\n\r\n" + payload)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = b""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers expected: the empty line
            return body
        body += await reader.readexactly(size)
        await reader.readexactly(2)


async def _serve(arrivals: Arrivals) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    body = await _read_chunked(reader)
                else:
                    body = await reader.readexactly(int(headers.get("content-length") or 0))
                if method == "POST":
                    arrivals.record(body, time.monotonic())
                    writer.write(_OK)
                else:
                    writer.write(arrivals.answer(target))
                await writer.drain()
                if headers.get("connection", "").lower() == "close" or lines[0].endswith("HTTP/1.0"):
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0, backlog=512)
    port = server.sockets[0].getsockname()[1]
    print(f"port {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> int:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(Arrivals()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
