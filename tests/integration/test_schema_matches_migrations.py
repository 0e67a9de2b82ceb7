"""The tables the code declares are the tables the migrations make: Alembic's autogenerate comparison of a
freshly migrated catalog (SQLite and PostgreSQL) against the code's metadata finds nothing to change."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import chalicelib.storage.subscriptions  # noqa: F401 - its table is declared on the catalog's metadata
from chalicelib.storage.catalog import Catalog, metadata


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def migrated(request: pytest.FixtureRequest, tmp_path: Path) -> Catalog:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    catalog = Catalog(url)
    catalog.migrate()
    request.addfinalizer(catalog.close)
    return catalog


def test_the_migrations_make_the_declared_tables(migrated: Catalog) -> None:
    with migrated.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert differences == []
    assert {"pools", "flavors", "queues", "subscriptions"} <= set(metadata.tables)
