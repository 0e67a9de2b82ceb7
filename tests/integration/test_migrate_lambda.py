"""The migrate Lambda brings a fresh catalog up by itself, as a first deploy needs: the prod stage sets
CATALOG_AUTO_MIGRATE=false, so nothing else creates the tables."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib import errors, runtime
from chalicelib.config import get_settings
from chalicelib.storage.catalog import Catalog


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_catalog(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))  # a database of the test's own, empty


@pytest.fixture
def prod_like(fresh_catalog: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    for name, value in {"CATALOG_URL": fresh_catalog, "CATALOG_AUTO_MIGRATE": "false", "POOL_URL": redis_url,
                        "DATA_DIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()  # read once per container: this test is a new one
    runtime.install(None)
    yield fresh_catalog
    runtime.install(None)
    get_settings.cache_clear()


def test_the_migrate_lambda_brings_up_a_fresh_catalog_without_auto_migrate(prod_like: str) -> None:
    with pytest.raises(errors.NotConfigured, match="run the migrate Lambda"):  # every request's answer before
        runtime.build(get_settings())
    import app

    assert app.migrate({}, None) == {"catalog": "migrated"}
    assert app.migrate({}, None) == {"catalog": "migrated"}  # and again: a redeploy runs it once more
    built = runtime.build(get_settings())  # the service starts on the migrated catalog
    try:
        assert [pool.name for pool in built.pooling.catalog.pool_list()] == ["default"]
    finally:
        built.pooling.close()
    catalog = Catalog(prod_like)
    try:
        assert catalog.lookup(project="p", queue="q") is None  # the tables are there, and empty
    finally:
        catalog.close()
