"""A MongoDB wire-protocol server for the tests: nx-27017 (MongoDB's protocol over SQLite, from PyPI).

No MongoDB server package installs on this machine, and mongomock is neither a server nor thread-safe.
nx-27017 is a real server process speaking the wire protocol that pymongo talks to over loopback, so the
driver's queries, indexes, duplicate keys, timeouts and concurrent clients are exercised for real. What
it cannot show (it is a standalone server, its transactions are not isolated, a sub-document ``_id`` is
never matched, update operators store sub-documents and dates as strings) the README lists.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymongo
from pymongo import errors as mongo_errors

from infra.local.processes import free_port
from tests.keystone_server import stop_group

START_TIMEOUT_S = 60.0


def _executable() -> str:
    beside = Path(sys.executable).with_name("nx-27017")  # installed with requirements-dev.txt
    return str(beside) if beside.exists() else (shutil.which("nx-27017") or "nx-27017")


@contextmanager
def wire_mongodb(folder: Path) -> Iterator[str]:
    """A fresh in-memory server on a free loopback port, stopped (with its process group) afterwards; yields
    its URI without a database (add ``/name?unreliable=true`` for a pool URI: the server is standalone)."""
    port = free_port()
    log = folder / "nx-27017.out"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [_executable(), "--db", "memory", "-p", str(port), "--host", "127.0.0.1",
             "--log-file", str(folder / "nx-27017.log"), "--pid-file", str(folder / "nx-27017.pid")],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"mongodb://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            url, directConnection=True, serverSelectionTimeoutMS=500)
        try:
            while True:
                try:
                    client.admin.command("ping")
                    break
                except mongo_errors.PyMongoError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"nx-27017 did not start: {log.read_text()[-2000:]}") from None
                    time.sleep(0.1)
        finally:
            client.close()
        yield url
    finally:
        stop_group(process)
