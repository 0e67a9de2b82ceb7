"""The SQL catalog: pools, flavors and the queue registry.

The registry row of a queue is its placement: (project, queue) -> pool. It
is also what listing queues across pools reads. Schema changes go through
the Alembic migrations in ``migrations/``; :meth:`Catalog.migrate` applies
them (the local stack and tests do so at start, deployments as a step).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from chalicelib import errors
from chalicelib.config import ConfigError
from chalicelib.storage.pools import DEFAULT_POOL, Pool

__all__ = ["DEFAULT_POOL", "Catalog", "Pool", "metadata"]

log = logging.getLogger(__name__)
metadata = sa.MetaData()

pools = sa.Table(
    "pools",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("uri", sa.String(255), nullable=False, unique=True),
    sa.Column("weight", sa.Integer, nullable=False),
    sa.Column("flavor", sa.String(64), nullable=True),
    sa.Column("options", sa.Text, nullable=False, default="{}"),
)

flavors = sa.Table(
    "flavors",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("capabilities", sa.Text, nullable=False, default="{}"),
)

queues = sa.Table(
    "queues",
    metadata,
    sa.Column("project", sa.String(256), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("pool", sa.String(64), sa.ForeignKey("pools.name"), nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("flavor", sa.String(64), nullable=True),
    sa.Index("ix_queues_pool", "pool"),
    sa.Index("ix_queues_flavor", "flavor"),
)

_PROGRAMMING = ("no such table", "no such column", "has no column", "syntax error")
"""What SQLite reports as an OperationalError although it is a bug or a catalog never migrated, not an outage."""


@contextmanager
def sql_errors(unreachable: str) -> Iterator[None]:
    """The one boundary of catalog statements. The database not answering (no connection, a dropped one, a
    timeout, a lock held too long) is a 503 with ``unreachable``; a value it refuses (too long, out of range,
    a character it cannot store) is the request's 400 (the transports screen such input first: this keeps
    the last word right); anything else (a wrong query, a missing table) is a bug and propagates, logged and
    answered 500 by the transport's boundary. A catalog without its tables says to run the migration."""
    try:
        yield
    except sa_exc.DataError as exc:
        log.warning("the catalog refused a value: %s", exc.orig)
        raise errors.Invalid("A value of this request cannot be stored: it is too long, out of range or holds "
                             "characters the catalog refuses.") from exc
    except (sa_exc.DisconnectionError, sa_exc.TimeoutError) as exc:
        raise errors.Unavailable(unreachable) from exc
    except (sa_exc.OperationalError, sa_exc.InterfaceError) as exc:
        reason = str(exc.orig).lower()
        if "no such table" in reason:
            raise errors.NotConfigured("The catalog has no tables yet: run the migrate Lambda (or set "
                                       "CATALOG_AUTO_MIGRATE=true).") from exc
        if exc.connection_invalidated or not any(phrase in reason for phrase in _PROGRAMMING):
            raise errors.Unavailable(unreachable) from exc
        raise
    except sa_exc.ProgrammingError as exc:
        if _sqlstate(exc.orig) == "42P01":  # PostgreSQL's undefined_table
            raise errors.NotConfigured("The catalog has no tables yet: run the migrate Lambda (or set "
                                       "CATALOG_AUTO_MIGRATE=true).") from exc
        raise


def _sqlstate(error: BaseException | None) -> str:
    """The SQLSTATE of a PostgreSQL error as pg8000 gives it (its fields by one-letter code), else ''."""
    fields = error.args[0] if error is not None and error.args and isinstance(error.args[0], dict) else {}
    return str(fields.get("C", ""))


def _unavailable() -> AbstractContextManager[None]:
    return sql_errors("The catalog database could not be reached.")


class Catalog:
    """Queue placement and registry over one SQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = engine_for(url)

    def migrate(self) -> None:
        """Bring the schema to the newest migration."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        self.engine.dispose()

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa_exc.SQLAlchemyError:
            return False

    # -- pools ------------------------------------------------------------

    def ensure_pool(self, name: str, uri: str, weight: int = 100) -> None:
        """Make the configured pool exist with this URI (the stage's default pool)."""
        with _unavailable():
            try:
                with self.engine.begin() as conn:
                    row = conn.execute(sa.select(pools.c.uri).where(pools.c.name == name)).first()
                    if row is None:
                        conn.execute(pools.insert().values(name=name, uri=uri, weight=weight, options="{}"))
                    elif row.uri != uri:
                        conn.execute(pools.update().where(pools.c.name == name).values(uri=uri))
            except sa_exc.IntegrityError:
                return  # another container inserted it first

    def pool_list(self) -> list[Pool]:
        with _unavailable():
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(pools).order_by(pools.c.name)).all()
        return [Pool(r.name, r.uri, r.weight, r.flavor, json.loads(r.options or "{}")) for r in rows]

    def flavor_exists(self, name: str) -> bool:
        with _unavailable():
            with self.engine.connect() as conn:
                found = conn.execute(sa.select(flavors.c.name).where(flavors.c.name == name)).first()
        return found is not None

    # -- queue registry ---------------------------------------------------

    def lookup(self, *, project: str, queue: str) -> str | None:
        """The pool holding the queue, or None when it is not registered."""
        with _unavailable():
            with self.engine.connect() as conn:
                return conn.execute(
                    sa.select(queues.c.pool).where(queues.c.project == project, queues.c.name == queue)
                ).scalar()

    def register(self, *, project: str, queue: str, pool: str, flavor: str | None = None) -> tuple[str, bool]:
        """Place the queue on ``pool`` unless it is placed already.

        Returns the pool that holds it and whether this call registered it.
        Safe under races: the primary key decides, the loser reads the winner.
        """
        with _unavailable():
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        queues.insert().values(project=project, name=queue, pool=pool, created=int(time.time()),
                                               flavor=flavor)
                    )
                return pool, True
            except sa_exc.IntegrityError:
                existing = self.lookup(project=project, queue=queue)
                if existing is None:
                    raise errors.Unavailable("The queue could not be registered.") from None
                return existing, False

    def unregister(self, *, project: str, queue: str) -> None:
        with _unavailable():
            with self.engine.begin() as conn:
                conn.execute(queues.delete().where(queues.c.project == project, queues.c.name == queue))

    def queue_names(
        self, *, project: str, marker: str | None, limit: int, name: str | None = None
    ) -> list[tuple[str, str]]:
        """(queue, pool) pairs of a project after ``marker``, sorted by name; ``name`` matches a part of names."""
        query = sa.select(queues.c.name, queues.c.pool).where(queues.c.project == project)
        if marker:
            query = query.where(queues.c.name > marker)
        if name:
            query = query.where(queues.c.name.contains(name, autoescape=True))
        query = query.order_by(queues.c.name).limit(limit)
        with _unavailable():
            with self.engine.connect() as conn:
                return [(r.name, r.pool) for r in conn.execute(query)]

    def queue_count(self, *, project: str) -> int:
        query = sa.select(sa.func.count()).select_from(queues).where(queues.c.project == project)
        with _unavailable():
            with self.engine.connect() as conn:
                return int(conn.execute(query).scalar() or 0)

    def all_queues(self, *, after: tuple[str, str] | None, limit: int) -> Sequence[tuple[str, str, str]]:
        """(project, queue, pool) of every queue, for housekeeping, in key order."""
        query = sa.select(queues.c.project, queues.c.name, queues.c.pool)
        if after is not None:
            query = query.where(sa.tuple_(queues.c.project, queues.c.name) > sa.tuple_(*after))
        query = query.order_by(queues.c.project, queues.c.name).limit(limit)
        with _unavailable():
            with self.engine.connect() as conn:
                return [(r.project, r.name, r.pool) for r in conn.execute(query)]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# -- engines ---------------------------------------------------------------

_SSL_MODES = ("disable", "require", "verify-ca", "verify-full")
_PG8000_ARGUMENTS = ("sslmode", "connect_timeout", "timeout", "application_name", "tcp_keepalive")


def engine_for(url: str) -> sa.Engine:
    """The engine of a catalog URL: SQLite files, or PostgreSQL through pg8000 (pure Python, what the Lambda
    package ships; ``postgresql://`` means it too). libpq's ``sslmode`` and ``connect_timeout`` are understood,
    so the URLs people already have keep working."""
    parsed = sa.engine.make_url(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = parsed.database or ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    elif backend == "postgresql":
        if parsed.drivername not in ("postgresql", "postgresql+pg8000"):
            raise ConfigError(f"CATALOG_URL: the {parsed.get_driver_name()} driver is not shipped; use "
                              "postgresql://... or postgresql+pg8000://...")
        parsed, kwargs["connect_args"] = pg8000_arguments(parsed)
    engine = sa.create_engine(parsed, **kwargs)
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    elif backend == "postgresql":
        sa.event.listen(engine, "handle_error", _pg8000_classes)
    return engine


def pg8000_arguments(url: sa.URL) -> tuple[sa.URL, dict[str, Any]]:
    query = {name: (values[-1] if isinstance(values, tuple) else values) for name, values in url.query.items()}
    unknown = sorted(set(query) - set(_PG8000_ARGUMENTS))
    if unknown:
        raise ConfigError(f"CATALOG_URL: unknown connection arguments {', '.join(unknown)} (understood: "
                          f"{', '.join(_PG8000_ARGUMENTS)})")
    args: dict[str, Any] = {}
    mode = query.get("sslmode", "disable")
    if mode not in _SSL_MODES:
        raise ConfigError(f"CATALOG_URL: sslmode must be one of {', '.join(_SSL_MODES)}, not {mode!r}")
    if mode != "disable":
        import ssl

        context = ssl.create_default_context()
        if mode != "verify-full":
            context.check_hostname = False
        if mode == "require":  # libpq's meaning: encrypted, the certificate not checked
            context.verify_mode = ssl.CERT_NONE
        args["ssl_context"] = context
    for name in ("connect_timeout", "timeout", "tcp_keepalive"):
        if name in query:
            try:
                value = int(query[name])
            except ValueError:
                raise ConfigError(f"CATALOG_URL: {name} must be a whole number, not {query[name]!r}") from None
            args["timeout" if name == "connect_timeout" else name] = bool(value) if name == "tcp_keepalive" else value
    if "application_name" in query:
        args["application_name"] = query["application_name"]
    return url.set(drivername="postgresql+pg8000", query={}), args


_PG_UNAVAILABLE = ("08", "40", "53", "55P03", "57")
"""SQLSTATE classes (and one code) of a server that cannot serve now: connection exceptions, transaction
rollbacks (serialization, deadlock), insufficient resources, a lock not available in time, and an operator
intervention (shutdown, a cancelled statement, a statement timeout)."""


def _pg8000_classes(context: sa.engine.ExceptionContext) -> None:
    """pg8000 reports every server error but integrity violations as a ProgrammingError, and a socket error on
    its first read unwrapped: give each error the DBAPI class its SQLSTATE means (psycopg's mapping) and mark
    a lost connection as one, so the pool drops it and :func:`sql_errors` reads the error right."""
    original = context.original_exception
    statement, params = context.statement, context.parameters
    if isinstance(original, OSError):  # reset, broken pipe, a read timing out
        context.is_disconnect = True
        raise sa_exc.OperationalError(statement, params, original, connection_invalidated=True) from original
    code = _sqlstate(original)
    if code.startswith("22"):
        raise sa_exc.DataError(statement, params, original) from original
    if code.startswith(_PG_UNAVAILABLE):
        if code.startswith(("08", "57P0")):  # the connection is gone: the pool must not hand it out again
            context.is_disconnect = True
        raise sa_exc.OperationalError(statement, params, original,
                                      connection_invalidated=context.is_disconnect) from original
