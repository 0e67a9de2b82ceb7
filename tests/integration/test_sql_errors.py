"""One error boundary for catalog statements (chalicelib.storage.catalog.sql_errors): a database that does not
answer is a 503, a catalog without tables says to migrate it, and a bug stays a bug (a logged 500), on
SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from chalicelib import errors
from chalicelib.config import ConfigError
from chalicelib.storage.catalog import Catalog, pg8000_arguments, sql_errors
from infra.local.processes import free_port


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


def test_a_database_that_does_not_answer_is_a_503() -> None:
    catalog = Catalog(f"postgresql+pg8000://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=2")
    try:
        with pytest.raises(errors.Unavailable, match="could not be reached"):
            catalog.pool_list()
    finally:
        catalog.close()


def test_a_catalog_without_its_tables_says_to_run_the_migration(catalog_url: str) -> None:
    catalog = Catalog(catalog_url)
    try:
        with pytest.raises(errors.NotConfigured, match="run the migrate Lambda"):
            catalog.pool_list()
    finally:
        catalog.close()


def test_a_wrong_statement_is_a_bug_not_an_outage(catalog_url: str) -> None:
    catalog = Catalog(catalog_url)
    try:
        catalog.migrate()
        with pytest.raises((sa_exc.OperationalError, sa_exc.ProgrammingError)) as raised, \
                sql_errors("The catalog database could not be reached."), catalog.engine.connect() as conn:
            conn.execute(sa.text("SELECT no_such_column FROM pools"))
        assert not isinstance(raised.value, errors.ServiceError)  # the transport logs it and answers 500
    finally:
        catalog.close()


@pytest.mark.postgres
def test_postgres_refusing_a_value_is_the_requests_400(postgres_url: str) -> None:
    """pg8000 calls every server error a ProgrammingError; the catalog's engine gives SQLSTATE class 22 (a value
    too long, out of range, a NUL) its DataError, which the boundary answers 400."""
    catalog = Catalog(postgres_url)
    try:
        catalog.migrate()
        with pytest.raises(errors.Invalid, match="cannot be stored"):
            catalog.register(project="p", queue="q" * 65, pool="default")  # the column holds 64
        with pytest.raises(errors.Invalid, match="cannot be stored"):
            catalog.register(project="p\x00", queue="q", pool="default")
        assert catalog.lookup(project="p", queue="q" * 64) is None
    finally:
        catalog.close()


@pytest.mark.postgres
def test_postgres_statement_timeout_is_a_503_and_a_killed_connection_is_replaced(postgres_url: str) -> None:
    catalog = Catalog(postgres_url)
    try:
        catalog.migrate()
        with pytest.raises(errors.Unavailable), sql_errors("The catalog database could not be reached."), \
                catalog.engine.connect() as conn:
            conn.execute(sa.text("SET statement_timeout = 50"))
            conn.execute(sa.text("SELECT pg_sleep(2)"))

        with catalog.engine.connect() as conn:  # the server ends this session: the pool must not keep it
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            with catalog.engine.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(errors.Unavailable), sql_errors("The catalog database could not be reached."):
                conn.execute(sa.text("SELECT 1"))
            assert conn.invalidated
        assert catalog.pool_list() == []  # a fresh connection serves the next request
    finally:
        catalog.close()


@pytest.mark.parametrize(("url", "refusal"), [
    ("postgresql+psycopg://u@h/db", "psycopg driver is not shipped"),
    ("postgresql://u@h/db?sslmode=prefer", "sslmode must be one of"),
    ("postgresql://u@h/db?connect_timeout=soon", "connect_timeout must be a whole number"),
    ("postgresql://u@h/db?options=-c%20x", "unknown connection arguments options"),
])
def test_catalog_urls_pg8000_cannot_honour_are_refused_at_start(url: str, refusal: str) -> None:
    with pytest.raises(ConfigError, match=refusal):
        Catalog(url)


def test_libpq_url_arguments_become_pg8000_ones() -> None:
    import ssl

    url, args = pg8000_arguments(sa.engine.make_url(
        "postgresql://u:p@h:5433/db?sslmode=verify-full&connect_timeout=4&application_name=zq"))
    assert url.render_as_string(hide_password=False) == "postgresql+pg8000://u:p@h:5433/db"
    assert args["timeout"] == 4 and args["application_name"] == "zq"
    assert args["ssl_context"].check_hostname and args["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    _, args = pg8000_arguments(sa.engine.make_url("postgresql://u@h/db?sslmode=require"))
    assert not args["ssl_context"].check_hostname and args["ssl_context"].verify_mode == ssl.CERT_NONE
    _, args = pg8000_arguments(sa.engine.make_url("postgresql://u@h/db?sslmode=verify-ca"))
    assert not args["ssl_context"].check_hostname and args["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    assert pg8000_arguments(sa.engine.make_url("postgresql://u@h/db"))[1] == {}
