"""Subscription filter policies (Amazon SNS's syntax) and fan-out to queues (``queue:NAME``), through the
stream, the notifier and real webhooks on loopback: a message a policy does not match is not delivered and
is no failure; a forwarded message lands once in its queue, body, attributes and ttl kept, even when the
stream delivers its batch again."""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.conftest import Api
from tests.functional.test_notifications import Flow, api, aws, flow, hook, subscribe  # noqa: F401 - fixtures
from tests.receiver import Receiver


def _post(api: Api, queue: str, *messages: dict[str, Any]) -> list[str]:  # noqa: F811 - the fixture's name
    reply = api.post(f"/v2/queues/{queue}/messages", {"messages": list(messages)})
    assert reply.status == 201, reply.raw
    return [href.rsplit("/", 1)[1] for href in reply.json["resources"]]


def _redeliver(flow: Flow) -> None:  # noqa: F811
    flow.stream._iterators.clear()  # Kinesis hands the whole stream out again
    flow.drain()


def test_only_messages_the_policy_matches_are_delivered_and_the_rest_are_no_failures(
        api: Api, flow: Flow, hook: Receiver) -> None:  # noqa: F811
    subscribe(api, "orders", hook.url, filter_policy={"color": ["red", {"prefix": "bl"}], "size": [{"numeric": [">", 2]}]})
    _post(api, "orders", {"body": "yes", "attributes": {"color": "red", "size": 3}},
          {"body": "no: too small", "attributes": {"color": "red", "size": 1}},
          {"body": "yes too", "attributes": {"color": "blue", "size": 9}},
          {"body": "no: no attributes"},
          {"body": "no: wrong color", "attributes": {"color": "green", "size": 5}})
    flow.drain()
    received = hook.wait_for(2)
    assert sorted(r.json["body"] for r in received) == ["yes", "yes too"]
    assert received[0].json["attributes"]["color"] in {"red", "blue"}
    flow.drain()
    assert len(hook.requests) == 2
    assert api.get("/v2/queues/failed-notifications/messages?echo=true").json.get("messages", []) == []


def test_a_body_policy_matches_nested_keys_of_the_body(api: Api, flow: Flow, hook: Receiver) -> None:  # noqa: F811
    subscribe(api, "orders", hook.url, filter_policy_scope="MessageBody",
              filter_policy={"order": {"total": [{"numeric": [">=", 100]}], "country": [{"anything-but": ["XX"]}]}})
    _post(api, "orders", {"body": {"order": {"total": 150, "country": "FR"}}},
          {"body": {"order": {"total": 150, "country": "XX"}}},
          {"body": {"order": {"total": 10, "country": "FR"}}},
          {"body": "not an object"})
    flow.drain()
    (got,) = hook.wait_for(1)
    flow.drain()
    assert len(hook.requests) == 1 and got.json["body"] == {"order": {"total": 150, "country": "FR"}}


def test_filters_read_encrypted_queues_too(api: Api, flow: Flow, hook: Receiver) -> None:  # noqa: F811
    api.put("/v2/queues/secret", {"_enable_encrypt_messages": True})
    subscribe(api, "secret", hook.url, filter_policy={"kind": ["card"]})
    _post(api, "secret", {"body": "x", "attributes": {"kind": "card"}}, {"body": "y", "attributes": {"kind": "cash"}})
    flow.drain()
    (got,) = hook.wait_for(1)
    flow.drain()
    assert len(hook.requests) == 1 and got.json["body"] == "x"


@pytest.mark.parametrize(("options", "complaint"), [
    ({"filter_policy": {"a": "red"}}, "options.filter_policy.a"),
    ({"filter_policy": {"a": [{"prefix": 1}]}}, "prefix"),
    ({"filter_policy": {f"k{i}": ["x"] for i in range(6)}}, "5"),
    ({"filter_policy": {"a": list(range(20)), "b": list(range(20))}}, "150"),
    ({"filter_policy": {"a": {"b": ["x"]}}}, "filter_policy"),  # nesting: body scope only
    ({"filter_policy": {"a": ["x"]}, "filter_policy_scope": "Body"}, "MessageAttributes or MessageBody"),
])
def test_bad_policies_are_a_400_naming_the_problem(api: Api, options: dict[str, Any], complaint: str) -> None:  # noqa: F811
    reply = api.post("/v2/queues/orders/subscriptions", {"subscriber": "queue:copies", "options": options})
    assert reply.status == 400, reply.raw
    assert complaint in reply.json["description"]
    assert api.get("/v2/queues/orders/subscriptions").json["subscriptions"] == []


def test_fan_out_to_a_queue_keeps_body_attributes_and_ttl_exactly_once_across_redelivery(
        api: Api, flow: Flow, hook: Receiver) -> None:  # noqa: F811
    sid = subscribe(api, "orders", "queue:copies")
    subscribe(api, "copies", hook.url)  # the copy's own subscribers are told of it
    (mid,) = _post(api, "orders", {"body": {"n": 1}, "ttl": 600, "attributes": {"k": "v"}})
    flow.drain()
    _redeliver(flow)
    _redeliver(flow)
    copies = api.get("/v2/queues/copies/messages?echo=true").json["messages"]
    assert len(copies) == 1
    (copy,) = copies
    assert (copy["body"], copy["attributes"], copy["ttl"]) == ({"n": 1}, {"k": "v"}, 600)
    assert copy["id"] != mid
    (told,) = hook.wait_for(1)
    assert told.json["queue_name"] == "copies"
    assert api.get(f"/v2/queues/orders/subscriptions/{sid}").json["confirmed"] is True


def test_fan_out_survives_the_delivery_log_forgetting_a_settled_delivery(
        api: Api, flow: Flow, redis_url: str) -> None:  # noqa: F811
    """A crash after the forwarded post and before the delivery log's record: the redelivered batch posts
    again with the same idempotency key, which the target queue answers without storing twice."""
    import redis

    sid = subscribe(api, "orders", "queue:copies")
    (mid,) = _post(api, "orders", {"body": "once"})
    flow.drain()
    assert len(api.delete("/v2/queues/copies/messages?pop=1").json["messages"]) == 1  # consumed meanwhile
    state = redis.Redis.from_url(redis_url)
    forgotten = list(state.scan_iter(match=f"zn:*:{sid}:{mid}"))  # this delivery's record only
    assert len(forgotten) == 1
    state.delete(*forgotten)
    _redeliver(flow)
    assert api.get("/v2/queues/copies/messages?echo=true").json.get("messages", []) == []
    assert api.get("/v2/queues/copies/stats").json["messages"]["total"] == 0


def test_forwarded_messages_are_not_forwarded_again(api: Api, flow: Flow) -> None:  # noqa: F811
    subscribe(api, "a", "queue:b")
    subscribe(api, "b", "queue:a")  # a loop, cut after one hop
    _post(api, "a", {"body": "ping"})
    for _ in range(3):
        flow.drain()
    assert [m["body"] for m in api.get("/v2/queues/b/messages?echo=true").json["messages"]] == ["ping"]
    assert [m["body"] for m in api.get("/v2/queues/a/messages?echo=true").json["messages"]] == ["ping"]


def test_a_filtered_fan_out_forwards_only_what_matches(api: Api, flow: Flow) -> None:  # noqa: F811
    subscribe(api, "orders", "queue:urgent", filter_policy={"priority": [{"numeric": [">=", 8]}]})
    _post(api, "orders", {"body": "now", "attributes": {"priority": 9}}, {"body": "later", "attributes": {"priority": 2}})
    flow.drain()
    assert [m["body"] for m in api.get("/v2/queues/urgent/messages?echo=true").json["messages"]] == ["now"]


@pytest.mark.parametrize(("subscriber", "complaint"), [
    ("queue:", "must name a queue"),
    ("queue:bad name", "must name a queue"),
    ("queue:orders", "cannot subscribe to itself"),
])
def test_bad_queue_subscribers_are_refused(api: Api, subscriber: str, complaint: str) -> None:  # noqa: F811
    reply = api.post("/v2/queues/orders/subscriptions", {"subscriber": subscriber})
    assert reply.status == 400 and complaint in reply.json["description"]
