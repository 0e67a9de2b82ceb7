"""Keystone trusts for ``trust+http(s)`` subscribers.

When such a subscriber is created, the caller (the trustor) delegates its
roles on the project to the service's trustee user (``TRUSTEE_USERNAME``),
with impersonation, until the subscription expires. When notifying, the
trustee authenticates with its password scoped to that trust, and the token
goes with the webhook as ``X-Auth-Token``: the receiver (often another
OpenStack service) sees a token of the subscriber's user and project.

Trust-scoped tokens are cached per trust (bounded) and reused until shortly
before they expire, so a burst of notifications costs one token. Token
values and the trustee's password are never logged. The Keystone calls,
and the cache, are the token validator's (:mod:`chalicelib.transport.keystone`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chalicelib import errors
from chalicelib.api.context import Credentials
from chalicelib.config import Settings

if TYPE_CHECKING:
    from chalicelib.api.context import Services
from chalicelib.transport.keystone import (
    Reply,
    TokenCache,
    Transport,
    expiry,
    http_transport,
    password_identity,
    v3_url,
)

__all__ = ["Reply", "Transport", "TrustRefused", "Trusts", "client"]

log = logging.getLogger(__name__)
MAX_CACHED = 1000
MARGIN_S = 60.0
"""A cached token is replaced when less than this (or half its remaining life, if shorter) is left,
so the receiver still has time to validate it."""


class TrustRefused(Exception):
    """Keystone will not give a token for this trust (deleted, expired, the trustor lost its roles...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _why(status: int, body: Any) -> str:
    """Keystone's own explanation of a refusal, short."""
    message = body.get("error", {}).get("message") if isinstance(body, dict) else None
    return f"HTTP {status}: {str(message)[:200]}" if message else f"HTTP {status}"


class Trusts:
    """Create, use and delete trusts for the configured trustee."""

    def __init__(self, settings: Settings, *, transport: Transport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._url = v3_url(settings)
        self._settings = settings
        self._call = transport or http_transport(settings.keystone_timeout,
                                                 unreachable="Keystone could not be reached for a trust.")
        self._clock = clock
        self._trustee: str | None = None
        self._tokens: TokenCache[str] = TokenCache(MAX_CACHED)

    def _password(self) -> dict[str, Any]:
        s = self._settings
        return password_identity(s.trustee_username, s.trustee_password, s.trustee_user_domain)

    def _trustee_id(self) -> str:
        """The trustee's user id (it does not change: asked once)."""
        if self._trustee is None:
            status, _headers, body = self._call("POST", self._url + "/auth/tokens", {},
                                                {"auth": {"identity": self._password()}})
            if status != 201 or not isinstance(body, dict):
                if status in {400, 401, 403, 404}:
                    raise errors.NotConfigured(
                        f"The trustee {self._settings.trustee_username!r} cannot log in to Keystone "
                        f"({_why(status, body)}): check TRUSTEE_USERNAME, TRUSTEE_PASSWORD and TRUSTEE_USER_DOMAIN.")
                raise errors.Unavailable(f"Keystone did not authenticate the trustee ({_why(status, body)}).")
            self._trustee = str(body["token"]["user"]["id"])
        return self._trustee

    def create(self, credentials: Credentials, *, project: str, expires_ms: int | None) -> str:
        """A trust from the caller to the trustee on ``project``; its id. Raises ServiceError subclasses."""
        trust: dict[str, Any] = {
            "trustor_user_id": credentials.user, "trustee_user_id": self._trustee_id(), "project_id": project,
            "impersonation": True, "roles": [{"id": role} for role in credentials.role_ids],
        }
        if expires_ms is not None:
            trust["expires_at"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(expires_ms / 1000))
        status, _headers, body = self._call("POST", self._url + "/OS-TRUST/trusts",
                                            {"X-Auth-Token": credentials.token}, {"trust": trust})
        if status == 201 and isinstance(body, dict):
            return str(body["trust"]["id"])
        why = _why(status, body)
        if status == 401:
            raise errors.Unauthorized(f"Keystone did not accept the X-Auth-Token to create the trust ({why}).")
        if status == 403:
            raise errors.Forbidden(f"Keystone refused to create the trust for this subscriber ({why}).")
        if 400 <= status < 500:
            raise errors.InvalidBody(f"Keystone could not create the trust for this subscriber ({why}).")
        raise errors.Unavailable(f"Keystone did not create the trust ({why}).")

    def token(self, trust_id: str, *, fresh: bool = False) -> str:
        """A trust-scoped token (cached). Raises TrustRefused, or Unavailable when Keystone does not answer."""
        now = self._clock()
        hit = None if fresh else self._tokens.get(trust_id, now)
        if hit is not None:
            return hit
        scoped = {"auth": {"identity": self._password(), "scope": {"OS-TRUST:trust": {"id": trust_id}}}}
        status, headers, body = self._call("POST", self._url + "/auth/tokens", {}, scoped)
        token = headers.get("x-subject-token")
        if status != 201 or not isinstance(body, dict) or not token:
            if 400 <= status < 500:
                raise TrustRefused(f"Keystone gives no token for trust {trust_id} ({_why(status, body)}): it may have "
                                   "expired or been deleted, or the trustee's credentials are wrong")
            raise errors.Unavailable(f"Keystone gave no token for a trust ({_why(status, body)}).")
        expires = expiry(str(body["token"]["expires_at"]))
        self._tokens.put(trust_id, token, expires - min(MARGIN_S, max(0.0, expires - now) / 2))
        return token

    def forget(self, trust_id: str) -> None:
        self._tokens.forget(trust_id)

    def delete(self, trust_id: str, *, credentials: Credentials | None) -> bool:
        """Delete the trust: with the caller's token (the trustor's, or an admin's), else with a token of the
        trust itself (it impersonates the trustor). True when it is gone. Raises Unavailable, TrustRefused."""
        path = f"{self._url}/OS-TRUST/trusts/{quote(trust_id, safe='')}"
        attempts: list[Callable[[], str]] = [lambda: self.token(trust_id)]
        if credentials is not None:
            attempts.insert(0, lambda: credentials.token)
        try:
            for attempt in attempts:
                status, _headers, body = self._call("DELETE", path, {"X-Auth-Token": attempt()}, None)
                if status in {204, 404}:
                    return True
                if status not in {401, 403}:
                    log.warning("trust %s not deleted: %s", trust_id, _why(status, body))
                    return False
            return False
        finally:
            self.forget(trust_id)


def client(services: Services) -> Trusts:
    """This container's trusts client (one token cache per container), kept with its services."""
    return services.shared.once("trusts", lambda: Trusts(services.settings))
