"""The Keystone trusts behind ``trust+http(s)`` subscriptions.

A trust is made from the caller's own token when such a subscription is
created (and again when its ttl changes, since a trust's expiry cannot be
changed), expiring with the subscription; it is deleted when the
subscription is deleted, purged or stops being a trust subscriber. Upstream
Zaqar leaves the trust to expire; we delete it so that the delegation ends
when the subscriber asked for it to end. Deleting is best effort: a trust
that could not be deleted still expires with its subscription.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from chalicelib import errors, topics
from chalicelib.api.context import Caller, Credentials, Services
from chalicelib.rules import trust
from chalicelib.storage.base import Subscription

log = logging.getLogger(__name__)


def _credentials(services: Services, caller: Caller) -> Credentials:
    """The caller's token, when trusts can be made at all; else why not."""
    settings = services.settings
    if settings.auth_strategy != "keystone":
        raise errors.InvalidBody(
            "trust+http(s) subscribers need AUTH_STRATEGY=keystone: the service acts for the subscriber through "
            "a Keystone trust made from the caller's token, and with noauth there is no token.")
    if not settings.has_trustee:
        raise errors.NotConfigured(
            "trust+http(s) subscribers need a trustee: set TRUSTEE_USERNAME and TRUSTEE_PASSWORD (and "
            "TRUSTEE_USER_DOMAIN, Default unless set) to the Keystone user the service acts as for them.")
    if caller.credentials is None:
        raise errors.InvalidBody(
            "A trust+http(s) subscriber is made with the caller's own X-Auth-Token: over websocket, send it in "
            "the headers of this frame too.")
    return caller.credentials


def grant(services: Services, caller: Caller, *, expires_ms: int) -> str:
    """A new trust from the caller to the trustee, on the caller's project, until ``expires_ms``."""
    from chalicelib.keystone_trusts import client

    credentials = _credentials(services, caller)
    project = topics.owner(caller.project)[0]  # a topic's subscription: the trust is on its owner
    return client(services).create(credentials, project=project, expires_ms=expires_ms)


def release(services: Services, caller: Caller, trust_ids: Iterable[str | None]) -> None:
    """Delete trusts that no subscription uses any more; failures are logged, never raised."""
    found = [t for t in trust_ids if t]
    if not found or not services.settings.has_trustee:
        return
    from chalicelib.keystone_trusts import TrustRefused, client

    trusts = client(services)
    for trust_id in found:
        try:
            if not trusts.delete(trust_id, credentials=caller.credentials):
                log.warning("trust %s could not be deleted; it expires with its subscription", trust_id)
        except (errors.ServiceError, TrustRefused) as exc:  # str(): the description, or the reason
            log.warning("trust %s not deleted (%s); it expires with its subscription", trust_id, exc)


def trusts_of(subscriptions: Iterable[Subscription]) -> list[str | None]:
    return [trust.stored_trust(s.options) for s in subscriptions if trust.is_trust(s.subscriber)]
