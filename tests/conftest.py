"""Shared fixtures: real Redis, real catalogs, the app's services.

Redis: ``TEST_REDIS_URL`` or the machine's server on 127.0.0.1:6379,
database 13; when none answers, an embedded server of our own. Tests never
flush anything: every test works in a project of its own and deletes only
the keys of that project afterwards.

Processes: every server the tests start runs in a process group of its own
and is stopped with it; whatever still runs when the session ends (a
grandchild orphaned by a killed child, a server of a fixture that failed
halfway) is found and stopped here (:func:`pytest_unconfigure`), and SIGTERM
stops a run as Ctrl-C does, tearing the fixtures down.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import FrameType
from urllib.parse import quote

import pytest
import redis

from chalicelib import runtime
from chalicelib.api.context import Caller, Services
from chalicelib.config import Settings
from chalicelib.events.model import RecordingSink
from tests.keystone_server import Keystone

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ENCRYPTION_KEY = "test-encryption-key"
_PR_SET_CHILD_SUBREAPER = 36
SWEEP_GRACE_S = 5.0


def _interrupted(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def pytest_configure(config: pytest.Config) -> None:
    """The run adopts its processes' orphans (Linux), and SIGTERM interrupts it as Ctrl-C does: pytest then tears
    every fixture down, stopping the servers they started, instead of dying with them still running."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupted)


def _descendants() -> dict[int, tuple[int, str, str]]:
    """Every process below this one: pid to (parent pid, state, command line), from /proc."""
    table: dict[int, tuple[int, str, str]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            table[int(entry)] = (int(ppid), state, command.strip() or stat.split("(", 1)[1].rsplit(")", 1)[0])
    found: dict[int, tuple[int, str, str]] = {}
    parents = [os.getpid()]
    while parents:
        parent = parents.pop()
        for pid, row in table.items():
            if row[0] == parent and pid not in found:
                found[pid] = row
                parents.append(pid)
    return found


def _reap_children() -> None:
    """Collects this process's exited children that nobody waits for (orphans it adopted)."""
    for pid, (ppid, state, _command) in _descendants().items():
        if ppid == os.getpid() and state == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def pytest_unconfigure(config: pytest.Config) -> None:
    """After every fixture's teardown: stops whatever the tests started that still runs, and names it."""
    left = {pid: row for pid, row in _descendants().items() if row[1] != "Z"}
    if left:
        plural = "es" if len(left) > 1 else ""
        sys.stderr.write(f"\ntests/conftest.py: {len(left)} process{plural} outlived the test run, stopping them:\n")
        for pid, (_ppid, _state, command) in sorted(left.items()):
            sys.stderr.write(f"  {pid} {command[:200]}\n")
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + SWEEP_GRACE_S
        while time.monotonic() < deadline and any(row[1] != "Z" for row in _descendants().values()):
            _reap_children()
            time.sleep(0.1)
        for pid, row in _descendants().items():
            if row[1] != "Z":
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    _reap_children()


@pytest.fixture(autouse=True, scope="session")
def _no_real_aws() -> Iterator[None]:
    """Fake credentials and a region: nothing in the tests may reach real AWS."""
    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {key: os.environ.get(key) for key in fake}
    os.environ.update(fake)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
    if _answers(url):
        yield url
        return
    from infra.local.embedded_redis import embedded_redis

    with embedded_redis(tmp_path_factory.mktemp("redis"), persistent=False) as server:
        yield server.url


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A one-node Redis Cluster of our own: cross-slot commands fail there as on a sharded cluster."""
    from infra.local.embedded_redis import embedded_redis

    with embedded_redis(tmp_path_factory.mktemp("redis-cluster"), persistent=False, cluster=True) as server:
        yield server.url


@pytest.fixture(scope="session")
def replicated_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis Cluster of 3 primaries with a replica each (tests/redis_cluster.py), as a pool URI whose every
    write waits for its replica (wait_replicas=1)."""
    from tests.redis_cluster import redis_cluster

    with redis_cluster(tmp_path_factory.mktemp("redis-cluster-replicated")) as cluster:
        yield cluster.url + "&wait_replicas=1&wait_timeout_ms=2000"


@pytest.fixture(scope="session")
def wire_mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A MongoDB wire-protocol server of our own for the session (see tests/wire_mongodb.py)."""
    from tests.wire_mongodb import wire_mongodb

    with wire_mongodb(tmp_path_factory.mktemp("nx-27017")) as url:
        yield url


def wire_pool_url(server: str) -> str:
    """A pool URI on the wire-protocol server, in a database of its own (never dropped by anyone else)."""
    return f"{server}/zaqar_{uuid.uuid4().hex[:12]}?unreliable=true&directConnection=true"


def _delete_project_keys(url: str, project: str) -> None:
    from chalicelib.storage.redis import keys

    client = redis.Redis.from_url(url)
    pattern = keys.PREFIX + ":{" + quote(project, safe="") + "/*"
    for key in client.scan_iter(match=pattern.replace("[", "\\["), count=500):
        client.delete(key)
    # the pool-wide outbox index: only this project's members
    prefix = quote(project, safe="") + "/"
    mine = [m for m in client.zrange(keys.OUTBOXES, 0, -1) if m.decode().startswith(prefix)]
    if mine:
        client.zrem(keys.OUTBOXES, *mine)
    client.close()


@contextlib.contextmanager
def installed(services: Services, *, close: bool = False, redis_url: str | None = None,
              projects: Iterable[str] = ()) -> Iterator[Services]:
    """These services for the app's handlers until the block ends; then, when asked, their pools closed and
    the named projects' keys deleted from ``redis_url``."""
    runtime.install(services)
    try:
        yield services
    finally:
        runtime.install(None)
        if close:
            services.pooling.close()
        for name in projects if redis_url else ():
            _delete_project_keys(str(redis_url), name)


@pytest.fixture
def project(redis_url: str) -> Iterator[str]:
    from chalicelib import topics

    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    _delete_project_keys(redis_url, name)
    _delete_project_keys(redis_url, topics.space(name))  # its topics


@pytest.fixture
def caller(project: str) -> Caller:
    return Caller(project=project, client_id=str(uuid.uuid4()))


def make_settings(tmp_path: Path, pool_url: str, **overrides: str) -> Settings:
    env = {
        "POOL_URL": pool_url,
        "CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.sqlite3'}",
        "DATA_DIR": str(tmp_path),
        "MESSAGE_ENCRYPTION_KEY": ENCRYPTION_KEY,
        **overrides,
    }
    return Settings.from_mapping(env)


MONGO_POOL = "mongodb://mongomock.invalid/zaqar_functional?unreliable=true"


@pytest.fixture(params=["redis", "mongodb", "mongodb-wire"])
def pool_kind(request: pytest.FixtureRequest) -> str:
    """The functional suite runs on a Redis default pool and on MongoDB ones: mongomock in this process,
    and a wire-protocol server (nx-27017) over loopback."""
    return str(request.param)


MONGODB_URL = os.environ.get("MONGODB_URL")


@pytest.fixture
def real_mongodb_url() -> Iterator[str]:
    """MONGODB_URL pointed at a database of this test's own, dropped afterwards."""
    if not MONGODB_URL:
        pytest.skip("set MONGODB_URL to run this against a real MongoDB")
    from urllib.parse import urlsplit, urlunsplit

    import pymongo

    from chalicelib.storage.mongodb.driver import pool_options

    name = f"zaqar_test_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(MONGODB_URL)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(pool_options(MONGODB_URL)[0])
    client.drop_database(name)  # the test's own database (pool-only options such as unreliable taken out)
    client.close()


@pytest.fixture
def pool_url(redis_url: str, pool_kind: str, request: pytest.FixtureRequest) -> str:
    """The default pool's URI for this pool kind (mongomock's is a placeholder the services fixture serves)."""
    if pool_kind == "mongodb":
        return MONGO_POOL
    if pool_kind == "mongodb-real":
        return str(request.getfixturevalue("real_mongodb_url"))
    if pool_kind == "mongodb-wire":
        return wire_pool_url(request.getfixturevalue("wire_mongodb_url"))
    return redis_url


def kind_settings(tmp_path: Path, redis_url: str, pool_url: str, **extra: str) -> Settings:
    """Settings on this default pool (a MongoDB one keeps its connections and deliveries in Redis), plus ``extra``."""
    if pool_url.startswith("mongodb"):
        return make_settings(tmp_path, pool_url, STATE_URL=redis_url, **extra)
    return make_settings(tmp_path, pool_url, **extra)


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, pool_url: str) -> Settings:
    return kind_settings(tmp_path, redis_url, pool_url)


@pytest.fixture
def services(settings: Settings, pool_kind: str) -> Iterator[Services]:
    built = runtime.build(settings, RecordingSink())
    if pool_kind == "mongodb":
        import mongomock

        from chalicelib.storage.mongodb.driver import MongoStore

        client = mongomock.MongoClient()
        built.pooling._open = lambda uri: MongoStore(client=client, database="zaqar_functional", unreliable=True)
    runtime.install(built)
    yield built
    runtime.install(None)
    if pool_kind == "mongodb-wire" and settings.pool_url.startswith("mongodb://"):
        _drop_wire_database(settings.pool_url)


def _drop_wire_database(pool_url: str) -> None:
    """The test's own database on the wire-protocol server (wire_pool_url made it up)."""
    import pymongo

    from chalicelib.storage.mongodb.driver import pool_options

    url = pool_options(pool_url)[0]
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(url)
    try:
        client.drop_database(pymongo.uri_parser.parse_uri(url)["database"])
    finally:
        client.close()


POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+pg8000://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL server's admin URL; skips locally (fails under CI) when none answers."""
    import sqlalchemy as sa

    from chalicelib.storage.catalog import engine_for

    engine = engine_for(sa.engine.make_url(POSTGRES_URL).update_query_dict({"connect_timeout": "3"})
                        .render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} must answer under CI: {exc}")
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL} (set TEST_POSTGRES_URL): {exc.orig}")
    finally:
        engine.dispose()
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A database of this test's own, dropped afterwards."""
    import sqlalchemy as sa

    name = f"zaqar_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base_url = sa.engine.make_url(postgres_server)
    yield base_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    """A real Keystone, once per run, whose tokens live an hour (see tests/keystone_server.py)."""
    from tests import keystone_server

    if not keystone_server.available():
        if IN_CI:
            pytest.fail("the Keystone virtualenv (.venv-keystone) is missing: make test creates it")
        pytest.skip("no .venv-keystone: run make test (it installs keystone==30.0.0) to run these")
    server = keystone_server.start(tmp_path_factory.mktemp("keystone"))  # stops what it started if it fails
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def short_lived_keystone(keystone: Keystone) -> Iterator[Keystone]:
    """The test Keystone served a second time, issuing tokens that live ``SHORT_TOKEN_SECONDS`` (expiry tests).
    Its tokens are good at ``keystone`` too, and the other way round: they share the database and the keys."""
    from tests import keystone_server

    server = keystone_server.start_sibling(keystone, token_seconds=keystone_server.SHORT_TOKEN_SECONDS)
    try:
        yield server
    finally:
        server.stop()
