"""Settings, read once per container from an injected mapping.

No other module reads ``os.environ``: everything configurable is a field of
:class:`Settings`, built by :func:`Settings.from_mapping` and cached by
:func:`get_settings`. Limits default to upstream Zaqar's values.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting is present but unusable; raised at start, never per request."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _number(env: Mapping[str, str], name: str, default: T, parse: Callable[[str], T], what: str) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, not {raw!r}") from None


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int, "an integer")


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float, "a number")


@dataclasses.dataclass(frozen=True)
class Limits:
    """Request limits; the defaults are upstream Zaqar's."""

    max_messages_post_size: int = 262144
    default_message_ttl: int = 3600
    min_message_ttl: int = 60
    max_message_ttl: int = 1209600
    max_message_delay: int = 900
    default_claim_ttl: int = 300
    default_claim_grace: int = 60
    min_claim_ttl: int = 60
    max_claim_ttl: int = 43200
    min_claim_grace: int = 60
    max_claim_grace: int = 43200
    max_messages_per_claim_or_pop: int = 20
    default_messages_per_claim: int = 10
    max_messages_per_page: int = 20
    default_messages_per_page: int = 10
    max_queues_per_page: int = 20
    default_queues_per_page: int = 10
    max_queue_metadata: int = 65536
    max_subscriptions_per_page: int = 20
    default_subscriptions_per_page: int = 10
    max_project_id: int = 256
    max_queue_name: int = 64


@dataclasses.dataclass(frozen=True)
class Settings:
    pool_url: str
    catalog_url: str
    data_dir: Path
    admin_mode: bool = False
    auth_strategy: str = "noauth"
    catalog_auto_migrate: bool = True
    catalog_cache_ttl: float = 10.0
    client_id_uuid_strict: bool = True
    require_confirmation: bool = False
    message_encryption_key: str | None = None
    state_url: str | None = None
    """Redis for websocket connections and delivery records; the default pool when unset."""
    signing_key: str | None = None
    event_stream: str | None = None
    """Kinesis stream name; events are published (and notifications delivered) only when set."""
    event_stream_complete: bool = False
    """Stream every change (audit, analytics), not only what subscriptions need."""
    retry_queue: str | None = None
    """SQS queue name for delayed deliveries and retries."""
    ses_sender: str | None = None
    ses_allowed_senders: frozenset[str] = frozenset()
    """Senders a mailto subscription may choose with options.from, besides ses_sender."""
    websocket_api_id: str | None = None
    websocket_stage: str = "api"
    webhook_timeout: float = 5.0
    idempotency_window: float = 300.0
    """Seconds an Idempotency-Key of a message post stays bound to that post."""
    webhook_allow_loopback: bool = False
    public_url: str = "http://127.0.0.1:8888"
    keystone_url: str | None = None
    keystone_username: str | None = None
    keystone_password: str | None = None
    keystone_project: str | None = None
    keystone_user_domain: str = "Default"
    keystone_project_domain: str = "Default"
    keystone_timeout: float = 5.0
    keystone_cache_ttl: float = 60.0
    trustee_username: str | None = None
    """The Keystone user trust+http(s) subscribers delegate to (its tokens go with their webhooks)."""
    trustee_password: str | None = dataclasses.field(default=None, repr=False)
    trustee_user_domain: str = "Default"
    default_project: str | None = None
    """noauth only: the project of requests that send no X-Project-ID (the openstack CLI cannot)."""
    request_log: bool = True
    """One structured line (and CloudWatch metrics) per request on stdout."""
    limits: Limits = dataclasses.field(default_factory=Limits)

    @property
    def has_trustee(self) -> bool:
        """trust+ subscribers can be served: a trustee, and a Keystone to make and use its trusts with."""
        return bool(self.trustee_username and self.trustee_password and self.keystone_url)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        data_dir = Path(env.get("DATA_DIR") or "./.local")
        catalog_url = env.get("CATALOG_URL") or f"sqlite:///{data_dir / 'catalog.sqlite3'}"
        strategy = (env.get("AUTH_STRATEGY") or "noauth").strip().lower()
        if strategy not in {"noauth", "keystone"}:
            raise ConfigError(f"AUTH_STRATEGY must be noauth or keystone, not {strategy!r}")
        uuid_mode = (env.get("CLIENT_ID_UUID_SAFE") or "strict").strip().lower()
        if strategy == "keystone" and not all(env.get(k) for k in (
                "KEYSTONE_URL", "KEYSTONE_USERNAME", "KEYSTONE_PASSWORD", "KEYSTONE_PROJECT")):
            raise ConfigError("AUTH_STRATEGY=keystone needs KEYSTONE_URL, KEYSTONE_USERNAME, KEYSTONE_PASSWORD "
                              "and KEYSTONE_PROJECT (the service's own credentials)")
        if bool(env.get("TRUSTEE_USERNAME")) != bool(env.get("TRUSTEE_PASSWORD")):
            raise ConfigError("TRUSTEE_USERNAME and TRUSTEE_PASSWORD go together (the trustee of trust+ subscribers)")
        default_project = (env.get("DEFAULT_PROJECT") or "").strip() or None
        if default_project is not None and strategy != "noauth":
            raise ConfigError("DEFAULT_PROJECT applies to AUTH_STRATEGY=noauth only (with keystone the token "
                              "decides the project)")
        if default_project is not None and len(default_project) > Limits.max_project_id:
            raise ConfigError(f"DEFAULT_PROJECT may be at most {Limits.max_project_id} characters long")
        if uuid_mode not in {"strict", "off"}:
            raise ConfigError("CLIENT_ID_UUID_SAFE must be strict or off")
        limits = Limits(**{name: _int(env, name.upper(), getattr(Limits, name)) for name in CONFIGURABLE_LIMITS})
        special: dict[str, Any] = {
            "pool_url": env.get("POOL_URL") or "redis://127.0.0.1:6379/0",
            "catalog_url": catalog_url,
            "data_dir": data_dir,
            "auth_strategy": strategy,
            "client_id_uuid_strict": uuid_mode == "strict",
            "ses_allowed_senders": frozenset(
                s.strip().lower() for s in (env.get("SES_ALLOWED_SENDERS") or "").split(",") if s.strip()),
            "public_url": (env.get("PUBLIC_URL") or cls.public_url).rstrip("/"),
            "default_project": default_project,
            "limits": limits,
        }
        # every other setting is its field's name in capitals, read by its type, its default written once:
        # on the field
        plain: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            if field.name in special:
                continue
            name, default = field.name.upper(), field.default
            if field.type == "bool":
                plain[field.name] = _bool(env, name, bool(default))
            elif field.type == "float":
                plain[field.name] = _float(env, name, float(default))  # type: ignore[arg-type]
            elif field.type in ("str", "str | None"):
                plain[field.name] = env.get(name) or default
            else:
                raise TypeError(f"no reader for setting {field.name} of type {field.type}")
        if plain["idempotency_window"] < 1:
            raise ConfigError("IDEMPOTENCY_WINDOW must be at least 1 (seconds)")
        return cls(**special, **plain)


CONFIGURABLE_LIMITS = ("max_messages_post_size", "default_message_ttl", "max_message_ttl", "max_message_delay",
                       "default_claim_ttl", "default_claim_grace", "max_claim_ttl", "max_claim_grace",
                       "max_messages_per_claim_or_pop", "max_messages_per_page", "max_queues_per_page",
                       "max_queue_metadata")
"""The limits an environment variable of the same name in capitals sets (MAX_MESSAGE_TTL ...)."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this container, built from the process environment once."""
    return Settings.from_mapping(os.environ)
