"""Topic operations (``/v2/topics``, beyond upstream's working set), shared by the REST and websocket transports.

A topic is a queue of the caller's topic space (:func:`chalicelib.topics.space`), so every topic operation
is the queue, message or subscription operation of :mod:`chalicelib.api` called with the caller that
:func:`scoped` makes. What differs is said here: which project ids can have topics, which reserved
metadata a topic reports, and how errors name a topic. Topics have no claims and no pop (the transports
offer no such route or action for them), so their messages are kept for their ttl, to be listed and to
be delivered to the topic's subscriptions.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from chalicelib import errors, topics
from chalicelib.api.context import Caller, Services
from chalicelib.api.validation import RESERVED_DEFAULTS_KEYS, reserved_defaults

REPORTED_DEFAULTS = ("_max_messages_post_size", "_default_message_ttl", "_default_message_delay")
"""The reserved keys a topic reports with their defaults (upstream's ``topic._get_reserved_metadata``)."""
_QUEUE_ONLY = frozenset(RESERVED_DEFAULTS_KEYS) - frozenset(REPORTED_DEFAULTS)
"""Reserved keys of claims, dead letters and encryption: a topic shows them only when its owner set them."""


def scoped(services: Services, caller: Caller) -> Caller:
    """The caller as the topic space of its project sees it: topic operations are queue operations by it.

    The catalog keeps project ids of at most 256 characters, and a topic space is two longer than its
    project id, so longer project ids can have queues but no topics.
    """
    if len(caller.project) > topics.MAX_PROJECT:
        raise errors.Invalid(f"Topics need project ids of at most {topics.MAX_PROJECT} characters; this one has "
                             f"{len(caller.project)}.")
    return dataclasses.replace(caller, project=topics.space(caller.project))


def reported(services: Services, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A topic's metadata as it is reported, from the queue view of it (every reserved default filled in):
    the three defaults upstream reports for topics, and the queue-only reserved keys only where they
    differ from their defaults (so where the owner set them; one set to its very default is not shown)."""
    defaults = reserved_defaults(services.settings.limits)
    return {key: value for key, value in metadata.items() if key not in _QUEUE_ONLY or value != defaults[key]}


# What the queue operations say of a queue, as it reads for a topic: "Queue q does not exist.", "Queue names
# may only contain...", "Message m does not exist in queue q.", "None of the requested messages exists in
# queue q." (reserved metadata keys such as _dead_letter_queue are never matched: no space before them).
_QUEUE_WORDS = re.compile(r"(?:^|(?<=\. ))Queue |(?<= )queue (?=\S+\.$)")


def _topic_words(description: str) -> str:
    return _QUEUE_WORDS.sub(lambda found: found.group(0).replace("Queue", "Topic").replace("queue", "topic"),
                            description)


@contextmanager
def worded() -> Iterator[None]:
    """Errors of the queue operations run for a topic name the topic (same error, same status)."""
    try:
        yield
    except errors.ServiceError as exc:
        exc.description = _topic_words(exc.description)
        exc.args = (exc.description,)
        raise
