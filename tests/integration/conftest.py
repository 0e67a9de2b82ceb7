"""Catalog fixtures: the same tests on a SQLite file and on the running PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.storage.catalog import Catalog


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    built = Catalog(url)
    built.migrate()
    built.ensure_pool("default", "redis://127.0.0.1:6379/13")
    yield built
    built.close()
