"""``trust+http(s)`` subscribers: the webhook, with a token of the subscription's Keystone trust.

The token is the trustee's, scoped to the trust the subscription was made
with (``options.trust_id``); it goes to the http(s) URL after ``trust+`` as
``X-Auth-Token``, under every webhook rule. Tokens are reused from the
trusts client's cache; when the receiver answers 401 the cached token may
have been revoked, so a fresh one is tried once.
"""

from __future__ import annotations

from typing import Protocol

from chalicelib import errors
from chalicelib.keystone_trusts import TrustRefused
from chalicelib.notify.channels import Delivery, Outcome
from chalicelib.notify.channels.webhook import WebhookChannel
from chalicelib.rules import trust


class TrustTokens(Protocol):
    def token(self, trust_id: str, *, fresh: bool = False) -> str:
        """A token scoped to the trust; raises TrustRefused, or Unavailable when Keystone does not answer."""


class TrustChannel:
    def __init__(self, webhooks: WebhookChannel, tokens: TrustTokens | None) -> None:
        self._webhooks = webhooks
        self._tokens = tokens

    def deliver(self, delivery: Delivery) -> Outcome:
        if self._tokens is None:
            return Outcome("failed", "not sent: no trustee is configured (TRUSTEE_USERNAME, TRUSTEE_PASSWORD)")
        trust_id = trust.stored_trust(delivery.subscription.options)
        if trust_id is None:
            return Outcome("failed", f"not sent: the subscription has no options.{trust.TRUST_ID}")
        url = trust.target(delivery.subscription.subscriber)
        for fresh in (False, True):  # a 401 may mean the cached token was revoked: one fresh one is tried
            try:
                token = self._tokens.token(trust_id, fresh=fresh)
            except TrustRefused as exc:
                return Outcome("failed", f"not sent: {exc.reason}")
            except errors.Unavailable as exc:
                return Outcome("retry", exc.description)
            outcome = self._webhooks.send(delivery, url, auth_token=token)
            if outcome.http_status != 401:
                break
        return outcome
