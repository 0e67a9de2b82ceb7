"""Many consumers on one queue, through the service layer and a real Redis."""

from __future__ import annotations

import itertools
import random
import threading
import uuid

import pytest

from chalicelib.api import claims, messages
from chalicelib.api.context import Caller, Services

QUEUE = "busy"


@pytest.fixture(params=["redis", "mongodb-wire", "mongodb-real"])
def pool_kind(request: pytest.FixtureRequest) -> str:
    """Races need a real server (mongomock is not thread-safe): Redis, the wire-protocol server, and a
    MongoDB of your own with MONGODB_URL."""
    return str(request.param)


def _post_many(services: Services, caller: Caller, count: int) -> set[str]:
    ids: set[str] = set()
    for start in range(0, count, 50):
        batch = {"messages": [{"body": {"n": n}} for n in range(start, min(count, start + 50))]}
        ids.update(messages.message_post(services, caller, QUEUE, batch, size=100).value)
    return ids


def test_consumers_never_share_a_message_and_lose_none(services: Services, caller: Caller) -> None:
    posted = _post_many(services, caller, 2000)
    received: list[str] = []
    lock = threading.Lock()
    failures: list[BaseException] = []

    def consume() -> None:
        me = Caller(project=caller.project, client_id=str(uuid.uuid4()))
        try:
            while True:
                claim = claims.claim_create(services, me, QUEUE, {"ttl": 300}, limit=10).value
                if claim is None:
                    return
                for message in claim.messages:
                    messages.message_delete(services, me, QUEUE, message.id, claim_id=claim.id)
                with lock:
                    received.extend(m.id for m in claim.messages)
        except BaseException as exc:  # surfaced below: a thread must not fail silently
            failures.append(exc)

    threads = [threading.Thread(target=consume) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(received) == len(set(received)) == 2000
    assert set(received) == posted


def test_released_messages_are_never_claimed_while_another_claim_holds_them(services: Services, caller: Caller) -> None:
    posted = _post_many(services, caller, 600)
    seq = itertools.count()
    lock = threading.Lock()
    log: list[tuple[int, str, str, str]] = []  # (order, kind, claim id, message id)
    done: set[str] = set()
    failures: list[BaseException] = []

    def consume(seed: int) -> None:
        rng = random.Random(seed)
        me = Caller(project=caller.project, client_id=str(uuid.uuid4()))
        try:
            while True:
                claim = claims.claim_create(services, me, QUEUE, {"ttl": 300}, limit=rng.randint(1, 20)).value
                if claim is None:
                    return
                with lock:
                    for m in claim.messages:
                        log.append((next(seq), "claimed", claim.id, m.id))
                if rng.random() < 0.4:
                    with lock:  # logged before the release: a later claim must be logged after it
                        for m in claim.messages:
                            log.append((next(seq), "released", claim.id, m.id))
                    claims.claim_delete(services, me, QUEUE, claim.id)
                else:
                    for m in claim.messages:
                        messages.message_delete(services, me, QUEUE, m.id, claim_id=claim.id)
                    with lock:
                        done.update(m.id for m in claim.messages)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=consume, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert done == posted
    holder: dict[str, str] = {}
    for _order, kind, claim_id, message_id in sorted(log):
        if kind == "claimed":
            assert message_id not in holder, f"{message_id} claimed by {claim_id} while {holder.get(message_id)} held it"
            holder[message_id] = claim_id
        else:
            assert holder.pop(message_id) == claim_id
