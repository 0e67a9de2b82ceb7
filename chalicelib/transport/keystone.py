"""Keystone v3 token validation for the ``keystone`` auth strategy.

The service authenticates itself with its own credentials (password auth,
scoped to its project) and validates a caller's token with ``GET
/v3/auth/tokens`` (``X-Subject-Token``). Results are cached per container,
bounded in size, until shortly before the token expires and for at most
``KEYSTONE_CACHE_TTL`` seconds, so a revoked token stops working within
that time (upstream's keystonemiddleware: 5 minutes). Token values are never
logged.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from chalicelib import errors
from chalicelib.config import Settings

log = logging.getLogger(__name__)
MAX_CACHED = 10_000
EARLY_S = 5  # stop trusting a token this long before it expires
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclasses.dataclass(frozen=True)
class Token:
    project: str
    user: str
    roles: frozenset[str]
    expires: float
    """Unix time."""
    role_ids: tuple[str, ...] = ()


def _expiry(text: str) -> float:
    return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))


class KeystoneValidator:
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        if not settings.keystone_url:
            raise errors.Unavailable("AUTH_STRATEGY is keystone but KEYSTONE_URL is not set.")
        self._url = settings.keystone_url.rstrip("/")
        if not self._url.endswith("/v3"):
            self._url += "/v3"
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._service: tuple[str, float] | None = None
        self._cache: OrderedDict[str, tuple[Token, float]] = OrderedDict()

    def _call(self, method: str, path: str, headers: dict[str, str], body: Any = None) -> tuple[int, Any, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json", **headers})
        try:
            with _OPENER.open(request, timeout=self._settings.keystone_timeout) as response:
                return response.status, response.headers, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            status, head = exc.code, exc.headers
            exc.close()
            return status, head, None
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise errors.Unavailable("Keystone could not be reached to check the token.") from exc

    def _service_token(self, *, renew: bool = False) -> str:
        with self._lock:
            if self._service and not renew and self._service[1] - EARLY_S > self._clock():
                return self._service[0]
            s = self._settings
            auth = {"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": s.keystone_username, "password": s.keystone_password,
                    "domain": {"name": s.keystone_user_domain}}}},
                "scope": {"project": {"name": s.keystone_project, "domain": {"name": s.keystone_project_domain}}},
            }}
            status, headers, body = self._call("POST", "/auth/tokens", {}, auth)
            if status != 201 or body is None:
                raise errors.Unavailable(f"The service could not authenticate to Keystone (HTTP {status}).")
            self._service = (str(headers["X-Subject-Token"]), _expiry(body["token"]["expires_at"]))
            return self._service[0]

    def validate(self, token: str) -> Token | None:
        """The token's project and roles, or None when Keystone does not accept it."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[1] > now:
                self._cache.move_to_end(key)
                return hit[0]
        status, _headers, body = self._call("GET", "/auth/tokens", {
            "X-Auth-Token": self._service_token(), "X-Subject-Token": token})
        if status == 401:  # our own token expired or was revoked
            status, _headers, body = self._call("GET", "/auth/tokens", {
                "X-Auth-Token": self._service_token(renew=True), "X-Subject-Token": token})
        if status != 200 or body is None:
            return None
        data = body["token"]
        project = data.get("project")
        if project is None:
            return None  # unscoped or domain-scoped: no tenant to act for
        roles = data.get("roles", [])
        found = Token(project=str(project["id"]), user=str(data["user"]["id"]),
                      roles=frozenset(str(r["name"]).lower() for r in roles),
                      expires=_expiry(data["expires_at"]), role_ids=tuple(str(r["id"]) for r in roles))
        until = min(found.expires - EARLY_S, now + self._settings.keystone_cache_ttl)
        if found.expires - EARLY_S <= now:
            return None
        with self._lock:
            self._cache[key] = (found, until)
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        return found
