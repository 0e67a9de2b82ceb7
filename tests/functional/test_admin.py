"""Pools, flavors and placement through the admin API (admin mode, role admin)."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import runtime
from chalicelib.api.context import Services
from tests.conftest import _delete_project_keys, installed, make_settings
from tests.functional.conftest import Api

ADMIN = {"X-Roles": "admin"}


def _db(url: str, number: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{number}"))


@pytest.fixture
def admin_services(tmp_path: Path, redis_url: str, project: str) -> Iterator[Services]:
    settings = make_settings(tmp_path, redis_url, ADMIN_MODE="true", CATALOG_CACHE_TTL="0")
    with installed(runtime.build(settings)) as services:
        yield services
    for number in (11, 12):
        _delete_project_keys(_db(redis_url, number), project)


@pytest.fixture
def api(admin_services: Services, project: str) -> Iterator[Api]:
    with Client(app_module.app) as client:
        yield Api(client, project)


@pytest.fixture
def pool_urls(redis_url: str) -> tuple[str, str]:
    return _db(redis_url, 11), _db(redis_url, 12)


def test_admin_endpoints_need_admin_mode_and_the_admin_role(services: Services, project: str) -> None:
    with Client(app_module.app) as client:
        api = Api(client, project)
        assert api.get("/v2/pools", headers=ADMIN).status == 404
        assert api.get("/v2/flavors", headers=ADMIN).status == 404


def test_non_admins_are_refused(api: Api) -> None:
    assert api.get("/v2/pools").status == 403
    assert api.put("/v2/pools/p1", {"weight": 1, "uri": "redis://127.0.0.1:6379/11"}).status == 403
    assert api.get("/v2/flavors").status == 200  # reading flavors is open, as upstream


def test_pool_lifecycle(api: Api, pool_urls: tuple[str, str]) -> None:
    first, _second = pool_urls
    uri = first + "?socket_timeout=3&unused_by_redis=kept"
    reply = api.put("/v2/pools/p1", {"weight": 10, "uri": uri, "options": {"note": "x"}}, headers=ADMIN)
    assert (reply.status, reply.headers["location"]) == (201, "/v2/pools/p1")
    assert api.put("/v2/pools/p1", {"weight": 10, "uri": first}, headers=ADMIN).status == 409
    got = api.get("/v2/pools/p1?detailed=true", headers=ADMIN).json
    assert got == {"name": "p1", "href": "/v2/pools/p1", "weight": 10, "uri": uri, "flavor": None,
                   "options": {"note": "x"}}
    listed = api.get("/v2/pools?limit=1", headers=ADMIN).json
    assert [p["name"] for p in listed["pools"]] == ["default"]
    assert [p["name"] for p in api.get(listed["links"][0]["href"], headers=ADMIN).json["pools"]] == ["p1"]
    patched = api.patch("/v2/pools/p1", {"weight": 5}, headers=ADMIN)
    assert patched.status == 200 and patched.json["weight"] == 5
    assert api.delete("/v2/pools/p1", headers=ADMIN).status == 204
    assert api.get("/v2/pools/p1", headers=ADMIN).status == 404


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"uri": "redis://127.0.0.1:6379/11"}, ["weight"]),
        ({"weight": 1}, ["uri"]),
        ({"weight": -1, "uri": "redis://127.0.0.1:6379/11"}, ["weight"]),
        ({"weight": 1, "uri": "redis://127.0.0.1:1/0"}, ["cannot connect"]),
        ({"weight": 1, "uri": "ftp://127.0.0.1/x"}, ["scheme"]),
        ({"weight": 1, "uri": "redis://127.0.0.1:6379/11", "group": "x"}, ["group"]),
        ({"weight": 1, "uri": "redis://127.0.0.1:6379/11", "flavor": "nope"}, ["flavor"]),
    ],
)
def test_bad_pools_are_400_and_not_registered(api: Api, body: dict[str, object], words: list[str]) -> None:
    reply = api.put("/v2/pools/bad", body, headers=ADMIN)
    assert reply.status == 400, reply.raw
    for word in words:
        assert word in reply.json["description"].lower()
    assert api.get("/v2/pools/bad", headers=ADMIN).status == 404


def test_flavors_pin_queues_to_their_pools(api: Api, pool_urls: tuple[str, str], admin_services: Services) -> None:
    first, second = pool_urls
    api.put("/v2/pools/gold-1", {"weight": 1, "uri": first}, headers=ADMIN)
    api.put("/v2/pools/silver-1", {"weight": 1, "uri": second}, headers=ADMIN)
    assert api.put("/v2/flavors/gold", {"pool_list": ["gold-1"], "capabilities": {}}, headers=ADMIN).status == 201
    flavor = api.get("/v2/flavors/gold").json
    assert flavor["pool_list"] == ["gold-1"] and "CLAIMS" in flavor["capabilities"]
    for i in range(6):
        assert api.put(f"/v2/queues/g{i}", {"_flavor": "gold"}).status == 201
        api.post_messages(f"g{i}", i)
    catalog = admin_services.pooling.catalog
    assert {catalog.lookup(project=api.project, queue=f"g{i}") for i in range(6)} == {"gold-1"}
    assert api.get("/v2/queues/g3/messages?echo=true").json["messages"][0]["body"] == 3
    assert api.delete("/v2/pools/gold-1", headers=ADMIN).status == 403  # the flavor's last pool (as upstream)
    assert api.delete("/v2/flavors/gold", headers=ADMIN).status == 409  # queues use it
    assert api.patch("/v2/pools/default", {"weight": 0}, headers=ADMIN).status == 200
    assert api.put("/v2/queues/on-silver").status == 201
    assert catalog.lookup(project=api.project, queue="on-silver") == "silver-1"
    held = api.delete("/v2/pools/silver-1", headers=ADMIN)
    assert held.status == 409 and "holds 1 queue" in held.json["description"]  # it holds a queue
    assert api.put("/v2/queues/x", {"_flavor": "platinum"}).status == 400


def test_new_queues_spread_over_pools_by_weight(api: Api, pool_urls: tuple[str, str], admin_services: Services) -> None:
    first, second = pool_urls
    api.put("/v2/pools/heavy", {"weight": 300, "uri": first}, headers=ADMIN)
    api.put("/v2/pools/light", {"weight": 100, "uri": second}, headers=ADMIN)
    api.patch("/v2/pools/default", {"weight": 0}, headers=ADMIN)
    for i in range(120):
        api.post_messages(f"spread{i}", i)
    catalog = admin_services.pooling.catalog
    counts = collections.Counter(catalog.lookup(project=api.project, queue=f"spread{i}") for i in range(120))
    assert set(counts) == {"heavy", "light"}
    assert counts["heavy"] > counts["light"] * 1.5
    for i in (0, 57, 119):
        assert api.get(f"/v2/queues/spread{i}/messages?echo=true").json["messages"][0]["body"] == i
    listed = {q["name"] for q in api.get("/v2/queues?limit=20").json["queues"]}
    assert len(listed) == 20  # listing spans the pools


def test_health_reports_every_pool(api: Api, pool_urls: tuple[str, str]) -> None:
    api.put("/v2/pools/extra", {"weight": 1, "uri": pool_urls[0]}, headers=ADMIN)
    report = api.get("/v2/health", headers=ADMIN).json
    assert report["catalog_reachable"] is True
    assert report["default"]["storage_reachable"] is True and report["extra"]["storage_reachable"] is True


def test_queues_spread_over_redis_and_mongodb_pools(api: Api, pool_urls: tuple[str, str],
                                                    admin_services: Services) -> None:
    import mongomock

    from chalicelib.storage.inventory import Inventory
    from chalicelib.storage.mongodb.driver import MongoStore
    from chalicelib.storage.pooling import open_store
    from chalicelib.storage.pools import Pool

    client = mongomock.MongoClient()
    mongo_uri = "mongodb://mongomock.invalid/zaqar_placement?unreliable=true"
    admin_services.pooling._open = lambda uri: (
        MongoStore(client=client, database="zaqar_placement", unreliable=True) if uri == mongo_uri else open_store(uri))
    Inventory(admin_services.pooling.catalog).pool_create(Pool("mongo", mongo_uri, 100, None, {}))
    api.put("/v2/pools/redis-a", {"weight": 100, "uri": pool_urls[0]}, headers=ADMIN)
    api.put("/v2/pools/redis-b", {"weight": 100, "uri": pool_urls[1]}, headers=ADMIN)
    api.patch("/v2/pools/default", {"weight": 0}, headers=ADMIN)
    for i in range(90):
        api.post_messages(f"mix{i}", {"n": i})
    catalog = admin_services.pooling.catalog
    counts = collections.Counter(catalog.lookup(project=api.project, queue=f"mix{i}") for i in range(90))
    assert set(counts) == {"mongo", "redis-a", "redis-b"} and min(counts.values()) >= 10
    on_mongo = next(i for i in range(90) if catalog.lookup(project=api.project, queue=f"mix{i}") == "mongo")
    claim = api.post(f"/v2/queues/mix{on_mongo}/claims").json["messages"]
    assert [m["body"] for m in claim] == [{"n": on_mongo}]


def test_a_flavors_last_pool_cannot_be_deleted(api: Api, pool_urls: tuple[str, str]) -> None:
    first, second = pool_urls
    api.put("/v2/pools/bronze-1", {"weight": 1, "uri": first}, headers=ADMIN)
    api.put("/v2/pools/bronze-2", {"weight": 1, "uri": second}, headers=ADMIN)
    assert api.put("/v2/flavors/bronze", {"pool_list": ["bronze-1", "bronze-2"]}, headers=ADMIN).status == 201
    assert api.delete("/v2/pools/bronze-2", headers=ADMIN).status == 204  # the flavor keeps bronze-1
    refused = api.delete("/v2/pools/bronze-1", headers=ADMIN)
    assert refused.status == 403, refused.raw
    assert refused.json["title"] == "Unable to delete"
    assert "bronze-1" in refused.json["description"] and "flavor bronze" in refused.json["description"]
    assert api.get("/v2/pools/bronze-1", headers=ADMIN).json["flavor"] == "bronze"  # nothing deleted
    assert api.get("/v2/flavors/bronze").json["pool_list"] == ["bronze-1"]
    assert api.delete("/v2/flavors/bronze", headers=ADMIN).status == 204
    assert api.delete("/v2/pools/bronze-1", headers=ADMIN).status == 204
    assert api.get("/v2/pools/bronze-1", headers=ADMIN).status == 404
