"""The driver contract, run against every pool driver.

A driver is done when this suite passes on it. Each test builds what it
needs in a project of its own (Given), does one thing (When) and checks
what the contract promises (Then).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import pytest

from chalicelib import errors
from chalicelib.storage import base
from chalicelib.storage.base import MessageStore, NewMessage, QueueSettings
from tests.leases import expire_lease

Q = "orders"


MONGODB_URL = os.environ.get("MONGODB_URL")


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis, id="redis"),
        pytest.param("redis-cluster", marks=pytest.mark.redis, id="redis-cluster"),
        pytest.param("redis-cluster-wait", marks=pytest.mark.redis, id="redis-cluster-wait"),
        pytest.param("mongomock", marks=pytest.mark.mongodb, id="mongodb-mongomock"),
        pytest.param("mongodb-wire", marks=pytest.mark.mongodb, id="mongodb-wire"),
        pytest.param("mongodb-wire-transactions", marks=pytest.mark.mongodb, id="mongodb-wire-transactions"),
        pytest.param("mongodb", marks=[pytest.mark.mongodb, pytest.mark.skipif(
            not MONGODB_URL, reason="set MONGODB_URL to run the contract on a real MongoDB")], id="mongodb"),
    ]
)
def store(request: pytest.FixtureRequest) -> Iterator[MessageStore]:
    driver: MessageStore
    if request.param.startswith("redis"):
        from chalicelib.storage.redis.driver import RedisStore

        fixture = {"redis": "redis_url", "redis-cluster": "redis_cluster_url",
                   "redis-cluster-wait": "replicated_cluster_url"}[request.param]
        driver = RedisStore(request.getfixturevalue(fixture))
    else:
        import mongomock

        from chalicelib.storage.mongodb.driver import MongoStore

        database = f"zaqar_test_{uuid.uuid4().hex[:8]}"  # a database of the test's own, dropped after
        client = mongomock.MongoClient() if request.param == "mongomock" else None
        wire = request.param.startswith("mongodb-wire")
        url = f"{request.getfixturevalue('wire_mongodb_url')}/?directConnection=true" if wire else MONGODB_URL
        # transactions forced on the wire-protocol server (a standalone: they would be off), so that every
        # change runs inside one with its event as on a replica set
        driver = MongoStore(url, client=client, database=database, unreliable=True,
                            transactions=True if request.param == "mongodb-wire-transactions" else None)
        yield driver
        (client or driver._client).drop_database(database)
        driver.close()
        return
    yield driver
    driver.close()


def post(store: MessageStore, project: str, bodies: list[str], *, queue: str = Q, client: str = "producer",
         ttl: int | None = None, delay: int | None = None) -> list[str]:
    messages = [NewMessage(uuid.uuid4().hex, body, ttl, delay) for body in bodies]
    return store.message_post(
        project=project, queue=queue, messages=messages, client_id=client, create=True, encrypted=False,
        request_size=100, default_ttl=3600, event_id=uuid.uuid4().hex,
    ).ids


def listing(store: MessageStore, project: str, *, limit: int = 20, marker: str | None = None, client: str = "reader",
            echo: bool = False, claimed: bool = False, delayed: bool = False) -> base.Page[base.MessageRecord]:
    return store.message_list(project=project, queue=Q, marker=marker, limit=limit, client_id=client, echo=echo,
                              include_claimed=claimed, include_delayed=delayed)


def bodies(records: list[base.MessageRecord]) -> list[str]:
    return [r.body for r in records]


def claim(store: MessageStore, project: str, limit: int, *, ttl: int = 60, grace: int = 60) -> base.ClaimResult:
    return store.claim_create(project=project, queue=Q, claim_id=uuid.uuid4().hex, ttl=ttl, grace=grace, limit=limit)


# -- queues ---------------------------------------------------------------------


def test_queue_create_is_refused_when_the_queue_exists_and_keeps_the_first_metadata(store: MessageStore, project: str) -> None:
    assert store.queue_create(project=project, queue=Q, metadata={"a": 1}, settings=QueueSettings())
    assert not store.queue_create(project=project, queue=Q, metadata={"a": 2}, settings=QueueSettings())
    assert store.queue_get(project=project, queue=Q) == {"a": 1}


def test_queue_set_replaces_metadata_only_of_an_existing_queue(store: MessageStore, project: str) -> None:
    assert not store.queue_set(project=project, queue=Q, metadata={"a": 1}, settings=QueueSettings())
    assert store.queue_get(project=project, queue=Q) is None
    store.queue_create(project=project, queue=Q, metadata={"a": 1}, settings=QueueSettings())
    assert store.queue_set(project=project, queue=Q, metadata={"b": [1, {}]}, settings=QueueSettings())
    assert store.queue_get_many(project=project, queues=[Q, "other"]) == [{"b": [1, {}]}, None]


def test_queue_delete_removes_messages_and_claims(store: MessageStore, project: str) -> None:
    post(store, project, ['"a"', '"b"'])
    held = claim(store, project, 1)
    store.queue_delete(project=project, queue=Q)
    assert store.queue_get(project=project, queue=Q) is None
    assert listing(store, project, claimed=True).items == []
    assert store.claim_get(project=project, queue=Q, claim_id=held.claim_id) is None
    assert store.queue_stats(project=project, queue=Q).total == 0


def test_purge_removes_every_message_and_keeps_the_metadata(store: MessageStore, project: str) -> None:
    store.queue_create(project=project, queue=Q, metadata={"keep": True}, settings=QueueSettings())
    post(store, project, ['"a"', '"b"', '"c"'])
    claim(store, project, 2)
    store.queue_purge(project=project, queue=Q)
    assert store.queue_stats(project=project, queue=Q).total == 0
    assert store.queue_get(project=project, queue=Q) == {"keep": True}


def test_projects_with_the_same_queue_name_never_see_each_other(store: MessageStore, project: str) -> None:
    tricky = project + "}/" + Q + "{"
    post(store, project, ['"mine"'])
    post(store, tricky, ['"theirs"'])
    try:
        assert bodies(listing(store, project).items) == ['"mine"']
        assert bodies(listing(store, tricky).items) == ['"theirs"']
    finally:
        store.queue_delete(project=tricky, queue=Q)


# -- posting and listing -----------------------------------------------------------


def test_post_to_a_missing_queue_without_create_stores_nothing(store: MessageStore, project: str) -> None:
    with pytest.raises(base.QueueMissing):
        store.message_post(project=project, queue=Q, messages=[NewMessage("m1", '"x"', None, None)], client_id="c",
                           create=False, encrypted=False, request_size=10, default_ttl=3600, event_id="e")
    assert store.queue_get(project=project, queue=Q) is None


def test_post_to_an_encrypting_queue_requires_encrypted_bodies(store: MessageStore, project: str) -> None:
    store.queue_create(project=project, queue=Q, metadata={}, settings=QueueSettings(encrypted=True))
    with pytest.raises(base.EncryptionRequired):
        post(store, project, ['"clear"'])
    assert listing(store, project).items == []


def test_post_larger_than_the_queue_limit_is_refused_whole(store: MessageStore, project: str) -> None:
    store.queue_create(project=project, queue=Q, metadata={}, settings=QueueSettings(max_post_size=50))
    with pytest.raises(base.PostTooLarge) as raised:
        store.message_post(project=project, queue=Q, messages=[NewMessage("m1", '"x"', None, None)], client_id="c",
                           create=False, encrypted=False, request_size=51, default_ttl=3600, event_id="e")
    assert raised.value.limit == 50
    assert store.queue_stats(project=project, queue=Q).total == 0


def test_queue_defaults_apply_to_messages_without_ttl_or_delay(store: MessageStore, project: str) -> None:
    store.queue_create(project=project, queue=Q, metadata={}, settings=QueueSettings(default_ttl=120))
    ids = post(store, project, ['"a"'])
    post(store, project, ['"b"'], ttl=90)
    records = listing(store, project).items
    assert [r.ttl for r in records] == [120, 90]
    assert records[0].id == ids[0]


def test_listing_pages_through_every_message_once_in_post_order(store: MessageStore, project: str) -> None:
    expected = [f'"m{i}"' for i in range(23)]
    for start in range(0, 23, 5):
        post(store, project, expected[start:start + 5])
    seen: list[str] = []
    marker = None
    while True:
        page = listing(store, project, limit=4, marker=marker)
        if not page.items:
            break
        seen += bodies(page.items)
        marker = page.next_marker
    assert seen == expected


def test_echo_filtered_pages_are_full_while_more_messages_match(store: MessageStore, project: str) -> None:
    post(store, project, [f'"own{i}"' for i in range(30)], client="me")
    post(store, project, [f'"other{i}"' for i in range(5)], client="you")
    page = listing(store, project, limit=5, client="me")
    assert bodies(page.items) == [f'"other{i}"' for i in range(5)]
    assert len(listing(store, project, limit=20, client="me", echo=True).items) == 20


def test_claimed_messages_are_listed_only_when_asked(store: MessageStore, project: str) -> None:
    post(store, project, ['"a"', '"b"', '"c"'])
    held = claim(store, project, 2)
    assert bodies(listing(store, project).items) == ['"c"']
    with_claimed = listing(store, project, claimed=True).items
    assert bodies(with_claimed) == ['"a"', '"b"', '"c"']
    assert [r.claim_id for r in with_claimed[:2]] == [held.claim_id] * 2


def test_delayed_messages_stay_hidden_and_unclaimable_until_due(store: MessageStore, project: str) -> None:
    post(store, project, ['"later"'], delay=1)
    post(store, project, ['"now"'])
    assert bodies(listing(store, project).items) == ['"now"']
    assert bodies(listing(store, project, delayed=True).items) == ['"later"', '"now"']
    assert bodies(claim(store, project, 5).items) == ['"now"']
    time.sleep(1.1)
    assert bodies(claim(store, project, 5).items) == ['"later"']


def test_expired_messages_are_invisible_everywhere_and_reclaimed(store: MessageStore, project: str) -> None:
    ids = post(store, project, ['"short"'], ttl=1)
    post(store, project, ['"long"'])
    time.sleep(1.1)
    assert bodies(listing(store, project, claimed=True, delayed=True).items) == ['"long"']
    assert store.message_get_many(project=project, queue=Q, ids=ids).items == []
    assert bodies(claim(store, project, 5).items) == ['"long"']
    assert store.queue_stats(project=project, queue=Q).total == 1


def test_get_many_returns_found_messages_in_the_order_asked(store: MessageStore, project: str) -> None:
    a, b = post(store, project, ['"a"', '"b"'])
    found = store.message_get_many(project=project, queue=Q, ids=[b, "nope", a])
    assert [r.id for r in found.items] == [b, a]


# -- deleting ------------------------------------------------------------------------


def test_deleting_a_claimed_message_needs_its_own_live_claim(store: MessageStore, project: str) -> None:
    (mid,) = post(store, project, ['"a"'])
    held = claim(store, project, 1)
    with pytest.raises(errors.MessageIsClaimed):
        store.message_delete(project=project, queue=Q, message_id=mid, claim_id=None)
    with pytest.raises(errors.MessageNotClaimed):  # upstream: 400 for a claim id that does not match
        store.message_delete(project=project, queue=Q, message_id=mid, claim_id="someone-else")
    store.message_delete(project=project, queue=Q, message_id=mid, claim_id=held.claim_id)
    assert store.message_get_many(project=project, queue=Q, ids=[mid]).items == []


def test_deleting_with_a_claim_id_an_unclaimed_message_is_refused(store: MessageStore, project: str) -> None:
    (mid,) = post(store, project, ['"a"'])
    with pytest.raises(errors.MessageNotClaimed):
        store.message_delete(project=project, queue=Q, message_id=mid, claim_id=uuid.uuid4().hex)
    assert len(store.message_get_many(project=project, queue=Q, ids=[mid]).items) == 1
    store.message_delete(project=project, queue=Q, message_id=mid, claim_id=None)
    store.message_delete(project=project, queue=Q, message_id=mid, claim_id=None)  # gone: still fine


def test_delete_many_ignores_claims_and_unknown_ids(store: MessageStore, project: str) -> None:
    a, b, _c = post(store, project, ['"a"', '"b"', '"c"'])
    claim(store, project, 1)
    assert store.message_delete_many(project=project, queue=Q, ids=[a, b, "unknown"]) == 2
    assert bodies(listing(store, project, claimed=True).items) == ['"c"']


def test_pop_removes_and_returns_the_oldest_claimable_messages(store: MessageStore, project: str) -> None:
    post(store, project, ['"a"', '"b"', '"c"', '"d"'])
    claim(store, project, 1)
    popped = store.message_pop(project=project, queue=Q, limit=2)
    assert bodies(popped.items) == ['"b"', '"c"']
    assert bodies(listing(store, project, claimed=True).items) == ['"a"', '"d"']


# -- claims ------------------------------------------------------------------------------


def test_a_message_released_early_is_never_handed_out_while_a_later_claim_holds_others(
    store: MessageStore, project: str
) -> None:
    post(store, project, [f'"m{i}"' for i in range(6)])
    first = claim(store, project, 2)
    second = claim(store, project, 2)
    store.claim_delete(project=project, queue=Q, claim_id=first.claim_id)
    third = claim(store, project, 10)
    assert bodies(third.items) == ['"m0"', '"m1"', '"m4"', '"m5"']
    assert not {r.id for r in third.items} & {r.id for r in second.items}


def test_an_expired_claim_frees_its_messages_and_disappears(store: MessageStore, project: str) -> None:
    post(store, project, ['"a"'])
    held = claim(store, project, 1, ttl=1, grace=0)
    assert claim(store, project, 1).items == []
    time.sleep(1.1)
    assert store.claim_get(project=project, queue=Q, claim_id=held.claim_id) is None
    again = claim(store, project, 1)
    assert bodies(again.items) == ['"a"']
    assert again.items[0].claim_count == 2


def test_claims_extend_messages_that_would_expire_first(store: MessageStore, project: str) -> None:
    post(store, project, ['"a"'], ttl=60)
    held = claim(store, project, 1, ttl=100, grace=30)
    assert held.items[0].ttl == 130
    assert held.items[0].expires_ms >= held.now_ms + 130_000


def test_claim_get_and_update_renew_a_live_claim(store: MessageStore, project: str) -> None:
    post(store, project, ['"a"', '"b"'])
    held = claim(store, project, 2, ttl=60)
    assert store.claim_update(project=project, queue=Q, claim_id=held.claim_id, ttl=200, grace=60)
    got = store.claim_get(project=project, queue=Q, claim_id=held.claim_id)
    assert got is not None and got.ttl == 200 and bodies(got.items) == ['"a"', '"b"']
    assert all(r.claim_expires_ms >= got.now_ms + 199_000 for r in got.items)
    assert not store.claim_update(project=project, queue=Q, claim_id="missing", ttl=60, grace=60)


def test_claim_get_leaves_out_messages_deleted_since(store: MessageStore, project: str) -> None:
    post(store, project, ['"a"', '"b"'])
    held = claim(store, project, 2)
    store.message_delete(project=project, queue=Q, message_id=held.items[0].id, claim_id=held.claim_id)
    got = store.claim_get(project=project, queue=Q, claim_id=held.claim_id)
    assert got is not None and bodies(got.items) == ['"b"']


def test_messages_past_max_claim_count_leave_for_the_dead_letter_outbox(store: MessageStore, project: str) -> None:
    settings = QueueSettings(dead_letter_queue="dead", max_claim_count=1, dead_letter_ttl=300)
    store.queue_create(project=project, queue=Q, metadata={}, settings=settings)
    post(store, project, ['"poison"', '"fine"'])
    first = claim(store, project, 1)
    store.claim_delete(project=project, queue=Q, claim_id=first.claim_id)
    second = claim(store, project, 5)
    assert bodies(second.items) == ['"fine"']
    assert [(d.record.body, d.target, d.ttl) for d in second.dead_letters] == [('"poison"', "dead", 300)]
    assert [d.record.id for d in store.dead_letter_pending(project=project, queue=Q)] == [first.items[0].id]


def test_dead_letter_accept_is_idempotent_and_keeps_ids(store: MessageStore, project: str) -> None:
    settings = QueueSettings(dead_letter_queue="dead", max_claim_count=1)
    store.queue_create(project=project, queue=Q, metadata={}, settings=settings)
    (mid,) = post(store, project, ['"poison"'])
    store.claim_delete(project=project, queue=Q, claim_id=claim(store, project, 1).claim_id)
    letters = claim(store, project, 1).dead_letters
    store.dead_letter_accept(project=project, queue="dead", letters=letters)
    store.dead_letter_accept(project=project, queue="dead", letters=letters)
    store.dead_letter_done(project=project, queue=Q, ids=[mid])
    moved = store.message_list(project=project, queue="dead", marker=None, limit=10, client_id="r", echo=True,
                               include_claimed=True, include_delayed=True)
    assert [(r.id, r.body, r.claim_count) for r in moved.items] == [(mid, '"poison"', 0)]
    assert store.dead_letter_pending(project=project, queue=Q) == []
    store.queue_delete(project=project, queue="dead")


def test_stats_count_claimed_and_free_with_oldest_and_newest(store: MessageStore, project: str) -> None:
    assert store.queue_stats(project=project, queue=Q).total == 0
    ids = post(store, project, ['"a"', '"b"', '"c"'])
    claim(store, project, 1)
    stats = store.queue_stats(project=project, queue=Q)
    assert (stats.total, stats.claimed) == (3, 1)
    assert stats.oldest is not None and stats.oldest.id == ids[0]
    assert stats.newest is not None and stats.newest.id == ids[-1]


def test_gc_reclaims_expired_messages_without_other_traffic(store: MessageStore, project: str) -> None:
    post(store, project, ['"a"', '"b"'], ttl=1)
    time.sleep(1.1)
    assert store.gc(project=project, queue=Q, stale_before_ms=0) >= 2
    assert store.queue_stats(project=project, queue=Q).total == 0


# -- outbox -------------------------------------------------------------------------------


def _post_two(store: MessageStore, project: str, event_id: str, *, stream_all: bool = False,
              ids: tuple[str, str] = ("m1", "m2")) -> base.Posted:
    return store.message_post(project=project, queue=Q, messages=[NewMessage(ids[0], '"a"', 120, None),
                                                                  NewMessage(ids[1], '{"b":1}', None, 0)],
                              client_id="c", create=True, encrypted=False, request_size=10, default_ttl=3600,
                              event_id=event_id, stream_all=stream_all)


def _entries(texts: list[str] | None) -> list[base.StoredEvent]:
    assert texts is not None, "the publish lease was refused"
    return [base.StoredEvent.from_json(text) for text in texts]


def _pending(store: MessageStore, project: str, *, queue: str = Q, holder: str = "peek") -> list[base.StoredEvent]:
    """What the outbox holds, leaving the lease as it was found (free)."""
    found = _entries(store.outbox_lease(project=project, queue=queue, holder=holder))
    store.outbox_release(project=project, queue=queue, holder=holder, published=[], keep=False)
    return found


def _expire_lease(store: MessageStore, project: str) -> None:
    expire_lease(store, project, Q)


def test_a_post_to_a_queue_nobody_listens_to_writes_no_event(store: MessageStore, project: str) -> None:
    posted = _post_two(store, project, "ev0")
    assert not posted.event_stored and posted.pending is None
    assert _pending(store, project) == []


def test_a_post_to_a_listened_queue_writes_its_event_and_takes_the_lease(store: MessageStore, project: str) -> None:
    store.queue_create(project=project, queue=Q, metadata={}, settings=QueueSettings(default_delay=30))
    store.listen(project=project, queue=Q, until_ms=2**45)
    posted = _post_two(store, project, "ev1")
    assert posted.event_stored and posted.effective == [(120, 30), (3600, 0)]
    [event] = _entries(posted.pending)
    assert (event.id, event.kind, event.time_ms, event.sequence) == ("ev1", "message.posted", posted.now_ms, 1)
    assert event.posted is not None and not event.posted.encrypted
    assert event.posted.messages == [base.PostedEntry("m1", 120, 30, '"a"'),
                                     base.PostedEntry("m2", 3600, 0, '{"b":1}')]
    # the post holds the lease: nobody else publishes this queue meanwhile
    assert store.outbox_lease(project=project, queue=Q, holder="other") is None
    assert store.outbox_release(project=project, queue=Q, holder="ev1", published=["ev1"], keep=True) == []
    assert _pending(store, project, holder="other") == []


def test_a_post_while_another_publishes_leaves_its_event_to_the_holder(store: MessageStore, project: str) -> None:
    store.listen(project=project, queue=Q, until_ms=2**45)
    first = _post_two(store, project, "ev1")
    second = _post_two(store, project, "ev2", ids=("m3", "m4"))
    assert second.event_stored and second.pending is None
    handed = _entries(store.outbox_release(project=project, queue=Q, holder="ev1",
                                           published=[e.id for e in _entries(first.pending)], keep=True))
    assert [(e.id, e.sequence) for e in handed] == [("ev2", 2)]
    assert store.outbox_release(project=project, queue=Q, holder="ev1", published=["ev2"], keep=True) == []


def test_every_post_writes_its_event_when_every_change_is_streamed(store: MessageStore, project: str) -> None:
    posted = _post_two(store, project, "ev1", stream_all=True)
    assert posted.event_stored
    assert [(e.kind, e.sequence) for e in _entries(posted.pending)] == [("queue.created", 1), ("message.posted", 2)]


def test_every_change_records_its_event_in_order(store: MessageStore, project: str) -> None:
    ids = iter(f"e{n}" for n in range(100))
    store.queue_create(project=project, queue=Q, metadata={"a": 1}, settings=QueueSettings(), event_id=next(ids))
    assert not store.queue_create(project=project, queue=Q, metadata={}, settings=QueueSettings(), event_id="no1")
    store.queue_set(project=project, queue=Q, metadata={"a": 2}, settings=QueueSettings(), event_id=next(ids))
    posted = store.message_post(project=project, queue=Q, messages=[NewMessage(f"m{i}", str(i), None, None)
                                                                    for i in range(4)],
                                client_id="c", create=False, encrypted=False, request_size=10, default_ttl=3600,
                                event_id=next(ids), stream_all=True)
    store.outbox_release(project=project, queue=Q, holder="e2", published=[], keep=False)
    held = store.claim_create(project=project, queue=Q, claim_id="c1", ttl=60, grace=60, limit=2, event_id=next(ids))
    assert [m.id for m in held.items] == ["m0", "m1"]
    assert store.claim_update(project=project, queue=Q, claim_id="c1", ttl=90, grace=30, event_id=next(ids))
    store.message_delete(project=project, queue=Q, message_id="m0", claim_id="c1", event_id=next(ids))
    store.claim_delete(project=project, queue=Q, claim_id="c1", event_id=next(ids))
    store.message_delete_many(project=project, queue=Q, ids=["m2", "nope"], event_id=next(ids))
    store.message_pop(project=project, queue=Q, limit=5, event_id=next(ids))
    store.outbox_record(project=project, queue=Q, event_id=next(ids), kind="subscription.created", data={"id": "s"})
    store.queue_purge(project=project, queue=Q, event_id=next(ids), resource_types=["messages", "subscriptions"])
    store.queue_delete(project=project, queue=Q, event_id=next(ids))
    # changes that changed nothing record nothing
    store.claim_delete(project=project, queue=Q, claim_id="c1", event_id="no2")
    store.message_delete_many(project=project, queue=Q, ids=["nope"], event_id="no3")
    store.claim_create(project=project, queue=Q, claim_id="c2", ttl=60, grace=60, limit=2, event_id="no4")
    store.message_pop(project=project, queue=Q, limit=5, event_id="no5")
    assert not store.claim_update(project=project, queue=Q, claim_id="c9", ttl=60, grace=60, event_id="no6")

    found = _pending(store, project)
    assert [e.sequence for e in found] == list(range(1, len(found) + 1))
    assert [e.id for e in found] == [f"e{n}" for n in range(len(found))]
    assert [(e.kind, e.data) for e in found if e.posted is None] == [
        ("queue.created", {"metadata": {"a": 1}}),
        ("queue.updated", {"metadata": {"a": 2}}),
        ("claim.created", {"claim_id": "c1", "ids": ["m0", "m1"]}),
        ("claim.updated", {"claim_id": "c1", "ttl": 90, "grace": 30}),
        ("message.deleted", {"ids": ["m0"]}),
        ("claim.deleted", {"claim_id": "c1"}),
        ("message.deleted", {"ids": ["m2"]}),
        ("message.deleted", {"ids": ["m1", "m3"]}),
        ("subscription.created", {"id": "s"}),
        ("queue.purged", {"resource_types": ["messages", "subscriptions"]}),
        ("queue.deleted", {}),
    ]
    assert posted.pending is not None and found[2].posted is not None
    assert [m.id for m in found[2].posted.messages] == ["m0", "m1", "m2", "m3"]


def test_the_outbox_and_its_sequence_outlive_the_queue(store: MessageStore, project: str) -> None:
    store.listen(project=project, queue=Q, until_ms=2**45)
    _post_two(store, project, "ev1")
    store.outbox_release(project=project, queue=Q, holder="ev1", published=[], keep=False)
    store.queue_delete(project=project, queue=Q)
    assert [e.id for e in _pending(store, project)] == ["ev1"]
    again = _post_two(store, project, "ev2")
    assert [(e.id, e.sequence) for e in _entries(again.pending)] == [("ev1", 1), ("ev2", 2)]


def test_a_lease_is_refused_while_live_and_taken_over_when_it_ran_out(store: MessageStore, project: str) -> None:
    store.outbox_record(project=project, queue=Q, event_id="ev1", kind="subscription.created", data={})
    assert [e.id for e in _entries(store.outbox_lease(project=project, queue=Q, holder="a"))] == ["ev1"]
    assert store.outbox_lease(project=project, queue=Q, holder="b") is None
    _expire_lease(store, project)  # holder a died
    assert [e.id for e in _entries(store.outbox_lease(project=project, queue=Q, holder="b"))] == ["ev1"]
    # a, back from the dead, forgets what it published but leaves b's lease alone
    assert store.outbox_release(project=project, queue=Q, holder="a", published=["ev1"], keep=True) == []
    assert store.outbox_lease(project=project, queue=Q, holder="c") is None
    assert store.outbox_release(project=project, queue=Q, holder="b", published=[], keep=True) == []
    assert store.outbox_lease(project=project, queue=Q, holder="c") == []


def test_a_lease_hands_out_a_bounded_batch(store: MessageStore, project: str) -> None:
    big = "x" * (base.PENDING_BYTES * 4 // 10)
    for n in range(3):
        store.outbox_record(project=project, queue=Q, event_id=f"ev{n}", kind="subscription.created", data={"b": big})
    assert [e.id for e in _entries(store.outbox_lease(project=project, queue=Q, holder="a"))] == ["ev0", "ev1"]
    handed = store.outbox_release(project=project, queue=Q, holder="a", published=["ev0", "ev1"], keep=True)
    assert [e.id for e in _entries(handed)] == ["ev2"]


def test_an_expired_listening_horizon_writes_no_event(store: MessageStore, project: str) -> None:
    now = store.queue_stats(project=project, queue=Q).now_ms
    store.listen(project=project, queue=Q, until_ms=now - 1)
    assert not _post_two(store, project, "ev1").event_stored


def test_who_listens_outlives_the_queue_and_is_lowered_only_from_a_current_view(
        store: MessageStore, project: str) -> None:
    assert store.listeners(project=project, queue=Q) == base.Listeners(0, 0)
    first = store.listen(project=project, queue=Q, until_ms=2**44)
    store.listen(project=project, queue=Q, until_ms=2**40)  # never lowers the horizon
    seen = store.listeners(project=project, queue=Q)
    assert seen.until_ms == 2**44 and seen.generation > first
    store.queue_delete(project=project, queue=Q)
    assert store.listeners(project=project, queue=Q) == seen
    store.listen(project=project, queue=Q, until_ms=2**44)  # a subscription arrived after `seen` was read
    assert not store.listen_lower(project=project, queue=Q, until_ms=0, generation=seen.generation)
    current = store.listeners(project=project, queue=Q)
    assert store.listen_lower(project=project, queue=Q, until_ms=0, generation=current.generation)
    assert store.listeners(project=project, queue=Q).until_ms == 0
    assert not _post_two(store, project, "ev1").event_stored


def _flagged(store: MessageStore, project: str) -> list[base.Flagged]:
    return [f for f in store.outbox_flagged(flagged_before_ms=2**50, limit=1000) if f.project == project]


def test_the_relay_finds_flagged_outboxes_and_only_those(store: MessageStore, project: str) -> None:
    store.listen(project=project, queue=Q, until_ms=2**45)
    _post_two(store, project, "ev1")
    store.outbox_release(project=project, queue=Q, holder="ev1", published=[], keep=False)  # the stream refused
    store.outbox_flag(project=project, queue=Q)
    [flagged] = _flagged(store, project)
    assert (flagged.project, flagged.queue) == (project, Q)
    assert [e.id for e in _entries(store.outbox_lease(project=project, queue=Q, holder="relay"))] == ["ev1"]
    assert store.outbox_release(project=project, queue=Q, holder="relay", published=["ev1"], keep=True) == []
    assert store.outbox_unflag(flagged=flagged)
    assert _flagged(store, project) == []


def test_housekeeping_flags_an_outbox_whose_publisher_died(store: MessageStore, project: str) -> None:
    store.listen(project=project, queue=Q, until_ms=2**45)
    posted = _post_two(store, project, "ev1")  # the request died holding the lease, before publishing
    store.gc(project=project, queue=Q, stale_before_ms=posted.now_ms + 1)
    assert _flagged(store, project) == []  # its lease is live: it may still publish
    _expire_lease(store, project)
    store.gc(project=project, queue=Q, stale_before_ms=posted.now_ms + 1)
    assert [(f.project, f.queue) for f in _flagged(store, project)] == [(project, Q)]


def test_a_refused_post_leaves_no_event(store: MessageStore, project: str) -> None:
    store.queue_create(project=project, queue=Q, metadata={}, settings=QueueSettings(encrypted=True))
    with pytest.raises(base.EncryptionRequired):
        store.message_post(project=project, queue=Q, messages=[NewMessage("m1", '"a"', None, None)], client_id="c",
                           create=False, encrypted=False, request_size=10, default_ttl=3600,
                           event_id="ev2", stream_all=True)
    assert _pending(store, project) == []


def test_without_a_stream_a_listened_queue_keeps_no_event(store: MessageStore, project: str) -> None:
    store.listen(project=project, queue=Q, until_ms=2**45)
    posted = store.message_post(project=project, queue=Q, messages=[NewMessage("m1", '"a"', None, None)],
                                client_id="c", create=True, encrypted=False, request_size=10, default_ttl=3600,
                                event_id=None, stream_all=True)
    assert not posted.event_stored
    assert _pending(store, project) == []



# --- keyed (idempotent) posts ---------------------------------------------------------------------------------

def _keyed(store: MessageStore, project: str, key: str, bodies: list[str], *, digest: str = "d1",
           window_ms: int = 300_000, queue: str = Q, event_id: str | None = None) -> base.Posted:
    messages = [NewMessage(uuid.uuid4().hex, body, None, None) for body in bodies]
    return store.message_post(
        project=project, queue=queue, messages=messages, client_id="producer", create=True, encrypted=False,
        request_size=100, default_ttl=3600, event_id=event_id or uuid.uuid4().hex, stream_all=True,
        idempotency=base.Idempotency(key, digest, window_ms))


def _total(store: MessageStore, project: str, queue: str = Q) -> int:
    return store.queue_stats(project=project, queue=queue).total


def test_a_repeated_keyed_post_stores_once_answers_the_same_ids_and_writes_no_second_event(
        store: MessageStore, project: str) -> None:
    first = _keyed(store, project, "k1", ['"a"', '"b"'], event_id="ev1")
    assert not first.repeated and first.event_stored and first.pending is not None
    store.outbox_release(project=project, queue=Q, holder="ev1", published=[e.id for e in _entries(first.pending)],
                         keep=False)
    again = _keyed(store, project, "k1", ['"a"', '"b"'])
    assert again.repeated and again.ids == first.ids
    assert not again.event_stored and again.pending is None
    assert _total(store, project) == 2
    assert [e.kind for e in _pending(store, project)] == []


def test_the_same_key_with_another_digest_is_refused_and_stores_nothing(store: MessageStore, project: str) -> None:
    first = _keyed(store, project, "k1", ['"a"'], digest="one")
    with pytest.raises(base.IdempotencyConflict):
        _keyed(store, project, "k1", ['"other"'], digest="two")
    assert _total(store, project) == 1
    assert _keyed(store, project, "k1", ['"a"'], digest="one").ids == first.ids


def test_a_key_is_bound_while_its_window_runs_even_after_its_messages_are_gone(
        store: MessageStore, project: str) -> None:
    first = _keyed(store, project, "k1", ['"a"'])
    store.message_delete_many(project=project, queue=Q, ids=first.ids)
    store.gc(project=project, queue=Q, stale_before_ms=0)
    again = _keyed(store, project, "k1", ['"a"'])
    assert again.repeated and again.ids == first.ids and _total(store, project) == 0


def test_after_its_window_a_key_is_free_again(store: MessageStore, project: str) -> None:
    first = _keyed(store, project, "k1", ['"a"'], digest="one", window_ms=300)
    time.sleep(0.5)
    later = _keyed(store, project, "k1", ['"b"'], digest="two", window_ms=300_000)
    assert not later.repeated and later.ids != first.ids and _total(store, project) == 2
    assert _keyed(store, project, "k1", ['"b"'], digest="two").ids == later.ids


def test_keys_belong_to_their_queue(store: MessageStore, project: str) -> None:
    one = _keyed(store, project, "k1", ['"a"'])
    other = _keyed(store, project, "k1", ['"a"'], queue="other")
    assert not other.repeated and other.ids != one.ids
    assert _total(store, project) == 1 and _total(store, project, "other") == 1


def test_concurrent_posts_with_one_key_store_once(store: MessageStore, project: str) -> None:
    import threading

    answers: list[list[str]] = []
    problems: list[BaseException] = []

    def attempt() -> None:
        try:
            answers.append(_keyed(store, project, "k1", ['"a"']).ids)
        except BaseException as exc:
            problems.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not problems
    assert len({tuple(ids) for ids in answers}) == 1 and _total(store, project) == 1
