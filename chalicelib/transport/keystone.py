"""Keystone v3 token validation for the ``keystone`` auth strategy, and the Keystone calls it shares.

The service authenticates itself with its own credentials (password auth,
scoped to its project) and validates a caller's token with ``GET
/v3/auth/tokens`` (``X-Subject-Token``). Results are cached per container,
bounded in size, until shortly before the token expires and for at most
``KEYSTONE_CACHE_TTL`` seconds, so a revoked token stops working within
that time (upstream's keystonemiddleware: 5 minutes). Token values are never
logged.

The HTTP call, the password identity, the token expiry and the bounded
cache are also what :mod:`chalicelib.keystone_trusts` (``trust+`` subscribers)
uses.
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
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from chalicelib import errors
from chalicelib.config import Settings

log = logging.getLogger(__name__)
MAX_CACHED = 10_000
EARLY_S = 5  # stop trusting a token this long before it expires
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
T = TypeVar("T")

Reply = tuple[int, Mapping[str, str], Any]
"""(status, headers with lower-case names, JSON body or None)."""
Transport = Callable[[str, str, Mapping[str, str], Any], Reply]
"""(method, url, headers, JSON body or None) -> Reply."""


@dataclasses.dataclass(frozen=True)
class Token:
    project: str
    user: str
    roles: frozenset[str]
    expires: float
    """Unix time."""
    role_ids: tuple[str, ...] = ()


def expiry(text: str) -> float:
    """Unix time of a Keystone ``expires_at``."""
    return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))


def v3_url(settings: Settings) -> str:
    """``KEYSTONE_URL``'s v3 API, whether or not the setting ends with ``/v3``."""
    url = (settings.keystone_url or "").rstrip("/")
    return url if url.endswith("/v3") else url + "/v3"


def password_identity(name: str | None, password: str | None, domain: str) -> dict[str, Any]:
    """The ``identity`` of a password authentication, the user named in ``domain`` (a name)."""
    return {"methods": ["password"], "password": {"user": {
        "name": name, "password": password, "domain": {"name": domain}}}}


def http_transport(timeout: float, *, unreachable: str) -> Transport:
    """Calls to Keystone (no proxy); Unavailable(``unreachable``) when it does not answer, or answers a
    success that is not JSON. An error's body is read when it is JSON, else None."""

    def call(method: str, url: str, headers: Mapping[str, str], body: Any) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json", **headers})
        try:
            with _OPENER.open(request, timeout=timeout) as response:
                return response.status, _lower(response.headers), json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, _lower(exc.headers), _error_body(exc)
            finally:
                exc.close()
        except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
            raise errors.Unavailable(unreachable) from exc

    return call


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _error_body(exc: urllib.error.HTTPError) -> Any:
    try:
        raw = exc.read()
        return json.loads(raw) if raw else None
    except (OSError, ValueError):
        return None


class TokenCache(Generic[T]):
    """Values (tokens, or what Keystone said of one) kept until a time of their own, ``size`` at most:
    the least recently used go first. Thread-safe."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[T, float]] = OrderedDict()

    def get(self, key: str, now: float) -> T | None:
        with self._lock:
            hit = self._entries.get(key)
            if hit is None or hit[1] <= now:
                return None
            self._entries.move_to_end(key)
            return hit[0]

    def put(self, key: str, value: T, until: float) -> None:
        with self._lock:
            self._entries[key] = (value, until)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)


class KeystoneValidator:
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        if not settings.keystone_url:
            raise errors.Unavailable("AUTH_STRATEGY is keystone but KEYSTONE_URL is not set.")
        self._url = v3_url(settings)
        self._settings = settings
        self._http = http_transport(settings.keystone_timeout,
                                    unreachable="Keystone could not be reached to check the token.")
        self._clock = clock
        self._lock = threading.Lock()
        self._service: tuple[str, float] | None = None
        self._cache: TokenCache[Token] = TokenCache(MAX_CACHED)

    def _call(self, method: str, path: str, headers: dict[str, str], body: Any = None) -> Reply:
        return self._http(method, self._url + path, headers, body)

    def _service_token(self, *, renew: bool = False) -> str:
        with self._lock:
            if self._service and not renew and self._service[1] - EARLY_S > self._clock():
                return self._service[0]
            s = self._settings
            auth = {"auth": {
                "identity": password_identity(s.keystone_username, s.keystone_password, s.keystone_user_domain),
                "scope": {"project": {"name": s.keystone_project, "domain": {"name": s.keystone_project_domain}}},
            }}
            status, headers, body = self._call("POST", "/auth/tokens", {}, auth)
            token = headers.get("x-subject-token")
            if status != 201 or body is None or not token:
                raise errors.Unavailable(f"The service could not authenticate to Keystone (HTTP {status}).")
            self._service = (token, expiry(body["token"]["expires_at"]))
            return token

    def validate(self, token: str) -> Token | None:
        """The token's project and roles, or None when Keystone does not accept it."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        hit = self._cache.get(key, now)
        if hit is not None:
            return hit
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
                      expires=expiry(data["expires_at"]), role_ids=tuple(str(r["id"]) for r in roles))
        if found.expires - EARLY_S <= now:
            return None
        self._cache.put(key, found, min(found.expires - EARLY_S, now + self._settings.keystone_cache_ttl))
        return found
