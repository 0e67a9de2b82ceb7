"""The fan-out's choice of deliveries for a message.posted event (chalicelib.notify.fanout.jobs): filter
policies per (subscription, message), one hop for forwarded messages, and a subscription whose stored
policy cannot be used costing nobody else their deliveries."""

from __future__ import annotations

from typing import Any

from chalicelib.events.model import Event
from chalicelib.notify import fanout
from chalicelib.storage.base import Subscription


def _subscription(sid: str, subscriber: str, **options: Any) -> Subscription:
    return Subscription(id=sid, project="p", queue="q", subscriber=subscriber, ttl=3600, options=options,
                        created_ms=0, expires_ms=2**45, confirmed=True, connection=None)


def _event(*messages: dict[str, Any]) -> Event:
    return Event("message.posted", "p", "q", {"messages": list(messages), "encrypted": False}, time_ms=1000)


def _chosen(event: Event, *subscriptions: Subscription) -> list[tuple[str, Any]]:
    planned = fanout.jobs(event, lambda: list(subscriptions), now_ms=1000, require_confirmation=False)
    return [(p.job.subscription_id, p.job.message["id"]) for p in planned]


def test_each_subscription_gets_the_messages_its_policy_matches() -> None:
    red = _subscription("red", "http://h/red", filter_policy={"color": ["red"]})
    body = _subscription("big", "http://h/big", filter_policy_scope="MessageBody",
                         filter_policy={"n": [{"numeric": [">", 5]}]})
    every = _subscription("all", "http://h/all")
    event = _event({"id": "m1", "body": {"n": 9}, "attributes": {"color": "red"}},
                   {"id": "m2", "body": {"n": 1}, "attributes": {"color": "blue"}},
                   {"id": "m3", "body": "text"})
    assert _chosen(event, red, body, every) == [("red", "m1"), ("big", "m1"), ("all", "m1"), ("all", "m2"),
                                                ("all", "m3")]


def test_a_forwarded_message_goes_to_webhooks_but_not_to_another_queue() -> None:
    hook = _subscription("hook", "http://h/x")
    onward = _subscription("onward", "queue:next")
    event = _event({"id": "fresh", "body": 1}, {"id": "forwarded", "body": 2, "via": "queues/first"})
    assert _chosen(event, hook, onward) == [("hook", "fresh"), ("hook", "forwarded"), ("onward", "fresh")]


def test_an_unusable_stored_policy_costs_only_its_own_subscription() -> None:
    broken = _subscription("broken", "http://h/b", filter_policy={"color": "not an array"})
    fine = _subscription("fine", "http://h/f", filter_policy={"color": ["red"]})
    event = _event({"id": "m1", "body": 0, "attributes": {"color": "red"}})
    assert _chosen(event, broken, fine) == [("fine", "m1")]
