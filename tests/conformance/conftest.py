"""Servers the conformance suites share: a scratch Redis of their own (each
stack and upstream's in-process bootstrap in a database of it, nothing shared
with the other tests) and a Keystone whose tokens live an hour."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local.embedded_redis import EmbeddedRedis
from tests import keystone_server
from tests.conformance.harness import IN_CI
from tests.keystone_server import Keystone

# tempest reuses one token for a whole test class: it must outlive the slowest class on a loaded machine
TEMPEST_TOKEN_SECONDS = keystone_server.TOKEN_SECONDS


@pytest.fixture(scope="session")
def conformance_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A Redis server of the conformance suites' own, on a free port, gone afterwards."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("conformance-redis"), persistent=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def tempest_keystone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    """A second real Keystone (tests/keystone_server.py): tempest's projects, users and catalog are its own."""
    if not keystone_server.available():
        if IN_CI:
            pytest.fail("the Keystone virtualenv (.venv-keystone) is missing: make test creates it")
        pytest.skip("no .venv-keystone: run make test (it installs keystone==30.0.0) to run these")
    server = keystone_server.start(tmp_path_factory.mktemp("tempest-keystone"), token_seconds=TEMPEST_TOKEN_SECONDS)
    try:
        yield server
    finally:
        server.stop()

