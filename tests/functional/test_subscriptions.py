"""Subscription endpoints (delivery is the notifier's, tested with it)."""

from __future__ import annotations

import pytest

from chalicelib.api.context import Services
from chalicelib.events.model import RecordingSink
from tests.functional.conftest import Api


def subscribe(api: Api, queue: str, subscriber: str, **fields: object) -> str:
    reply = api.post(f"/v2/queues/{queue}/subscriptions", {"subscriber": subscriber, **fields})
    assert reply.status == 201, reply.raw
    assert reply.headers["location"] == f"/v2/queues/{queue}/subscriptions"
    return str(reply.json["subscription_id"])


def test_create_get_and_list(api: Api) -> None:
    sid = subscribe(api, "q1", "http://example.test/hook", ttl=600, options={"post_headers": {"X-A": "1"}})
    got = api.get(f"/v2/queues/q1/subscriptions/{sid}").json
    assert got == {"id": sid, "source": "q1", "subscriber": "http://example.test/hook", "ttl": 600,
                   "age": got["age"], "options": {"post_headers": {"X-A": "1"}}, "confirmed": False}
    listed = api.get("/v2/queues/q1/subscriptions").json
    assert [s["id"] for s in listed["subscriptions"]] == [sid]
    # the queue was created lazily (a GET alone cannot tell: a missing queue reads as an empty one)
    assert [q["name"] for q in api.get("/v2/queues").json["queues"]] == ["q1"]


def test_list_pages_oldest_first(api: Api) -> None:
    ids = [subscribe(api, "q1", f"mailto:user{i}@example.test") for i in range(5)]
    first = api.get("/v2/queues/q1/subscriptions?limit=3").json
    assert [s["id"] for s in first["subscriptions"]] == ids[:3]
    second = api.get(first["links"][0]["href"]).json
    assert [s["id"] for s in second["subscriptions"]] == ids[3:]
    assert api.get(second["links"][0]["href"]).json == {"subscriptions": [], "links": []}


def test_same_subscriber_again_is_the_same_subscription_until_confirmed_then_409(api: Api) -> None:
    sid = subscribe(api, "q1", "http://example.test/hook")
    # unconfirmed: the same subscription again, as upstream answers (tempest relies on it)
    assert subscribe(api, "q1", "http://example.test/hook", ttl=999) == sid
    assert [s["id"] for s in api.get("/v2/queues/q1/subscriptions").json["subscriptions"]] == [sid]
    assert api.get(f"/v2/queues/q1/subscriptions/{sid}").json["ttl"] != 999  # nothing changed
    assert api.put(f"/v2/queues/q1/subscriptions/{sid}/confirm", {"confirmed": True}).status == 204
    reply = api.post("/v2/queues/q1/subscriptions", {"subscriber": "http://example.test/hook"})
    assert reply.status == 409
    assert set(reply.json) == {"title", "description"}
    subscribe(api, "q2", "http://example.test/hook")  # another queue is fine


def test_patch_changes_fields_and_delete_removes(api: Api) -> None:
    sid = subscribe(api, "q1", "http://example.test/a")
    reply = api.patch(f"/v2/queues/q1/subscriptions/{sid}", {"ttl": 120, "options": {"k": "v"}})
    assert reply.status == 204
    got = api.get(f"/v2/queues/q1/subscriptions/{sid}").json
    assert (got["ttl"], got["options"]) == (120, {"k": "v"})
    assert api.delete(f"/v2/queues/q1/subscriptions/{sid}").status == 204
    assert api.delete(f"/v2/queues/q1/subscriptions/{sid}").status == 204
    assert api.get(f"/v2/queues/q1/subscriptions/{sid}").status == 404


def test_patch_to_an_existing_subscriber_is_409(api: Api) -> None:
    subscribe(api, "q1", "http://example.test/a")
    sid = subscribe(api, "q1", "http://example.test/b")
    assert api.patch(f"/v2/queues/q1/subscriptions/{sid}", {"subscriber": "http://example.test/a"}).status == 409
    assert api.get(f"/v2/queues/q1/subscriptions/{sid}").json["subscriber"] == "http://example.test/b"


def test_confirm_is_put_204(api: Api, services: Services) -> None:
    sid = subscribe(api, "q1", "http://example.test/a")
    reply = api.put(f"/v2/queues/q1/subscriptions/{sid}/confirm", {"confirmed": True})
    assert reply.status == 204
    assert api.get(f"/v2/queues/q1/subscriptions/{sid}").json["confirmed"] is True
    assert api.put(f"/v2/queues/q1/subscriptions/{sid}/confirm", {"confirmed": "yes"}).status == 400
    assert api.put("/v2/queues/q1/subscriptions/nope/confirm", {"confirmed": True}).status == 404
    assert isinstance(services.sink, RecordingSink)
    assert [e.type for e in services.sink.events if e.type.startswith("subscription")] == [
        "subscription.created", "subscription.confirmed"]


def test_subscriptions_survive_queue_deletion_and_go_with_purge(api: Api) -> None:
    sid = subscribe(api, "q1", "http://example.test/a")
    api.delete("/v2/queues/q1")
    assert api.get(f"/v2/queues/q1/subscriptions/{sid}").status == 200
    api.put("/v2/queues/q1")
    assert api.post("/v2/queues/q1/purge", {"resource_types": ["subscriptions"]}).status == 204
    assert api.get(f"/v2/queues/q1/subscriptions/{sid}").status == 404


def test_other_projects_cannot_see_subscriptions(api: Api) -> None:
    sid = subscribe(api, "q1", "http://example.test/a")
    stranger = Api(api._client, api.project + "-other")
    assert stranger.get(f"/v2/queues/q1/subscriptions/{sid}").status == 404
    assert stranger.get("/v2/queues/q1/subscriptions").json["subscriptions"] == []
    stranger.delete(f"/v2/queues/q1/subscriptions/{sid}")
    assert api.get(f"/v2/queues/q1/subscriptions/{sid}").status == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, ["subscriber"]),
        ({"subscriber": "ftp://example.test"}, ["unsupported"]),
        ({"subscriber": "http://"}, ["unsupported"]),
        ({"subscriber": "mailto:nobody"}, ["unsupported"]),
        ({"subscriber": "trust+http://example.test"}, ["AUTH_STRATEGY=keystone"]),
        ({"subscriber": "trust+ftp://example.test"}, ["unsupported"]),
        ({"subscriber": "trust+http://10.0.0.1/hook"}, ["private"]),
        ({"subscriber": "http://example.test", "ttl": 59}, ["ttl", "60"]),
        ({"subscriber": "http://example.test", "ttl": "100"}, ["integer"]),
        ({"subscriber": "http://example.test", "options": []}, ["options"]),
        ({"subscriber": "http://example.test/" + "x" * 1100}, ["1024"]),
    ],
)
def test_bad_subscriptions_are_400_and_nothing_is_stored(api: Api, body: dict[str, object], words: list[str]) -> None:
    reply = api.post("/v2/queues/q1/subscriptions", body)
    assert reply.status == 400, reply.raw
    for word in words:
        assert word.lower() in reply.json["description"].lower()
    assert api.get("/v2/queues/q1/subscriptions").json["subscriptions"] == []


@pytest.mark.parametrize("body", [{}, {"source": "q2"}, {"ttl": 1}, {"subscriber": "gopher://x"}, [1],
                                  {"subscriber": "trust+http://example.test"}, {"options": {"trust_id": "t"}}])
def test_bad_patches_are_400_and_change_nothing(api: Api, body: object) -> None:
    sid = subscribe(api, "q1", "http://example.test/a")
    before = api.get(f"/v2/queues/q1/subscriptions/{sid}").json
    assert api.patch(f"/v2/queues/q1/subscriptions/{sid}", body).status == 400
    after = api.get(f"/v2/queues/q1/subscriptions/{sid}").json
    assert {k: v for k, v in after.items() if k != "age"} == {k: v for k, v in before.items() if k != "age"}
