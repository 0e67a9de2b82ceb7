"""``trust+http(s)`` subscribers: a webhook that gets a Keystone token of the subscriber.

The subscriber is ``trust+`` followed by an ordinary ``http://`` or
``https://`` URL, which every webhook rule applies to. The service keeps the
trust's id in ``options.trust_id`` (as upstream does); subscribers cannot
choose it, and ``post_headers`` cannot set ``X-Auth-Token``, which carries
the trust's token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib import errors

PREFIX = "trust+"
SCHEMES = frozenset({"trust+http", "trust+https"})
TRUST_ID = "trust_id"
AUTH_TOKEN_HEADER = "X-Auth-Token"


def is_trust(subscriber: str) -> bool:
    return subscriber[: len(PREFIX)].lower() == PREFIX


def target(subscriber: str) -> str:
    """The http(s) URL a trust subscriber's notifications are POSTed to."""
    return subscriber[len(PREFIX):] if is_trust(subscriber) else subscriber


def stored_trust(options: Mapping[str, Any]) -> str | None:
    value = options.get(TRUST_ID)
    return value if isinstance(value, str) and value else None


def check_options(options: Mapping[str, Any], *, subscriber: str, current_trust: str | None) -> None:
    """Refuse a ``trust_id`` the service did not make for this subscription, and an ``X-Auth-Token`` header
    on a trust subscriber."""
    if TRUST_ID in options and options[TRUST_ID] != current_trust:
        raise errors.InvalidBody(f"options.{TRUST_ID} is set by the service for trust+ subscribers; leave it out.")
    headers = options.get("post_headers")
    if is_trust(subscriber) and isinstance(headers, Mapping) and any(
            str(k).lower() == AUTH_TOKEN_HEADER.lower() for k in headers):
        raise errors.InvalidBody(f"post_headers may not set {AUTH_TOKEN_HEADER} on a trust+ subscriber: "
                                 "the service sends the trust's token there.")
