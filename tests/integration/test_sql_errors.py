"""One error boundary for catalog statements (chalicelib.storage.catalog.sql_errors): a database that does not
answer is a 503, a catalog without tables says to migrate it, and a bug stays a bug (a logged 500), on
SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from chalicelib import errors
from chalicelib.storage.catalog import Catalog, sql_errors
from infra.local.processes import free_port


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


def test_a_database_that_does_not_answer_is_a_503() -> None:
    catalog = Catalog(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=2")
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
