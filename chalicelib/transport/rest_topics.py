"""REST routes of topics (``/v2/topics``, beyond upstream's working set): upstream's topic routes, served by
the bodies of the queue, message and subscription routes for :data:`~chalicelib.transport.collection.TOPICS`.

Topics have no claims, no pop and no message deletion: their messages are kept for their ttl, listed and
delivered to the topic's subscriptions (upstream routes its topic messages to the queue message resource,
whose every responder takes ``queue_name`` while the topic routes pass ``topic_name``: by code reading they
all fail there; upstream's tests cover none of them). No pre-signed URLs for topics either.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chalice.app import Blueprint, Response

from chalicelib.api import topics
from chalicelib.transport import rest_messages, rest_queues, rest_subscriptions
from chalicelib.transport.collection import TOPICS
from chalicelib.transport.http import ANY, zaqar_view

bp = Blueprint(__name__)


def topic_view(view: Callable[..., Response]) -> Callable[..., Response]:
    """:func:`zaqar_view`, with the errors of the queue operations naming the topic."""

    @functools.wraps(view)
    def worded(*args: Any, **kwargs: Any) -> Response:
        with topics.worded():
            return view(*args, **kwargs)

    return zaqar_view(worded)


# -- topics ---------------------------------------------------------------------------------


@bp.route("/v2/topics", methods=["GET"], content_types=ANY)
@topic_view
def topic_list() -> Response:
    return rest_queues.listing(TOPICS)


@bp.route("/v2/topics/{topic_name}", methods=["PUT"], content_types=ANY)
@topic_view
def topic_create(topic_name: str) -> Response:
    return rest_queues.create(TOPICS, topic_name)


@bp.route("/v2/topics/{topic_name}", methods=["GET"], content_types=ANY)
@topic_view
def topic_get(topic_name: str) -> Response:
    return rest_queues.get(TOPICS, topic_name)


@bp.route("/v2/topics/{topic_name}", methods=["PATCH"], content_types=ANY)
@topic_view
def topic_update(topic_name: str) -> Response:
    return rest_queues.update(TOPICS, topic_name)


@bp.route("/v2/topics/{topic_name}", methods=["DELETE"], content_types=ANY)
@topic_view
def topic_delete(topic_name: str) -> Response:
    return rest_queues.delete(TOPICS, topic_name)


@bp.route("/v2/topics/{topic_name}/stats", methods=["GET"], content_types=ANY)
@topic_view
def topic_stats(topic_name: str) -> Response:
    return rest_queues.stats(TOPICS, topic_name)


@bp.route("/v2/topics/{topic_name}/purge", methods=["POST"], content_types=ANY)
@topic_view
def topic_purge(topic_name: str) -> Response:
    return rest_queues.purge(TOPICS, topic_name)


# -- messages -------------------------------------------------------------------------------


@bp.route("/v2/topics/{topic_name}/messages", methods=["POST"], content_types=ANY)
@topic_view
def topic_message_post(topic_name: str) -> Response:
    return rest_messages.post(TOPICS, topic_name)


@bp.route("/v2/topics/{topic_name}/messages", methods=["GET"], content_types=ANY)
@topic_view
def topic_message_list(topic_name: str) -> Response:
    return rest_messages.listing(TOPICS, topic_name)


@bp.route("/v2/topics/{topic_name}/messages/{message_id}", methods=["GET"], content_types=ANY)
@topic_view
def topic_message_get(topic_name: str, message_id: str) -> Response:
    return rest_messages.get(TOPICS, topic_name, message_id)


# -- subscriptions --------------------------------------------------------------------------


@bp.route("/v2/topics/{topic_name}/subscriptions", methods=["POST"], content_types=ANY)
@topic_view
def topic_subscription_create(topic_name: str) -> Response:
    return rest_subscriptions.create(TOPICS, topic_name)


@bp.route("/v2/topics/{topic_name}/subscriptions", methods=["GET"], content_types=ANY)
@topic_view
def topic_subscription_list(topic_name: str) -> Response:
    return rest_subscriptions.listing(TOPICS, topic_name)


@bp.route("/v2/topics/{topic_name}/subscriptions/{subscription_id}", methods=["GET"], content_types=ANY)
@topic_view
def topic_subscription_get(topic_name: str, subscription_id: str) -> Response:
    return rest_subscriptions.get(TOPICS, topic_name, subscription_id)


@bp.route("/v2/topics/{topic_name}/subscriptions/{subscription_id}", methods=["PATCH"], content_types=ANY)
@topic_view
def topic_subscription_update(topic_name: str, subscription_id: str) -> Response:
    return rest_subscriptions.update(TOPICS, topic_name, subscription_id)


@bp.route("/v2/topics/{topic_name}/subscriptions/{subscription_id}", methods=["DELETE"], content_types=ANY)
@topic_view
def topic_subscription_delete(topic_name: str, subscription_id: str) -> Response:
    return rest_subscriptions.delete(TOPICS, topic_name, subscription_id)


@bp.route("/v2/topics/{topic_name}/subscriptions/{subscription_id}/confirm", methods=["PUT"], content_types=ANY)
@topic_view
def topic_subscription_confirm(topic_name: str, subscription_id: str) -> Response:
    return rest_subscriptions.confirm(TOPICS, topic_name, subscription_id)
