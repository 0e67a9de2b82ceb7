"""GET /v2/: the JSON-Home document lists upstream's relations, and each one is a route of ours."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import app as app_module
from chalicelib.config import Settings
from tests.conftest import make_settings
from tests.functional.conftest import Api

# Upstream Zaqar 23.0.1, zaqar/transport/wsgi/v2_0/homedoc.py: (relation, href-template or href, allow).
UPSTREAM = [
    ("rel/queues", "/v2/queues{?marker,limit,detailed}", ["GET"]),
    ("rel/queue", "/v2/queues/{queue_name}", ["GET", "PUT", "DELETE", "PATCH"]),
    ("rel/queue_stats", "/v2/queues/{queue_name}/stats", ["GET"]),
    ("rel/queue_share", "/v2/queues/{queue_name}/share", ["POST"]),
    ("rel/queue_purge", "/v2/queues/{queue_name}/purge", ["POST"]),
    ("rel/messages", "/v2/queues/{queue_name}/messages{?marker,limit,echo,include_claimed}", ["GET"]),
    ("rel/post_messages", "/v2/queues/{queue_name}/messages", ["POST"]),
    ("rel/messages_delete", "/v2/queues/{queue_name}/messages{?ids,pop}", ["DELETE"]),
    ("rel/message_delete", "/v2/queues/{queue_name}/messages/{message_id}{?claim}", ["DELETE"]),
    ("rel/message_get", "/v2/queues/{queue_name}/messages/{message_id}", ["GET"]),
    ("rel/claim", "/v2/queues/{queue_name}/claims/{claim_id}", ["GET"]),
    ("rel/post_claim", "/v2/queues/{queue_name}/claims{?limit}", ["POST"]),
    ("rel/patch_claim", "/v2/queues/{queue_name}/claims/{claim_id}", ["PATCH"]),
    ("rel/delete_claim", "/v2/queues/{queue_name}/claims/{claim_id}", ["DELETE"]),
    ("rel/subscriptions_get", "/v2/queues/{queue_name}/subscriptions{?marker,limit}", ["GET"]),
    ("rel/subscriptions_post", "/v2/queues/{queue_name}/subscriptions", ["POST"]),
    ("rel/subscription", "/v2/queues/{queue_name}/subscriptions/{subscriptions_id}", ["GET", "DELETE"]),
    ("rel/subscription_patch", "/v2/queues/{queue_name}/subscriptions/{subscriptions_id}", ["PATCH"]),
    ("rel/ping", "/v2/ping", ["GET"]),
]
UPSTREAM_ADMIN = [
    ("rel/pools", "/v2/pools{?detailed,limit,marker}", ["GET"]),
    ("rel/pool", "/v2/pools/{pool_name}", ["GET", "PUT", "PATCH", "DELETE"]),
    ("rel/flavors", "/v2/flavors{?detailed,limit,marker}", ["GET"]),
    ("rel/flavor", "/v2/flavors/{flavor_name}", ["GET", "PUT", "PATCH", "DELETE"]),
    ("rel/health", "/v2/health", ["GET"]),
]
# Ours only: one relation per path over the same routes.
OURS = [
    ("rel/message", "/v2/queues/{queue_name}/messages/{message_id}{?claim_id}", ["GET", "DELETE"]),
    ("rel/claim_manage", "/v2/queues/{queue_name}/claims/{claim_id}", ["GET", "PATCH", "DELETE"]),
]
# Upstream's accept-post hints, and its href-vars where they are not param/<name> of the template's names.
ACCEPTS_POST = {"rel/queue_share", "rel/queue_purge", "rel/post_messages", "rel/post_claim", "rel/patch_claim",
                "rel/subscriptions_post", "rel/subscription_patch"}
VARS = {
    "rel/message_delete": {"queue_name": "param/queue_name", "message_id": "param/message_id",
                           "claim": "param/claim_id"},
    "rel/subscriptions_post": {"queue_name": "param/queue_name", "limit": "param/subscription_limit"},
    "rel/messages": {"queue_name": "param/queue_name", "marker": "param/marker", "limit": "param/messages_limit",
                     "echo": "param/echo", "include_claimed": "param/include_claimed"},
    "rel/queues": {"marker": "param/marker", "limit": "param/queue_limit", "detailed": "param/detailed"},
    "rel/pools": {"detailed": "param/detailed", "limit": "param/pool_limit", "marker": "param/marker"},
    "rel/flavors": {"detailed": "param/detailed", "limit": "param/flavor_limit", "marker": "param/marker"},
    "rel/post_claim": {"queue_name": "param/queue_name", "limit": "param/claim_limit"},
    "rel/subscriptions_get": {"queue_name": "param/queue_name", "marker": "param/marker",
                              "limit": "param/subscription_limit"},
}
"""Elsewhere each variable of the template is ``param/<its name>``."""


@pytest.fixture(params=[False, True], ids=["public", "admin-mode"])
def admin_mode(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, admin_mode: bool) -> Settings:
    return make_settings(tmp_path, redis_url, ADMIN_MODE=str(admin_mode).lower())


@pytest.fixture
def pool_kind() -> str:
    return "redis"  # the document does not depend on the pool


def _link(resource: dict[str, object]) -> str:
    return str(resource.get("href-template", resource.get("href")))


def test_home_lists_upstreams_relations(api: Api, admin_mode: bool) -> None:
    reply = api.get("/v2")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json-home"
    assert reply.headers["cache-control"] == "max-age=86400"
    resources = reply.json["resources"]
    expected = UPSTREAM + OURS + (UPSTREAM_ADMIN if admin_mode else [])
    assert sorted(resources) == sorted(rel for rel, _, _ in expected)
    for rel, link, allow in expected:
        resource = resources[rel]
        assert _link(resource) == link, rel
        assert resource["hints"]["allow"] == allow, rel
        assert resource["hints"]["formats"] == {"application/json": {}}, rel
        assert ("accept-post" in resource["hints"]) == (rel in ACCEPTS_POST), rel
        if rel in ACCEPTS_POST:
            assert resource["hints"]["accept-post"] == ["application/json"]
    assert "href-vars" not in resources["rel/ping"]
    if admin_mode:
        assert set(resources["rel/health"]) == {"href", "hints"}


def test_href_vars_name_the_templates_variables(api: Api) -> None:
    for rel, resource in api.get("/v2").json["resources"].items():
        if "href-vars" not in resource:
            continue
        expected = VARS.get(rel)
        if expected is None:
            names = re.findall(r"[{,?]([a-z_]+)", resource["href-template"])
            assert resource["href-vars"] == {name: f"param/{name}" for name in names}, rel
        else:
            assert resource["href-vars"] == expected, rel


def test_every_relation_is_a_route(api: Api) -> None:
    routes = {re.sub(r"\{[a-z_]+\}", "{}", path): set(methods) for path, methods in app_module.app.routes.items()}
    for rel, resource in api.get("/v2").json["resources"].items():
        path = re.sub(r"\{[a-z_]+\}", "{}", re.sub(r"\{\?[^}]*\}", "", _link(resource)))
        assert path in routes, rel
        assert set(resource["hints"]["allow"]) <= routes[path], rel


def test_the_document_cannot_be_changed_by_a_caller(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    import copy

    from chalicelib.transport import home

    # on a copy of the module's tables: when the document is shared, the change must not outlive this test
    monkeypatch.setattr(home, "RESOURCES", copy.deepcopy(home.RESOURCES))
    home.document(admin=True)["resources"]["rel/queue"]["hints"]["allow"].append("TRACE")
    assert "TRACE" not in api.get("/v2").json["resources"]["rel/queue"]["hints"]["allow"]
