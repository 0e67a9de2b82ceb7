"""Topics (``/v2/topics``, beyond upstream's working set): upstream's topic routes, kept apart from queues of the
same name; their messages are posted, listed and read but never claimed, and reach the topic's subscriptions.

The lifecycle cases follow upstream's ``test_topic_lifecycle.py``; upstream's topic message and subscription
routes fail (they reuse queue resources that take ``queue_name``), so those cases are ours.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import topics
from infra.local.gateway import LambdaContext
from tests.conftest import _delete_project_keys, installed
from tests.functional.conftest import PATCH_TYPE, Api, Reply
from tests.functional.hostile import api_event
from tests.functional.test_notifications import Flow, _build, local_aws
from tests.functional.test_openapi import Checked
from tests.receiver import Receiver, receiver

TOPIC_RESERVED = {"_max_messages_post_size": 262144, "_default_message_ttl": 3600, "_default_message_delay": 0}
"""What a topic reports besides its own metadata (upstream's ``topic._get_reserved_metadata``)."""
NO_MESSAGE = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _topic_keys(redis_url: str, project: str) -> Iterator[None]:
    """The project fixture deletes its project's Redis keys; these are its topic space's."""
    yield
    _delete_project_keys(redis_url, topics.space(project))


def _post(api: Api, topic: str, *messages: dict[str, Any]) -> list[str]:
    reply = api.post(f"/v2/topics/{topic}/messages", {"messages": list(messages)})
    assert reply.status == 201, reply.raw
    return [href.rsplit("/", 1)[1] for href in reply.json["resources"]]


def _error(reply: Reply, status: int, *words: str) -> str:
    assert reply.status == status, reply.raw
    assert set(reply.json) == {"title", "description"}
    description: str = reply.json["description"]
    for word in words:
        assert word in description, description
    return description


# -- topics ------------------------------------------------------------------------------


def test_a_topic_is_created_201_then_204_read_with_upstreams_reserved_defaults_and_deleted(api: Api) -> None:
    assert api.get("/v2/topics/mars/stats").json == {"messages": {"claimed": 0, "free": 0, "total": 0}}
    first = api.put("/v2/topics/mars", {"messages": {"ttl": 600}})
    assert (first.status, first.headers["location"]) == (201, "/v2/topics/mars")
    assert api.put("/v2/topics/mars", {"other": 1}).status == 204  # an existing topic is left as it is
    got = api.get("/v2/topics/mars")
    assert (got.status, got.json) == (200, {"messages": {"ttl": 600}, **TOPIC_RESERVED})
    assert api.delete("/v2/topics/mars").status == 204
    assert api.get("/v2/topics").json == {"topics": [], "links": []}
    assert api.get("/v2/topics/mars/stats").json == {"messages": {"claimed": 0, "free": 0, "total": 0}}
    assert api.delete("/v2/topics/mars").status == 204  # idempotent


def test_a_topic_shows_the_queue_only_reserved_keys_its_owner_set(api: Api) -> None:
    api.put("/v2/topics/t1", {"_max_claim_count": 5, "_default_message_ttl": 120})
    assert api.get("/v2/topics/t1").json == {**TOPIC_RESERVED, "_default_message_ttl": 120, "_max_claim_count": 5}


def test_topic_names_follow_queue_names_rules(api: Api) -> None:
    assert api.put("/v2/topics/Nice-Boat_2").status == 201
    assert api.put("/v2/topics/Service.test_topic").status == 201
    _error(api.put("/v2/topics/Nice-Bo@t"), 400, "Topic names may only contain")
    _error(api.put("/v2/topics/_" + "niceboat" * 8), 400, "Topic names")
    _error(api.delete("/v2/topics/non-ascii-n%C5%93me"), 400, "Topic names")


@pytest.mark.parametrize("document", ["{", "[]", ".", "  x"])
def test_bad_metadata_is_400(api: Api, document: str) -> None:
    assert api.put("/v2/topics/venus", raw=document).status == 400
    assert api.get("/v2/topics").json["topics"] == []


def test_patch_changes_metadata_with_a_json_patch_as_upstreams_test_does(api: Api) -> None:
    api.put("/v2/topics/xyz")
    patch = {"Content-Type": PATCH_TYPE}

    def patched(*ops: dict[str, Any]) -> Reply:
        return api.patch("/v2/topics/xyz", list(ops), headers=patch)

    assert patched({"op": "add", "path": "/metadata/key1", "value": 1},
                   {"op": "add", "path": "/metadata/key2", "value": 1}).status == 200
    assert patched({"op": "remove", "path": "/metadata/_default_message_ttl"}).status == 200  # a no-op
    assert patched({"op": "replace", "path": "/metadata/key1", "value": 2}).status == 200
    reply = patched({"op": "replace", "path": "/metadata/_default_message_ttl", "value": 300})
    assert reply.json == {**TOPIC_RESERVED, "key1": 2, "key2": 1, "_default_message_ttl": 300}
    assert api.get("/v2/topics/xyz").json == reply.json
    assert patched({"op": "remove", "path": "/metadata/key1"}).status == 200
    assert patched({"op": "remove", "path": "/metadata/_default_message_ttl"}).json == {**TOPIC_RESERVED, "key2": 1}
    assert patched({"op": "replace", "path": "/metadata/key3", "value": 2}).status == 409
    assert patched({"op": "remove", "path": "/metadata/key3"}).status == 409
    _error(api.patch("/v2/topics/xyz", [{"op": "add", "path": "/metadata/b", "value": 1}]), 415, PATCH_TYPE,
           "Topic updates")
    api.delete("/v2/topics/xyz")
    _error(patched({"op": "add", "path": "/metadata/key1", "value": 1}), 404, "Topic xyz does not exist.")


def test_the_list_pages_with_next_links_and_shows_no_queues(api: Api) -> None:
    assert api.get("/v2/topics").json == {"topics": [], "links": []}
    _error(api.get("/v2/topics?limit=21"), 400, "limit")
    for n in (1, 2, 3):
        api.put(f"/v2/topics/t{n}", {"node": 30 + n})
    api.put("/v2/queues/a-queue")
    first = api.get("/v2/topics?limit=2").json
    assert first["topics"] == [{"name": "t1", "href": "/v2/topics/t1"}, {"name": "t2", "href": "/v2/topics/t2"}]
    (link,) = first["links"]
    assert link["rel"] == "next" and link["href"].startswith("/v2/topics?")
    rest = api.get(link["href"]).json
    assert [t["name"] for t in rest["topics"]] == ["t3"]
    assert [t["name"] for t in api.get(rest["links"][0]["href"]).json["topics"]] == []
    detailed = api.get("/v2/topics?detailed=true&with_count=true").json
    assert detailed["topics"][0] == {"name": "t1", "href": "/v2/topics/t1", "metadata": {"node": 31, **TOPIC_RESERVED}}
    assert detailed["count"] == 3
    assert api.get(detailed["topics"][0]["href"]).json == detailed["topics"][0]["metadata"]
    assert api.get("/v2/topics?node=34").json["topics"] == []
    assert [t["name"] for t in api.get("/v2/topics?node=32").json["topics"]] == ["t2"]
    assert [t["name"] for t in api.get("/v2/topics?name=t&limit=5").json["topics"]] == ["t1", "t2", "t3"]
    assert api.get("/v2/topics?marker=zzz").json == {"topics": [], "links": []}
    assert [q["name"] for q in api.get("/v2/queues").json["queues"]] == ["a-queue"]


def test_a_topic_and_a_queue_of_the_same_name_never_meet(api: Api) -> None:
    api.put("/v2/queues/same", {"kind": "queue"})
    api.put("/v2/topics/same", {"kind": "topic"})
    (in_topic,) = _post(api, "same", {"body": "for the topic"})
    (in_queue,) = api.post_messages("same", "for the queue")
    assert api.get("/v2/topics/same").json["kind"] == "topic"
    assert api.get("/v2/queues/same").json["kind"] == "queue"
    assert [m["body"] for m in api.get("/v2/topics/same/messages?echo=true").json["messages"]] == ["for the topic"]
    assert [m["body"] for m in api.get("/v2/queues/same/messages?echo=true").json["messages"]] == ["for the queue"]
    assert api.get(f"/v2/topics/same/messages/{in_queue}").status == 404
    assert api.get(f"/v2/queues/same/messages/{in_topic}").status == 404
    sid = api.post("/v2/topics/same/subscriptions", {"subscriber": "http://example.test/t"}).json["subscription_id"]
    assert api.get("/v2/queues/same/subscriptions").json["subscriptions"] == []
    assert api.get(f"/v2/queues/same/subscriptions/{sid}").status == 404
    assert api.delete("/v2/topics/same").status == 204
    assert api.get("/v2/queues/same").json["kind"] == "queue"
    assert [m["body"] for m in api.get("/v2/queues/same/messages?echo=true").json["messages"]] == ["for the queue"]


def test_stats_count_the_messages_and_link_the_oldest_and_newest(api: Api) -> None:
    oldest, _middle, newest = _post(api, "news", {"body": 1}, {"body": 2}, {"body": 3})
    counts = api.get("/v2/topics/news/stats").json["messages"]
    assert (counts["total"], counts["free"], counts["claimed"]) == (3, 3, 0)
    assert counts["oldest"]["href"] == f"/v2/topics/news/messages/{oldest}"
    assert counts["newest"]["href"] == f"/v2/topics/news/messages/{newest}"


def test_purge_removes_messages_and_subscriptions_as_asked(api: Api) -> None:
    api.put("/v2/topics/news", {"keep": True})
    _post(api, "news", {"body": 1}, {"body": 2})
    api.post("/v2/topics/news/subscriptions", {"subscriber": "http://example.test/h"})
    assert api.post("/v2/topics/news/purge", {"resource_types": ["messages"]}).status == 204
    assert api.get("/v2/topics/news/messages?echo=true").json["messages"] == []
    assert len(api.get("/v2/topics/news/subscriptions").json["subscriptions"]) == 1
    assert api.post("/v2/topics/news/purge").status == 204
    assert api.get("/v2/topics/news/subscriptions").json["subscriptions"] == []
    assert api.get("/v2/topics/news").json["keep"] is True
    _error(api.post("/v2/topics/news/purge", {"resource_types": ["claims"]}), 400)


# -- messages ----------------------------------------------------------------------------


def test_messages_are_posted_listed_and_read_with_their_attributes_under_topic_hrefs(api: Api) -> None:
    reply = api.post("/v2/topics/news/messages", {"messages": [
        {"body": {"n": 1}, "ttl": 300, "attributes": {"color": "red", "tags": ["a"]}}, {"body": "plain"}]})
    assert reply.status == 201
    first, second = (href.rsplit("/", 1)[1] for href in reply.json["resources"])
    assert reply.json["resources"] == [f"/v2/topics/news/messages/{first}", f"/v2/topics/news/messages/{second}"]
    assert reply.headers["location"] == f"/v2/topics/news/messages?ids={first},{second}"
    got = api.get(f"/v2/topics/news/messages/{first}").json
    assert got["href"] == f"/v2/topics/news/messages/{first}"
    assert (got["body"], got["ttl"], got["attributes"]) == ({"n": 1}, 300, {"color": "red", "tags": ["a"]})
    assert "attributes" not in api.get(f"/v2/topics/news/messages/{second}").json
    listed = api.get("/v2/topics/news/messages?echo=true").json
    assert [m["id"] for m in listed["messages"]] == [first, second]
    assert listed["links"][0]["href"].startswith("/v2/topics/news/messages?marker=")
    assert api.get("/v2/topics/news/messages").json["messages"] == []  # without echo, not one's own
    many = api.get(f"/v2/topics/news/messages?ids={second}&ids={first}").json["messages"]
    assert sorted(m["id"] for m in many) == sorted([first, second])
    assert all(m["href"].startswith("/v2/topics/news/messages/") for m in many)
    _error(api.get(f"/v2/topics/news/messages/{NO_MESSAGE}"), 404, "does not exist in topic news")
    _error(api.get(f"/v2/topics/news/messages?ids={NO_MESSAGE}"), 404, "topic news")
    assert api.get("/v2/topics").json["topics"][0]["name"] == "news"  # posting made the topic


def test_another_client_lists_the_messages_and_listing_takes_none_of_them(api: Api, other: Api) -> None:
    _post(api, "news", {"body": 1}, {"body": 2})
    for _ in range(2):
        assert [m["body"] for m in other.get("/v2/topics/news/messages").json["messages"]] == [1, 2]


def test_topic_messages_cannot_be_claimed_popped_or_deleted(api: Api) -> None:
    (mid,) = _post(api, "news", {"body": "kept"})
    # no claim routes: API Gateway (and chalice's local gateway) answers unknown routes 403 before the app
    for method, path in (("POST", "/v2/topics/news/claims"), ("GET", f"/v2/topics/news/claims/{NO_MESSAGE}"),
                         ("PATCH", f"/v2/topics/news/claims/{NO_MESSAGE}"),
                         ("POST", "/v2/topics/news/share")):
        reply = api.call(method, path, {"ttl": 60})
        assert (reply.status, json.loads(reply.raw)) == (403, {"message": "Missing Authentication Token"}), path
    # the message routes exist with other methods: the app answers 405 in Zaqar's format
    for path in ("/v2/topics/news/messages?pop=1", f"/v2/topics/news/messages?ids={mid}",
                 f"/v2/topics/news/messages/{mid}"):
        reply = api.delete(path)
        _error(reply, 405)
        assert "GET" in reply.headers["allow"] and "DELETE" not in reply.headers["allow"]
    listed = api.get("/v2/topics/news/messages?echo=true").json["messages"]
    assert [(m["id"], m["body"]) for m in listed] == [(mid, "kept")]
    assert "claim_id" not in listed[0]["href"]


def test_a_topic_without_claims_through_the_lambda_event_is_refused_too(api: Api) -> None:
    # straight to the app, as if API Gateway had such a resource: Chalice's router has no route for it
    event = api_event("POST", "/v2/topics/{topic_name}/claims", {"topic_name": "news"},
                      headers={"Client-ID": api.client_id, "X-Project-ID": api.project}, body="{}")
    result = app_module.app(event, LambdaContext())
    assert (result["statusCode"], json.loads(result["body"])["title"]) == (405, "Method not allowed")
    assert api.get("/v2/topics/news/stats").json["messages"]["claimed"] == 0


# -- subscriptions -----------------------------------------------------------------------


def test_subscriptions_of_a_topic_are_made_listed_read_changed_confirmed_and_deleted(api: Api) -> None:
    made = api.post("/v2/topics/news/subscriptions", {"subscriber": "http://example.test/h", "ttl": 3600,
                                                      "options": {"a": 1}})
    assert (made.status, made.headers["location"]) == (201, "/v2/topics/news/subscriptions")
    sid = made.json["subscription_id"]
    listed = api.get("/v2/topics/news/subscriptions").json
    assert [(s["id"], s["source"], s["subscriber"]) for s in listed["subscriptions"]] == [
        (sid, "news", "http://example.test/h")]
    assert listed["links"][0]["href"].startswith("/v2/topics/news/subscriptions?marker=")
    got = api.get(f"/v2/topics/news/subscriptions/{sid}").json
    assert (got["source"], got["ttl"], got["options"], got["confirmed"]) == ("news", 3600, {"a": 1}, False)
    changed = api.patch(f"/v2/topics/news/subscriptions/{sid}", {"ttl": 7200})
    assert (changed.status, changed.headers["location"]) == (204, f"/v2/topics/news/subscriptions/{sid}")
    assert api.get(f"/v2/topics/news/subscriptions/{sid}").json["ttl"] == 7200
    confirmed = api.put(f"/v2/topics/news/subscriptions/{sid}/confirm", {"confirmed": True})
    assert (confirmed.status, confirmed.headers["location"]) == (
        204, f"/v2/topics/news/subscriptions/{sid}/confirm")
    assert api.get(f"/v2/topics/news/subscriptions/{sid}").json["confirmed"] is True
    _error(api.post("/v2/topics/news/subscriptions", {"subscriber": "http://example.test/h"}), 409,
           "Topic news already has a confirmed subscription")
    assert api.delete(f"/v2/topics/news/subscriptions/{sid}").status == 204
    _error(api.get(f"/v2/topics/news/subscriptions/{sid}"), 404, "does not exist in topic news")
    _error(api.put(f"/v2/topics/news/subscriptions/{sid}/confirm", {"confirmed": True}), 404)
    assert api.get("/v2/topics/news/subscriptions").json == {"subscriptions": [], "links": []}


def test_subscribing_creates_the_topic_and_the_subscription_outlives_it(api: Api) -> None:
    api.post("/v2/topics/lazy/subscriptions", {"subscriber": "mailto:ops@example.test"})
    assert [t["name"] for t in api.get("/v2/topics").json["topics"]] == ["lazy"]
    api.delete("/v2/topics/lazy")
    assert len(api.get("/v2/topics/lazy/subscriptions").json["subscriptions"]) == 1


# -- who can have topics -----------------------------------------------------------------


@pytest.fixture
def tenant(chalice_client: Client, redis_url: str) -> Iterator[Callable[[str], Api]]:
    """Clients of projects of our choosing; their keys (and their topic spaces') are deleted afterwards."""
    made: list[str] = []

    def make(project: str) -> Api:
        made.append(project)
        return Api(chalice_client, project)

    yield make
    for project in made:
        _delete_project_keys(redis_url, project)
        _delete_project_keys(redis_url, topics.space(project))


def test_other_projects_see_none_of_a_projects_topics(api: Api, tenant: Callable[[str], Api]) -> None:
    api.put("/v2/topics/mine", {"x": 1})
    _post(api, "mine", {"body": "secret"})
    stranger = tenant(f"{api.project}-x")
    assert stranger.get("/v2/topics").json["topics"] == []
    assert stranger.get("/v2/topics/mine/messages?echo=true").json["messages"] == []
    assert stranger.get("/v2/topics/mine").json == TOPIC_RESERVED  # as a topic nobody made


def test_project_ids_longer_than_254_characters_have_queues_but_no_topics(tenant: Callable[[str], Api]) -> None:
    longest = tenant(uuid.uuid4().hex + "p" * (254 - 32))
    assert longest.put("/v2/topics/t").status == 201
    assert _post(longest, "t", {"body": 1})
    too_long = tenant(uuid.uuid4().hex + "q" * (255 - 32))
    assert too_long.put("/v2/queues/q").status == 201
    for reply in (too_long.put("/v2/topics/t"), too_long.get("/v2/topics"), too_long.get("/v2/topics/t"),
                  too_long.post("/v2/topics/t/messages", {"messages": [{"body": 1}]}),
                  too_long.post("/v2/topics/t/subscriptions", {"subscriber": "http://example.test/h"})):
        _error(reply, 400, "Topics need project ids of at most 254 characters")
    _error(tenant(uuid.uuid4().hex + "r" * (257 - 32)).get("/v2/queues"), 400, "X-Project-ID")


@pytest.mark.parametrize("path", ["/v2/queues", "/v2/topics"])
def test_a_project_id_with_a_control_character_is_refused_so_no_topic_space_can_be_named(
        api: Api, path: str) -> None:
    api.put("/v2/topics/t", {"secret": True})
    for project in (topics.space(api.project), f"{api.project}\x1f", f"{api.project}\tt"):
        headers = {"Client-ID": api.client_id, "X-Project-ID": project}
        result = app_module.app(api_event("GET", path, headers=headers), LambdaContext())
        assert result["statusCode"] == 400, (project, result)
        assert "x-project-id" in json.loads(result["body"])["description"].lower(), result
    assert api.get("/v2/queues").json["queues"] == []  # the topic space is not the project's queues


# -- deliveries --------------------------------------------------------------------------


@pytest.fixture
def notified(tmp_path: Path, redis_url: str, project: str) -> Iterator[tuple[Api, Flow]]:
    """The app with its stream, retry queue and delivery Lambdas on moto, for one project."""
    with local_aws(), installed(_build(tmp_path, redis_url)) as services, Client(app_module.app) as client:
        yield Api(client, project), Flow(services)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


def _subscribe(api: Api, topic: str, subscriber: str, **options: Any) -> str:
    reply = api.post(f"/v2/topics/{topic}/subscriptions", {"subscriber": subscriber, "options": options})
    assert reply.status == 201, reply.raw
    return str(reply.json["subscription_id"])


def test_a_message_posted_to_a_topic_reaches_each_matching_subscription_once(
        notified: tuple[Api, Flow], hook: Receiver) -> None:
    api, flow = notified
    _subscribe(api, "news", hook.url + "/all")
    _subscribe(api, "news", hook.url + "/red", filter_policy={"color": ["red"]})
    _post(api, "news", {"body": "red one", "ttl": 300, "attributes": {"color": "red"}},
          {"body": "blue one", "ttl": 300, "attributes": {"color": "blue"}})
    flow.drain()
    flow.stream._iterators.clear()  # Kinesis delivers the whole stream again: nothing is sent twice
    flow.drain()
    received = hook.wait_for(3)
    by_path = sorted((r.path, r.json["body"]) for r in received)
    assert by_path == [("/all", "blue one"), ("/all", "red one"), ("/red", "red one")]
    red = next(r.json for r in received if r.path == "/red")
    assert {k: red[k] for k in ("body", "ttl", "queue_name", "Message_Type")} == {
        "body": "red one", "ttl": 300, "queue_name": "news", "Message_Type": "Notification"}
    flow.drain()
    assert len(hook.requests) == 3
    assert [m["body"] for m in api.get("/v2/topics/news/messages?echo=true").json["messages"]] == [
        "red one", "blue one"]  # delivered and still kept for their ttl


def test_a_notification_of_a_topic_message_links_it_under_v2_topics(
        notified: tuple[Api, Flow], hook: Receiver) -> None:
    api, flow = notified
    _subscribe(api, "news", hook.url, include_message_id=True)
    (mid,) = _post(api, "news", {"body": {"n": 1}})
    flow.drain()
    (got,) = hook.wait_for(1)
    assert (got.json["message_id"], got.json["href"]) == (mid, f"/v2/topics/news/messages/{mid}")


def test_a_queue_of_the_same_name_and_its_subscribers_get_nothing_of_the_topic(
        notified: tuple[Api, Flow], hook: Receiver) -> None:
    api, flow = notified
    reply = api.post("/v2/queues/news/subscriptions", {"subscriber": hook.url + "/queue"})
    assert reply.status == 201
    _subscribe(api, "news", hook.url + "/topic")
    _post(api, "news", {"body": "to the topic"})
    api.post_messages("news", "to the queue")
    flow.drain()
    received = sorted((r.path, r.json["body"]) for r in hook.wait_for(2))
    assert received == [("/queue", "to the queue"), ("/topic", "to the topic")]
    assert [m["body"] for m in api.get("/v2/queues/news/messages?echo=true").json["messages"]] == ["to the queue"]


def test_a_topic_fans_out_into_a_queue_of_its_owner(notified: tuple[Api, Flow]) -> None:
    api, flow = notified
    _subscribe(api, "news", "queue:inbox")
    _post(api, "news", {"body": {"n": 1}, "attributes": {"k": "v"}})
    flow.drain()
    (landed,) = api.get("/v2/queues/inbox/messages?echo=true").json["messages"]
    assert (landed["body"], landed["attributes"]) == ({"n": 1}, {"k": "v"})
    assert api.get("/v2/topics/inbox/messages?echo=true").json["messages"] == []


def test_a_topic_subscription_is_confirmed_with_the_signed_url_it_was_sent(
        tmp_path: Path, redis_url: str, project: str, hook: Receiver) -> None:
    with local_aws(), installed(_build(tmp_path, redis_url, REQUIRE_CONFIRMATION="true")) as services, \
            Client(app_module.app) as client:
        api, flow = Api(client, project), Flow(services)
        sid = _subscribe(api, "news", hook.url)
        flow.drain()
        (confirmation,) = hook.wait_for(1)
        doc = confirmation.json
        path = f"/v2/topics/news/subscriptions/{sid}/confirm"
        assert (doc["Message_Type"], doc["URL-Paths"], doc["X-Project-ID"]) == (
            "SubscriptionConfirmation", path, project)
        signed = {k: doc[k] for k in ("URL-Signature", "URL-Methods", "URL-Paths", "URL-Expires", "X-Project-ID")}
        queue_path = path.replace("/v2/topics/", "/v2/queues/")
        assert api.put(queue_path, {"confirmed": True}, headers=signed).status == 404  # signed for the topic only
        assert api.put(path, {"confirmed": True}, headers=signed).status == 204
        assert api.get(f"/v2/topics/news/subscriptions/{sid}").json["confirmed"] is True
        _post(api, "news", {"body": "after confirming"})
        flow.drain()
        assert [r.json.get("body") for r in hook.wait_for(2)] == [None, "after confirming"]


# -- the published description ------------------------------------------------------------


def test_a_topic_session_conforms_to_the_document(api: Api) -> None:
    call = Checked(api)
    t = "/v2/topics/described"
    assert call("PUT", t, {"_default_message_ttl": 600, "owner": "me"}).status == 201
    assert call("GET", t).status == 200
    assert call("PATCH", t, [{"op": "add", "path": "/metadata/b", "value": 1}],
                headers={"Content-Type": PATCH_TYPE}).status == 200
    assert call("GET", "/v2/topics?detailed=true&with_count=true").status == 200
    posted = call("POST", f"{t}/messages", {"messages": [{"body": {"n": n}, "attributes": {"n": n}} for n in range(3)]})
    ids = [href.rsplit("/", 1)[1] for href in posted.json["resources"]]
    assert call("GET", f"{t}/messages?echo=true&limit=2").status == 200
    assert call("GET", f"{t}/messages?ids={ids[0]}&ids={ids[1]}").status == 200
    assert call("GET", f"{t}/messages/{ids[0]}").status == 200
    assert call("GET", f"{t}/stats").status == 200
    sid = call("POST", f"{t}/subscriptions", {"subscriber": "http://example.test/h"}).json["subscription_id"]
    assert call("GET", f"{t}/subscriptions").status == 200
    assert call("GET", f"{t}/subscriptions/{sid}").status == 200
    assert call("PATCH", f"{t}/subscriptions/{sid}", {"ttl": 7200}).status == 204
    assert call("PUT", f"{t}/subscriptions/{sid}/confirm", {"confirmed": True}).status == 204
    assert call("DELETE", f"{t}/subscriptions/{sid}").status == 204
    assert call("POST", f"{t}/purge", {"resource_types": ["messages"]}).status == 204
    assert call("GET", f"{t}/messages/{NO_MESSAGE}").status == 404
    assert call("PATCH", "/v2/topics/nothere", [{"op": "remove", "path": "/metadata/b"}],
                headers={"Content-Type": PATCH_TYPE}).status == 404
    assert call("DELETE", t).status == 204
    assert {path for _method, path, _status in call.seen} >= {t, f"{t}/stats", f"{t}/purge"}
