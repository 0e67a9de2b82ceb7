"""GET /v2/health: every pool probed operation by operation, on a scratch queue that leaves nothing behind."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib import errors
from chalicelib.api import health
from chalicelib.api.context import Services
from chalicelib.config import Settings
from chalicelib.storage.base import MessageStore
from chalicelib.storage.inventory import Inventory
from chalicelib.storage.pools import Pool
from chalicelib.storage.redis import keys
from tests.conftest import _delete_project_keys, kind_settings
from tests.functional.conftest import Api

ADMIN = {"X-Roles": "admin"}


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, pool_url: str) -> Settings:
    """The suite's settings (each kind of default pool) in admin mode."""
    return kind_settings(tmp_path, redis_url, pool_url, ADMIN_MODE="true", CATALOG_CACHE_TTL="0")


@pytest.fixture
def admin(chalice_client: Client, project: str) -> Api:
    return Api(chalice_client, project)


@pytest.fixture(autouse=True)
def _no_probe_keys_kept(redis_url: str) -> Iterator[None]:
    """No probe keys before a test (what a killed run left would read as this test's leftovers), and none kept
    after it even when it fails (only probes use this project)."""
    _delete_project_keys(redis_url, health.PROBE_PROJECT)
    yield
    _delete_project_keys(redis_url, health.PROBE_PROJECT)


def _probe_leftovers(store: MessageStore) -> list[str]:
    """Whatever the probe's project holds in the pool: keys (Redis) or documents (MongoDB)."""
    from chalicelib.storage.mongodb.driver import MongoStore
    from chalicelib.storage.redis.driver import RedisStore

    if isinstance(store, RedisStore):
        client = store._client
        found = [str(key) for key in client.scan_iter(match=keys.PREFIX + ":{/*", count=500)]
        found += [str(m) for m in client.zrange(keys.OUTBOXES, 0, -1) if str(m).startswith("/")]
        return found
    assert isinstance(store, MongoStore)
    found = []
    for collection in (store._queues, store._heads, store._batches, store._outbox):
        found += [repr(d["_id"]) for d in collection.find({"p": health.PROBE_PROJECT})]
    return found


def test_health_probes_every_operation_on_each_pool(admin: Api, services: Services) -> None:
    reply = admin.get("/v2/health", headers=ADMIN)
    assert reply.status == 200, reply.raw
    report = reply.json
    assert report["catalog_reachable"] is True
    pool = report["default"]
    assert pool["storage_reachable"] is True
    status = pool["operation_status"]
    assert set(status) == set(health.OPERATIONS)
    for operation, outcome in status.items():
        assert set(outcome) == {"seconds", "ref", "succeeded"}, operation
        assert outcome["succeeded"] is True and outcome["ref"] is None, (operation, outcome)
        assert isinstance(outcome["seconds"], float) and outcome["seconds"] >= 0  # no bound: a loaded machine
    assert _probe_leftovers(services.pooling.store("default")) == []


def test_the_probe_never_shows_in_the_users_view(admin: Api) -> None:
    admin.put("/v2/queues/mine")
    assert admin.get("/v2/health", headers=ADMIN).status == 200
    assert [q["name"] for q in admin.get("/v2/queues").json["queues"]] == ["mine"]
    assert admin.get("/v2/queues/mine/stats").json["messages"]["total"] == 0


def test_health_stays_admin_only(admin: Api) -> None:
    reply = admin.get("/v2/health")
    assert reply.status == 403
    assert set(reply.json) == {"title", "description"}


class Failing:
    """A pool store whose chosen operations raise (``times`` each), delegating everything else."""

    def __init__(self, store: MessageStore, failures: dict[str, int], error: Callable[[], Exception]) -> None:
        self._store = store
        self._failures = dict(failures)
        self._error = error
        self.queues: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            if "queue" in kwargs:
                self.queues.add(kwargs["queue"])
            if self._failures.get(name, 0) > 0:
                self._failures[name] -= 1
                raise self._error()
            return target(*args, **kwargs)

        return call


def _probe(store: Any) -> dict[str, dict[str, Any]]:
    return health.operation_status(store, pool="default")


@pytest.mark.parametrize(
    ("failing", "reported", "missing"),
    [
        ("queue_create", {"create_queue": False}, set(health.OPERATIONS) - {"create_queue"}),
        ("message_post", {"post_messages": False},
         {"claim_messages", "list_messages", "delete_messages", "delete_claim", "bulk_delete_messages"}),
        ("claim_create", {"claim_messages": False, "list_messages": True, "bulk_delete_messages": True},
         {"delete_messages", "delete_claim"}),
        ("message_delete", {"delete_messages": False, "delete_claim": True, "bulk_delete_messages": True}, set()),
        ("message_list", {"list_messages": False, "delete_messages": True}, set()),
        ("claim_delete", {"delete_claim": False, "delete_queue": True}, set()),
        ("message_delete_many", {"bulk_delete_messages": False, "delete_queue": True}, set()),
    ],
)
@pytest.mark.parametrize("error", [lambda: errors.Unavailable("The message pool is down."),
                                   lambda: RuntimeError("a driver bug")], ids=["unavailable", "bug"])
def test_a_failed_step_is_reported_and_the_scratch_queue_still_goes(
    services: Services, failing: str, reported: dict[str, bool], missing: set[str], error: Callable[[], Exception],
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = services.pooling.store("default")
    store = Failing(real, {failing: 1}, error)
    with caplog.at_level(logging.ERROR, logger="chalicelib.api.health"):
        status = _probe(store)
    for operation, succeeded in reported.items():
        assert status[operation]["succeeded"] is succeeded, (operation, status)
    assert not missing & set(status)
    failed = [s for s in status.values() if not s["succeeded"]]
    assert len(failed) == 1 and isinstance(failed[0]["ref"], str)
    assert failed[0]["ref"] in caplog.text  # the ref leads to the logged exception
    assert len(store.queues) == 1 and next(iter(store.queues)).startswith(health.PROBE_QUEUE_PREFIX)
    assert _probe_leftovers(real) == []


def test_a_failed_cleanup_is_retried_and_reported(services: Services) -> None:
    real = services.pooling.store("default")
    status = _probe(Failing(real, {"queue_delete": 1}, lambda: errors.Unavailable("The pool blinked.")))
    assert status["delete_queue"]["succeeded"] is False and status["delete_queue"]["ref"]
    assert _probe_leftovers(real) == []


def test_a_cleanup_that_keeps_failing_is_logged_with_the_queue(services: Services,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    real = services.pooling.store("default")
    store = Failing(real, {"queue_delete": 2}, lambda: errors.Unavailable("The pool is gone."))
    with caplog.at_level(logging.ERROR, logger="chalicelib.api.health"):
        status = _probe(store)
    assert status["delete_queue"]["succeeded"] is False
    (queue,) = store.queues
    assert queue in caplog.text
    real.queue_delete(project=health.PROBE_PROJECT, queue=queue)
    assert _probe_leftovers(real) == []


def _add_pool(services: Services, name: str, uri: str) -> None:
    """Register a pool straight in the catalog (the admin API would refuse these), opened by its real driver."""
    from chalicelib.storage.pooling import open_store

    opener = services.pooling._open
    services.pooling._open = lambda u: open_store(u) if u == uri else opener(u)
    Inventory(services.pooling.catalog).pool_create(Pool(name, uri, 0, None, {}))
    services.pooling.refresh()


def test_a_pool_that_does_not_answer_is_reported_without_probing(admin: Api, services: Services) -> None:
    _add_pool(services, "gone", "redis://127.0.0.1:1/0")
    report = admin.get("/v2/health", headers=ADMIN).json
    assert report["gone"]["storage_reachable"] is False and report["gone"]["operation_status"] == {}
    assert report["default"]["operation_status"]["delete_queue"]["succeeded"] is True


def test_a_pool_that_cannot_be_opened_is_unreachable_not_a_500(admin: Api, services: Services) -> None:
    _add_pool(services, "odd", "ftp://127.0.0.1/x")
    reply = admin.get("/v2/health", headers=ADMIN)
    assert reply.status == 200
    assert reply.json["odd"] == {"storage_reachable": False, "operation_status": {}, "weight": 0, "flavor": None}


def test_the_probe_keeps_to_one_slot_on_redis_cluster(redis_cluster_url: str) -> None:
    from chalicelib.storage.redis.driver import RedisStore

    store = RedisStore(redis_cluster_url)
    try:
        status = health.operation_status(store, pool="cluster")
        assert all(outcome["succeeded"] for outcome in status.values()), status
        assert set(status) == set(health.OPERATIONS)
        assert _probe_leftovers(store) == []
    finally:
        store.close()
