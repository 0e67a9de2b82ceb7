"""The trust+http(s) channel against a real receiver on loopback, with a fake source of trust tokens
that records what it was asked (the real Keystone is in tests/integration/test_trust_subscribers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chalicelib import errors
from chalicelib.config import Settings
from chalicelib.keystone_trusts import TrustRefused
from chalicelib.notify.channels import Delivery
from chalicelib.notify.channels.trust import TrustChannel
from chalicelib.notify.channels.webhook import WebhookChannel
from chalicelib.notify.jobs import NOTIFICATION, Job
from chalicelib.storage.base import Subscription
from tests.receiver import Receiver, receiver

SETTINGS = Settings.from_mapping({"WEBHOOK_ALLOW_LOOPBACK": "true", "WEBHOOK_TIMEOUT": "2",
                                  "SIGNING_KEY": "trust-channel-key"})


class FakeTokens:
    def __init__(self, *, fail: Exception | None = None) -> None:
        self.fail = fail
        self.asked: list[tuple[str, bool]] = []

    def token(self, trust_id: str, *, fresh: bool = False) -> str:
        self.asked.append((trust_id, fresh))
        if self.fail is not None:
            raise self.fail
        return f"token-{len(self.asked)}-for-{trust_id}"


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


def _delivery(subscriber: str, **options: object) -> Delivery:
    subscription = Subscription(id="s1", project="p", queue="q", subscriber=subscriber, ttl=600,
                                options={"trust_id": "trust-1", **options}, created_ms=0, expires_ms=10**13,
                                confirmed=True, connection=None)
    job = Job(NOTIFICATION, "e1", "p", "q", "s1", {"id": "m1", "body": {"n": 1}, "ttl": 60})
    return Delivery(job, subscription, {"body": {"n": 1}, "queue_name": "q"})


def _channel(tokens: FakeTokens | None) -> TrustChannel:
    return TrustChannel(WebhookChannel(SETTINGS), tokens)


def test_the_post_goes_to_the_url_after_trust_plus_with_the_trusts_token(hook: Receiver) -> None:
    tokens = FakeTokens()
    outcome = _channel(tokens).deliver(_delivery(f"trust+{hook.url}/hook?x=1", post_headers={"X-Auth-Token": "old"}))
    assert outcome.status == "delivered", outcome
    (received,) = hook.requests
    assert received.path == "/hook?x=1" and received.json == {"body": {"n": 1}, "queue_name": "q"}
    assert received.headers["X-Auth-Token"] == "token-1-for-trust-1"  # a stored header never wins
    assert "X-Zaqar-Signature" in received.headers and "X-Zaqar-Delivery-Id" in received.headers
    assert tokens.asked == [("trust-1", False)]


def test_a_401_from_the_receiver_is_tried_once_more_with_a_fresh_token(hook: Receiver) -> None:
    tokens = FakeTokens()
    hook.statuses = [401]
    assert _channel(tokens).deliver(_delivery(f"trust+{hook.url}/hook")).status == "delivered"
    assert [r.headers["X-Auth-Token"] for r in hook.requests] == ["token-1-for-trust-1", "token-2-for-trust-1"]
    assert tokens.asked == [("trust-1", False), ("trust-1", True)]
    hook.statuses = [401, 401]
    outcome = _channel(tokens).deliver(_delivery(f"trust+{hook.url}/hook"))
    assert (outcome.status, outcome.http_status) == ("failed", 401)


@pytest.mark.parametrize(("fail", "status", "words"), [
    (TrustRefused("trust-1 was deleted"), "failed", "was deleted"),
    (errors.Unavailable("Keystone could not be reached for a trust."), "retry", "could not be reached"),
])
def test_keystone_refusing_is_a_failure_and_keystone_unreachable_a_retry(
        hook: Receiver, fail: Exception, status: str, words: str) -> None:
    outcome = _channel(FakeTokens(fail=fail)).deliver(_delivery(f"trust+{hook.url}/hook"))
    assert outcome.status == status and words in outcome.detail
    assert hook.requests == []


def test_what_cannot_work_fails_without_sending(hook: Receiver) -> None:
    tokens = FakeTokens()
    no_trust = _delivery(f"trust+{hook.url}/hook")
    no_trust = Delivery(no_trust.job, Subscription(**{**no_trust.subscription.__dict__, "options": {}}),
                        no_trust.payload)
    assert "trust_id" in _channel(tokens).deliver(no_trust).detail
    assert "TRUSTEE_USERNAME" in _channel(None).deliver(_delivery(f"trust+{hook.url}/hook")).detail
    refused = _channel(tokens).deliver(_delivery("trust+http://169.254.169.254/latest"))
    assert refused.status == "failed" and "cloud metadata" in refused.detail
    assert hook.requests == []
