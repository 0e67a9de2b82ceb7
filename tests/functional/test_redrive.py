"""Dead-letter redrive (beyond upstream, as SQS's): dead letters remember the queue they left and move back
to it (or to a destination), claimable again with a fresh claim count, body, attributes and ttl kept, each
exactly once, also when a call dies halfway and is made again."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import errors
from chalicelib.api import messages
from tests.functional.conftest import Api
from tests.functional.test_websocket import Ws, fake_management, management, ws  # noqa: F401 - fixtures


def _dead_lettered(api: Api, *bodies: Any, queue: str = "work") -> list[str]:
    """Messages of ``queue`` claimed once too often: in its dead-letter queue ``dead`` now."""
    api.put(f"/v2/queues/{queue}", {"_dead_letter_queue": "dead", "_max_claim_count": 1,
                                    "_dead_letter_queue_messages_ttl": 600})
    reply = api.post(f"/v2/queues/{queue}/messages",
                     {"messages": [{"body": b, "attributes": {"n": i}} for i, b in enumerate(bodies)]})
    ids = [href.rsplit("/", 1)[1] for href in reply.json["resources"]]
    _claim_and_release(api, queue)
    assert api.post(f"/v2/queues/{queue}/claims?limit=20").status == 204  # over the count: they leave
    assert _total(api, "dead") == len(bodies) and _total(api, queue) == 0
    return ids


def _total(api: Api, queue: str) -> int:
    return int(api.get(f"/v2/queues/{queue}/stats").json["messages"]["total"])


def _bodies(api: Api, queue: str) -> list[Any]:
    return sorted(str(m["body"]) for m in api.get(f"/v2/queues/{queue}/messages?echo=true&limit=20").json["messages"])


def test_redrive_moves_every_dead_letter_back_claimable_with_a_fresh_count(api: Api) -> None:
    _dead_lettered(api, "a", {"b": 1}, ["c"])
    reply = api.post("/v2/queues/dead/redrive")
    assert (reply.status, reply.json) == (200, {"moved": 3})
    assert _total(api, "dead") == 0
    claimed = api.post("/v2/queues/work/claims?limit=20", {"ttl": 60}).json["messages"]
    assert sorted(str(m["body"]) for m in claimed) == sorted(["a", "{'b': 1}", "['c']"])
    assert sorted(m["attributes"]["n"] for m in claimed) == [0, 1, 2]
    assert all(m["ttl"] <= 600 for m in claimed)
    assert api.post("/v2/queues/dead/redrive").json == {"moved": 0}  # nothing twice


def test_each_dead_letter_goes_back_to_its_own_queue_or_all_to_the_destination(api: Api) -> None:
    _dead_lettered(api, "from-a", queue="a")
    _dead_lettered_more(api, "from-b", queue="b")
    assert api.post("/v2/queues/dead/redrive", {"limit": 1}).json == {"moved": 1}
    assert api.post("/v2/queues/dead/redrive").json == {"moved": 1}
    assert (_bodies(api, "a"), _bodies(api, "b")) == (["from-a"], ["from-b"])
    for queue in ("a", "b"):  # over the count again
        _claim_and_release(api, queue)
        assert api.post(f"/v2/queues/{queue}/claims?limit=5").status == 204
    assert _total(api, "dead") == 2
    assert api.post("/v2/queues/dead/redrive", {"destination": "elsewhere"}).json == {"moved": 2}
    assert _bodies(api, "elsewhere") == ["from-a", "from-b"]


def _claim_and_release(api: Api, queue: str) -> None:
    first = api.post(f"/v2/queues/{queue}/claims?limit=20", {"ttl": 60})
    api.delete(f"/v2/queues/{queue}/claims/{first.headers['location'].rsplit('/', 1)[1]}")


def _dead_lettered_more(api: Api, body: str, *, queue: str) -> None:
    """Like _dead_lettered, into a dead-letter queue that already holds others."""
    before = _total(api, "dead")
    api.put(f"/v2/queues/{queue}", {"_dead_letter_queue": "dead", "_max_claim_count": 1,
                                    "_dead_letter_queue_messages_ttl": 600})
    api.post(f"/v2/queues/{queue}/messages", {"messages": [{"body": body}]})
    _claim_and_release(api, queue)
    api.post(f"/v2/queues/{queue}/claims")
    assert _total(api, "dead") == before + 1


def test_a_redrive_that_dies_halfway_moves_each_message_once_when_made_again(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    _dead_lettered(api, "one", "two", "three", "four")
    real_delete = messages.message_delete
    calls = {"n": 0}

    def dying(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:  # the third message was posted back, the process dies before its deletion
            raise errors.Unavailable("the pool went away")
        return real_delete(*args, **kwargs)

    monkeypatch.setattr(messages, "message_delete", dying)
    assert api.post("/v2/queues/dead/redrive").status == 503
    monkeypatch.setattr(messages, "message_delete", real_delete)
    assert _total(api, "work") == 3 and _total(api, "dead") == 2  # one is in both places for now
    # its claim still holds the rest until it expires; a new call after that finishes the move
    for claim in _claims_of(api, "dead"):
        api.delete(f"/v2/queues/dead/claims/{claim}")
    assert api.post("/v2/queues/dead/redrive").json == {"moved": 2}
    assert _bodies(api, "work") == ["four", "one", "three", "two"]
    assert _total(api, "dead") == 0


def _claims_of(api: Api, queue: str) -> set[str]:
    listed = api.get(f"/v2/queues/{queue}/messages?echo=true&include_claimed=true").json["messages"]
    return {m["href"].split("claim_id=")[1] for m in listed if "claim_id=" in m["href"]}


def test_messages_of_unknown_origin_need_a_destination(api: Api) -> None:
    api.post("/v2/queues/dead/messages", {"messages": [{"body": "posted here"}]})
    assert api.post("/v2/queues/dead/redrive").json == {"moved": 0}
    assert _total(api, "dead") == 1
    assert api.post("/v2/queues/dead/redrive", {"destination": "work"}).json == {"moved": 1}
    assert _bodies(api, "work") == ["posted here"]


@pytest.mark.parametrize(("body", "complaint"), [
    ({"destination": "dead"}, "another queue than dead"),
    ({"limit": 0}, "limit must be between 1 and 1000"),
    ({"destination": "bad name"}, "destination must be"),
    ({"where": "x"}, "has no"),
])
def test_bad_redrives_are_a_400(api: Api, body: dict[str, Any], complaint: str) -> None:
    reply = api.post("/v2/queues/dead/redrive", body)
    assert reply.status == 400 and complaint in reply.json["description"], reply.raw


def test_the_websocket_redrives_too(api: Api, ws: Ws) -> None:  # noqa: F811
    _dead_lettered(api, "x", "y")
    assert ws("queue_redrive", {"queue_name": "dead", "limit": 1}) == (200, {"moved": 1})
    assert ws("queue_redrive", {"queue_name": "dead"}) == (200, {"moved": 1})
    assert ws("queue_redrive", {"queue_name": "dead", "destination": "dead"})[0] == 400
    assert _bodies(api, "work") == ["x", "y"]
