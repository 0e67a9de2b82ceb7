"""The Lua scripts' wrappers (chalicelib/storage/redis/scripts.py) against the scripts themselves, run on the
real Redis (one queue of a test's own project, whose keys the ``project`` fixture deletes)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from chalicelib.storage import base
from chalicelib.storage.redis import keys, scripts
from chalicelib.storage.redis.driver import connect

pytestmark = pytest.mark.redis

LUA = Path(scripts.__file__).with_name("lua")


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    client = connect(redis_url)
    yield client
    client.close()


@pytest.fixture
def run(client: Any) -> scripts.Run:
    registered = {script: client.register_script(script.source) for script in scripts.ALL}

    def run(script: scripts.Lua, names: Sequence[str], args: Sequence[scripts.Arg]) -> Any:
        return registered[script](keys=list(names), args=list(args))

    return run


@pytest.fixture
def q(project: str) -> keys.QueueKeys:
    return keys.queue_keys(project, "q")


def _create(run: scripts.Run, q: keys.QueueKeys, **settings: Any) -> None:
    assert scripts.queue_put(run, q, mode="create", metadata={}, settings=base.QueueSettings(**settings),
                             event_id=None)


def _post(run: scripts.Run, q: keys.QueueKeys, *messages: base.NewMessage, **options: Any) -> base.Posted:
    arguments: dict[str, Any] = {"create": True, "client_id": "me", "encrypted": False, "request_size": 10,
                                 "default_ttl": 300, "event_id": None, "stream_all": False, **options}
    posted = scripts.post(run, q, messages=messages, **arguments)
    assert isinstance(posted, base.Posted)
    return posted


def _message(mid: str, ttl: int | None = None, delay: int | None = None) -> base.NewMessage:
    return base.NewMessage(id=mid, body=json.dumps({"n": mid}), ttl=ttl, delay=delay)


# -- the scripts and the wrappers agree on what there is --------------------


def test_every_lua_file_is_one_script_and_only_unflag_goes_without_the_prelude() -> None:
    names = [script.name for script in scripts.ALL]
    assert sorted(names) == sorted(path.stem for path in LUA.glob("*.lua") if not path.stem.startswith("_"))
    assert len(set(names)) == len(names)
    prelude = (LUA / "_common.lua").read_text()
    assert [s.name for s in scripts.ALL if not s.source.startswith(prelude)] == ["unflag"]


def test_read_only_scripts_write_nothing_of_their_own() -> None:
    """What never waits for replicas may only reclaim expired data (the prelude's housekeep)."""
    writes = re.compile(r"redis\.call\('(HSET|HDEL|HINCRBY|ZADD|ZREM|DEL|SET|EXPIRE)'|\brecord(_data)?\(|\bdrop\(")
    read_only = [script for script in scripts.ALL if script.read_only]
    assert {s.name for s in read_only} == {"list", "get_many", "claim_get", "stats"}
    for script in read_only:
        assert not writes.search((LUA / f"{script.name}.lua").read_text()), script.name


def test_record_fields_are_the_fields_emit_appends_in_its_order() -> None:
    common = (LUA / "_common.lua").read_text()
    emit = common[common.index("local function emit(") : common.index("\nend\n", common.index("local function emit("))]
    slots = {int(n): value for n, value in re.findall(r"out\[n \+ (\d+)\] = (.+)", emit)}
    named = {"id": "id", "redis.call('HGET', K_B, id) or ''": "body"}
    fields = [named.get(slots[n]) or slots[n].removeprefix("rec.") for n in sorted(slots)]
    assert tuple(fields) == scripts.RECORD_FIELDS


def test_a_reply_tail_of_no_whole_number_of_records_is_refused() -> None:
    with pytest.raises(ValueError, match="11-field"):
        scripts.records(["x"] * (len(scripts.RECORD_FIELDS) + 1))


# -- queues ------------------------------------------------------------------


def test_queue_put_delete_and_purge_tell_whether_the_queue_was_there(run: scripts.Run, q: keys.QueueKeys) -> None:
    settings = base.QueueSettings()
    assert not scripts.queue_put(run, q, mode="update", metadata={}, settings=settings, event_id=None)
    assert not scripts.purge(run, q, event_id=None, resource_types=["messages"])
    assert scripts.queue_put(run, q, mode="create", metadata={"a": 1}, settings=settings, event_id=None)
    assert not scripts.queue_put(run, q, mode="create", metadata={}, settings=settings, event_id=None)
    assert scripts.queue_put(run, q, mode="update", metadata={"a": 2}, settings=settings, event_id=None)
    assert scripts.purge(run, q, event_id=None, resource_types=["messages"])
    assert scripts.queue_delete(run, q, event_id=None)
    assert not scripts.queue_delete(run, q, event_id=None)


def test_queue_settings_go_to_their_hash_fields(run: scripts.Run, client: Any, q: keys.QueueKeys) -> None:
    _create(run, q, default_ttl=60, max_claim_count=3, dead_letter_queue="dlq", encrypted=True)
    assert client.hmget(q.q, ["s.ttl", "s.maxcc", "s.dlq", "s.enc", "s.delay"]) == ["60", "3", "dlq", "1", None]


def test_stats_count_and_name_the_oldest_and_newest(run: scripts.Run, q: keys.QueueKeys) -> None:
    assert scripts.stats(run, q).oldest is None
    _post(run, q, _message("a"), _message("b"), _message("c"))
    scripts.claim(run, q, claim_id="c1", ttl=30, grace=30, limit=1, scan_budget=100, event_id=None)
    stats = scripts.stats(run, q)
    assert (stats.total, stats.claimed) == (3, 1)
    assert stats.oldest is not None and stats.newest is not None
    assert (stats.oldest.id, stats.newest.id) == ("a", "c")
    assert stats.oldest.claim_id == "c1" and stats.newest.claim_id is None


# -- messages ------------------------------------------------------------------


def test_post_replies_each_message_with_the_queue_defaults_applied(run: scripts.Run, q: keys.QueueKeys) -> None:
    _create(run, q, default_ttl=120, default_delay=5)
    posted = _post(run, q, _message("a"), _message("b", ttl=60), _message("c", delay=0), default_ttl=300)
    assert posted.ids == ["a", "b", "c"]
    assert posted.effective == [(120, 5), (60, 5), (120, 0)]
    assert posted.now_ms > 0 and not posted.event_stored and posted.pending is None


def test_post_refusals_are_named_with_the_limit_when_too_large(
    run: scripts.Run, project: str, q: keys.QueueKeys
) -> None:
    assert scripts.post(run, q, create=False, client_id="me", encrypted=False, request_size=10, default_ttl=300,
                        event_id=None, stream_all=False, messages=[_message("a")]) == scripts.PostRefused("missing")
    _create(run, q, max_post_size=100)
    too_large = scripts.post(run, q, create=False, client_id="me", encrypted=False, request_size=101,
                             default_ttl=300, event_id=None, stream_all=False, messages=[_message("a")])
    assert too_large == scripts.PostRefused("too_large", limit=100)
    secret = keys.queue_keys(project, "secret")
    _create(run, secret, encrypted=True)
    assert scripts.post(run, secret, create=False, client_id="me", encrypted=False, request_size=10,
                        default_ttl=300, event_id=None, stream_all=False,
                        messages=[_message("a")]) == scripts.PostRefused("encrypt")


def test_a_streamed_post_hands_back_the_outbox_it_leased(run: scripts.Run, q: keys.QueueKeys) -> None:
    posted = _post(run, q, _message("a", ttl=60), _message("b", delay=2), event_id="ev1", stream_all=True)
    assert posted.event_stored and posted.pending is not None
    events = [base.StoredEvent.from_json(entry) for entry in posted.pending]
    assert [(e.id, e.kind, e.sequence) for e in events] == [("ev1-q", "queue.created", 1),
                                                            ("ev1", "message.posted", 2)]
    assert events[1].posted is not None
    assert [(m.id, m.ttl, m.delay) for m in events[1].posted.messages] == [("a", 60, 0), ("b", 300, 2)]
    assert scripts.outbox_lease(run, q, holder="someone else") is None  # the post's event id holds the lease


def test_list_pages_with_markers_and_filters(run: scripts.Run, q: keys.QueueKeys) -> None:
    _post(run, q, _message("a"), _message("b"), _message("c"), _message("later", delay=60))

    def page(**options: Any) -> base.Page[base.MessageRecord]:
        arguments: dict[str, Any] = {"marker": None, "limit": 10, "client_id": "other", "echo": False,
                                     "include_claimed": False, "include_delayed": False, "scan_budget": 100,
                                     **options}
        return scripts.list_(run, q, **arguments)

    assert page(client_id="me").items == []  # no echo: the poster's own are left out
    first = page(limit=2)
    assert [m.id for m in first.items] == ["a", "b"]
    assert [m.marker for m in first.items] == [1, 2]
    assert first.next_marker == "2"
    rest = page(marker=first.next_marker)
    assert [m.id for m in rest.items] == ["c"] and rest.next_marker == "3"
    delayed = page(include_delayed=True).items
    assert [m.id for m in delayed] == ["a", "b", "c", "later"]
    assert delayed[-1].delay_until_ms == delayed[-1].created_ms + 60_000
    assert page(marker="4").next_marker is None


def test_get_many_parses_every_field_of_a_record(run: scripts.Run, client: Any, q: keys.QueueKeys) -> None:
    posted = _post(run, q, _message("a", ttl=60), _message("b"))
    got = scripts.get_many(run, q, ids=["b", "missing", "a"])
    assert [m.id for m in got.items] == ["b", "a"]
    a = got.items[1]
    assert a == base.MessageRecord(
        id="a", marker=1, ttl=60, created_ms=a.created_ms, expires_ms=a.created_ms + 60_000, body='{"n": "a"}',
        encrypted=False, claim_id=None, claim_expires_ms=0, claim_count=0, delay_until_ms=0,
    )
    assert a.created_ms == posted.now_ms <= got.now_ms


def test_a_record_parses_the_same_from_a_reply_and_from_its_json(
    run: scripts.Run, client: Any, q: keys.QueueKeys
) -> None:
    _post(run, q, _message("a"), encrypted=True)
    claimed = scripts.claim(run, q, claim_id="c1", ttl=30, grace=30, limit=1, scan_budget=100, event_id=None)
    [from_reply] = scripts.get_many(run, q, ids=["a"]).items
    assert from_reply == claimed.items[0]
    assert (from_reply.claim_id, from_reply.claim_count, from_reply.encrypted) == ("c1", 1, True)
    assert from_reply.claim_expires_ms == claimed.now_ms + 30_000
    assert scripts.record_from_json("a", client.hget(q.r, "a"), client.hget(q.b, "a")) == from_reply


def test_delete_names_its_outcome(run: scripts.Run, q: keys.QueueKeys) -> None:
    _post(run, q, _message("a"), _message("b"), _message("c"))
    scripts.claim(run, q, claim_id="c1", ttl=30, grace=30, limit=1, scan_budget=100, event_id=None)

    def delete(claim_id: str | None) -> scripts.DeleteOutcome:
        return scripts.delete(run, q, message_id="a", claim_id=claim_id, event_id=None)

    assert delete(None) == "claimed"
    assert delete("c2") == "not_claimed"
    assert delete("c1") == "ok"
    assert delete(None) == "ok"  # gone already
    assert scripts.delete_many(run, q, ids=["a", "b", "c", "d"], event_id=None) == 2


# -- claims ------------------------------------------------------------------


def test_claim_get_update_and_delete(run: scripts.Run, q: keys.QueueKeys) -> None:
    assert scripts.claim_get(run, q, claim_id="c1") is None
    assert not scripts.claim_update(run, q, claim_id="c1", ttl=60, grace=10, event_id=None)
    _post(run, q, _message("a"), _message("b"))
    claimed = scripts.claim(run, q, claim_id="c1", ttl=30, grace=20, limit=5, scan_budget=100, event_id=None)
    assert claimed.dead_ids == [] and [m.id for m in claimed.items] == ["a", "b"]
    claim = scripts.claim_get(run, q, claim_id="c1")
    assert claim is not None
    assert (claim.id, claim.ttl, claim.grace, claim.created_ms) == ("c1", 30, 20, claimed.now_ms)
    assert claim.items == claimed.items
    assert scripts.claim_update(run, q, claim_id="c1", ttl=60, grace=10, event_id=None)
    renewed = scripts.claim_get(run, q, claim_id="c1")
    assert renewed is not None and (renewed.ttl, renewed.grace) == (60, 10)
    assert scripts.claim_delete(run, q, claim_id="c1", event_id=None)
    assert not scripts.claim_delete(run, q, claim_id="c1", event_id=None)
    assert scripts.claim_get(run, q, claim_id="c1") is None


def test_a_claim_names_the_dead_letters_it_moved_and_they_parse(
    run: scripts.Run, client: Any, q: keys.QueueKeys
) -> None:
    _create(run, q, dead_letter_queue="dlq", max_claim_count=1, dead_letter_ttl=90)
    _post(run, q, _message("a"), _message("b"))
    first = scripts.claim(run, q, claim_id="c1", ttl=30, grace=0, limit=5, scan_budget=100, event_id=None)
    scripts.claim_delete(run, q, claim_id="c1", event_id=None)
    again = scripts.claim(run, q, claim_id="c2", ttl=30, grace=0, limit=5, scan_budget=100, event_id=None)
    assert again.dead_ids == ["a", "b"] and again.items == []
    letter = json.loads(client.hget(q.x, "a"))
    assert (letter["q"], letter["t"]) == ("dlq", "90")
    moved = scripts.record_from_json("a", letter["r"], letter["b"])
    assert moved.id == "a" and moved.body == '{"n": "a"}' and moved.claim_count == 1
    assert (moved.marker, moved.created_ms) == (first.items[0].marker, first.items[0].created_ms)


def test_pop_returns_and_removes_the_oldest(run: scripts.Run, q: keys.QueueKeys) -> None:
    _post(run, q, _message("a"), _message("b"), _message("c"))
    popped = scripts.pop(run, q, limit=2, scan_budget=100, event_id=None)
    assert [m.id for m in popped.items] == ["a", "b"] and popped.items[0].claim_count == 1
    assert [m.id for m in scripts.get_many(run, q, ids=["a", "b", "c"]).items] == ["c"]


def test_dead_letters_are_accepted_once(run: scripts.Run, project: str) -> None:
    target = keys.queue_keys(project, "dlq")
    record = base.MessageRecord(id="m1", marker=7, ttl=60, created_ms=1, expires_ms=2, body='"x"', encrypted=False,
                                claim_count=3)
    letters = [base.DeadLetter(record=record, target="dlq", ttl=90)]
    assert scripts.dead_letter_accept(run, target, letters=letters) == 1
    assert scripts.dead_letter_accept(run, target, letters=letters) == 0
    [accepted] = scripts.get_many(run, target, ids=["m1"]).items
    assert (accepted.marker, accepted.ttl, accepted.claim_count, accepted.body) == (1, 90, 0, '"x"')


# -- subscribers, the outbox and housekeeping ----------------------------------


def test_listen_bumps_the_generation_a_lowering_must_match(run: scripts.Run, q: keys.QueueKeys) -> None:
    assert scripts.listen(run, q, until_ms=1000) == 1
    assert scripts.listen(run, q, until_ms=500) == 2
    assert not scripts.listen_lower(run, q, until_ms=100, generation=1)
    assert scripts.listen_lower(run, q, until_ms=100, generation=2)


def test_the_outbox_lease_tells_none_from_nothing(run: scripts.Run, q: keys.QueueKeys) -> None:
    scripts.outbox_record(run, q, event_id="e1", kind="subscription.created", data={"id": "s"})
    taken = scripts.outbox_lease(run, q, holder="h1")
    assert taken is not None
    [event] = [base.StoredEvent.from_json(entry) for entry in taken]
    assert (event.id, event.kind, event.data) == ("e1", "subscription.created", {"id": "s"})
    assert scripts.outbox_lease(run, q, holder="h2") is None  # h1's lease is live
    assert scripts.outbox_release(run, q, holder="h1", published=["e1"], keep=True) == []
    assert scripts.outbox_lease(run, q, holder="h2") == []  # free, and nothing to publish


def test_gc_counts_what_it_reclaimed_and_notices_a_stale_outbox(
    run: scripts.Run, client: Any, q: keys.QueueKeys
) -> None:
    _post(run, q, _message("a"), _message("b"))
    client.zadd(q.e, {"a": 0})  # as if it expired
    collected = scripts.gc(run, q, budget=100, stale_before_ms=0)
    assert collected == scripts.Collected(reclaimed=1, stale=False)
    scripts.outbox_record(run, q, event_id="e1", kind="queue.updated", data={})
    assert not scripts.gc(run, q, budget=100, stale_before_ms=0).stale
    assert scripts.gc(run, q, budget=100, stale_before_ms=2**50).stale


def test_unflag_only_when_the_score_is_the_one_read(run: scripts.Run, client: Any, project: str) -> None:
    member = keys.tag_body(project, "q")
    client.zadd(keys.OUTBOXES, {member: 5})
    assert not scripts.unflag(run, project=project, queue="q", since_ms=4)
    assert client.zscore(keys.OUTBOXES, member) == 5
    assert scripts.unflag(run, project=project, queue="q", since_ms=5)
    assert client.zscore(keys.OUTBOXES, member) is None
