"""Notifications through a local stack that was left idle: its delivery loop sleeps until the local
AWS wakes it (infra/local/deliveries.py), so what matters is that it still wakes in time."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import requests

from infra.local.deliveries import SAFETY_S
from tests.e2e.conftest import Stack, _start_stack
from tests.receiver import receiver

pytestmark = pytest.mark.e2e


def _rest(stack: Stack, project: str, path: str, body: object) -> requests.Response:
    headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project}
    reply = requests.post(stack.http + path, headers=headers, json=body, timeout=10)
    reply.raise_for_status()
    return reply


def test_a_notification_arrives_promptly_after_the_stack_was_idle(stack: Stack, project: str) -> None:
    with receiver() as hook:
        _rest(stack, project, "/v2/queues/idle1/subscriptions", {"subscriber": hook.url})
        time.sleep(SAFETY_S + 2)  # longer than the loop's slowest poll: nothing but its schedules ran
        _rest(stack, project, "/v2/queues/idle1/messages", {"messages": [{"body": "after a nap"}]})
        (got,) = hook.wait_for(1, timeout=10)
        # that the write, not the safety poll, woke the loop is shown with a fake clock in test_local_aws.py
        assert got.json["body"] == "after a nap"


def test_a_delayed_message_is_notified_after_its_delay_not_before(stack: Stack, project: str) -> None:
    with receiver() as hook:
        _rest(stack, project, "/v2/queues/idle2/subscriptions", {"subscriber": hook.url})
        sent = time.monotonic()
        _rest(stack, project, "/v2/queues/idle2/messages", {"messages": [{"body": "later", "delay": 2}]})
        (got,) = hook.wait_for(1, timeout=15)
        waited = time.monotonic() - sent
        assert got.json["body"] == "later"
        assert waited >= 1.9  # not before the message is visible (the clocks' rounding aside)


def test_a_message_posted_as_soon_as_the_stack_answers_is_notified(tmp_path: Path, redis_url: str,
                                                                   project: str) -> None:
    """REST answers before the delivery loop first reads the stream: it must start from the stream's
    beginning, not skip what was written before it looked."""
    stacks = _start_stack(tmp_path, redis_url)
    fresh = next(stacks)
    try:
        with receiver() as hook:
            _rest(fresh, project, "/v2/queues/early/subscriptions", {"subscriber": hook.url})
            _rest(fresh, project, "/v2/queues/early/messages", {"messages": [{"body": "early"}]})
            (got,) = hook.wait_for(1, timeout=10)
            assert got.json["body"] == "early"
    finally:
        stacks.close()
