"""The documents subscribers receive: Zaqar's notification, SubscriptionConfirmation
and UnsubscribeConfirmation (webhooks and websockets get them as JSON; emails
as text built from them)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chalicelib import attributes, crypto, signing, topics
from chalicelib.config import Settings
from chalicelib.notify.fanout import Content, plain
from chalicelib.notify.jobs import CONFIRMATION, UNSUBSCRIBE, Job
from chalicelib.storage.base import Subscription


class Undecryptable(Exception):
    """An encrypted message cannot be decrypted with the configured key."""


def for_job(settings: Settings, job: Job, subscription: Subscription) -> dict[str, Any]:
    if job.kind == CONFIRMATION:
        return confirmation(settings, job.project, job.queue, subscription)
    if job.kind == UNSUBSCRIBE:
        return unsubscribe(settings, job.project, job.queue, subscription)
    return notification(settings, job, with_id=subscription.options.get(WITH_ID) is True)


WITH_ID = "include_message_id"
"""Subscription option: also give the message's id and href (upstream's receivers, and its tests,
expect the body exactly as upstream sends it, so this is opt-in)."""


def revealed(settings: Settings, message: Mapping[str, Any], *, encrypted: bool) -> Content:
    """The body, attributes and origin of a message of a message.posted event (decrypted when the queue
    encrypts)."""
    if not encrypted:
        return plain(message)
    key = settings.message_encryption_key
    if key is None:
        raise Undecryptable("the message is encrypted and no MESSAGE_ENCRYPTION_KEY is configured")
    try:
        stored = attributes.unpack(crypto.decrypt(key, str(message.get("body"))))
        return Content(json.loads(stored.body), stored.attributes, stored.via)
    except ValueError as exc:
        raise Undecryptable(f"the message cannot be decrypted with MESSAGE_ENCRYPTION_KEY ({exc})") from None


def notification(settings: Settings, job: Job, *, with_id: bool = False) -> dict[str, Any]:
    """Upstream's notification body (and, when asked, the message's id and href)."""
    content = revealed(settings, job.message, encrypted=job.encrypted)
    document = {"body": content.body, "ttl": job.message.get("ttl"), "queue_name": job.queue,
                "Message_Type": "Notification"}
    if content.attributes:
        document["attributes"] = content.attributes
    if with_id:
        document["message_id"] = job.message.get("id")
        document["href"] = f"{topics.path(job.project, job.queue)}/messages/{job.message.get('id')}"
    return document


def confirmation(settings: Settings, project: str, queue: str, subscription: Subscription) -> dict[str, Any]:
    """Zaqar's SubscriptionConfirmation, with a pre-signed PUT of the confirm resource (``project`` as
    stored: a topic's subscription confirms under ``/v2/topics``, for the topic's owner)."""
    path = f"{topics.path(project, queue)}/subscriptions/{subscription.id}/confirm"
    tenant, is_topic = topics.owner(project)
    document: dict[str, Any] = {
        "Message_Type": "SubscriptionConfirmation",
        "Message": f"You have chosen to subscribe to the {'topic' if is_topic else 'queue'}: {queue}",
        "SubscribeBody": {"confirmed": True},
        "UnsubscribeBody": {"confirmed": False},
        "WSGISubscribeURL": settings.public_url + path,
        "X-Project-ID": tenant,
    }
    if settings.signing_key is not None:
        signed = signing.sign(settings.signing_key, project=tenant, paths=[path], methods=["PUT"],
                              expires_ms=subscription.expires_ms)
        document.update({"URL-Signature": signed.signature, "URL-Methods": "PUT", "URL-Paths": path,
                         "URL-Expires": signed.expires})
    return document


def unsubscribe(settings: Settings, project: str, queue: str, subscription: Subscription) -> dict[str, Any]:
    document = confirmation(settings, project, queue, subscription)
    document.update({
        "Message_Type": "UnsubscribeConfirmation",
        "Message": f"You have unsubscribed successfully to the {topics.collection(project)[:-1]}: {queue}, "
                   "you can resubscribe it by using confirmed=True.",
    })
    return document
