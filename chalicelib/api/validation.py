"""Request validation shared by every transport.

Each check raises :class:`chalicelib.errors.Invalid` (or ``InvalidBody``)
with a sentence a person can act on. The shape of request bodies is
checked against the published schemas (:mod:`chalicelib.api.bodies`);
what is here are names, headers, query parameters and the reserved queue
metadata.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

from chalicelib import errors
from chalicelib.config import Limits
from chalicelib.storage.base import QueueSettings

QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_ID_LEN = 64
MAX_CLAIM_COUNT = 2**31 - 1  # stored as a number by every pool kind (MongoDB refuses integers beyond 64 bits)


def queue_name(name: str, limits: Limits) -> str:
    if not name or len(name) > limits.max_queue_name or not QUEUE_NAME.match(name):
        raise errors.Invalid(
            f"Queue names may only contain ASCII letters, digits, underscores, dashes and dots, "
            f"and be 1 to {limits.max_queue_name} characters long; got {name[:80]!r}."
        )
    return name


def project_id(value: str | None, limits: Limits) -> str:
    if value is None or value == "":
        raise errors.Invalid("Missing header X-Project-ID: the project (tenant) must be given.")
    if len(value) > limits.max_project_id:
        raise errors.Invalid(f"X-Project-ID may be at most {limits.max_project_id} characters long.")
    if not value.isprintable():  # what no HTTP header carries; a topic space ends with one (chalicelib.topics)
        raise errors.Invalid("X-Project-ID may not contain control or other non-printable characters.")
    return value


IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def idempotency_key(value: str) -> str:
    """An Idempotency-Key: 1 to 255 visible ASCII characters (what an HTTP header carries unaltered)."""
    if not IDEMPOTENCY_KEY.fullmatch(value):
        raise errors.Invalid(f"Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces); "
                             f"got {value[:80]!r}.")
    return value


def client_id(value: str | None, *, strict_uuid: bool) -> str:
    if value is None or value == "":
        raise errors.Invalid("Missing header Client-ID: every request must say which client sends it.")
    if strict_uuid:
        try:
            uuid.UUID(value)
        except ValueError:
            raise errors.Invalid(f"Malformed Client-ID {value[:80]!r}: it must be a UUID.") from None
    elif not 10 <= len(value) <= 36:
        raise errors.Invalid("Client-ID must be 10 to 36 characters long.")
    return value


def integer(value: Any, name: str, low: int, high: int | None = None) -> int:
    """An int (not a bool) within [low, high]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.InvalidBody(f"{name} must be an integer, not {type(value).__name__}.")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise errors.InvalidBody(f"{name} must be {bound}; got {value}.")
    return value


def query_int(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.Invalid(f"The {name} parameter must be an integer; got {raw[:40]!r}.") from None
    if not low <= value <= high:
        raise errors.Invalid(f"The {name} parameter must be between {low} and {high}; got {value}.")
    return value


def query_bool(raw: str | None, name: str, default: bool) -> bool:
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in {"true", "1", "yes"}:
        return True
    if value in {"false", "0", "no"}:
        return False
    raise errors.Invalid(f"The {name} parameter must be true or false; got {raw[:40]!r}.")


def query_ids(raw: str, name: str, limit: int) -> list[str]:
    ids = [item for item in raw.split(",") if item]
    if not ids:
        raise errors.Invalid(f"The {name} parameter must list at least one id.")
    if len(ids) > limit:
        raise errors.Invalid(f"The {name} parameter may list at most {limit} ids; got {len(ids)}.")
    return ids


def message_id(value: str) -> bool:
    """Whether a string can be a message or claim id at all (others match nothing)."""
    return 0 < len(value) <= MAX_ID_LEN


# -- reserved queue metadata ----------------------------------------------

RESERVED_DEFAULTS_KEYS = (
    "_max_messages_post_size",
    "_default_message_ttl",
    "_default_message_delay",
    "_dead_letter_queue",
    "_dead_letter_queue_messages_ttl",
    "_max_claim_count",
    "_enable_encrypt_messages",
)


def reserved_defaults(limits: Limits) -> dict[str, Any]:
    return {
        "_max_messages_post_size": limits.max_messages_post_size,
        "_default_message_ttl": limits.default_message_ttl,
        "_default_message_delay": 0,
        "_dead_letter_queue": None,
        "_dead_letter_queue_messages_ttl": None,
        "_max_claim_count": None,
        "_enable_encrypt_messages": False,
    }


def queue_settings(metadata: Mapping[str, Any], limits: Limits, *, encryption_available: bool) -> QueueSettings:
    """Validate the reserved keys of queue metadata and extract what drivers act on."""
    m = metadata

    def opt_int(key: str, low: int, high: int | None) -> int | None:
        return None if m.get(key) is None else integer(m[key], key, low, high)

    dlq = m.get("_dead_letter_queue")
    if dlq is not None:
        if not isinstance(dlq, str):
            raise errors.InvalidBody("_dead_letter_queue must be a queue name.")
        queue_name(dlq, limits)
    encrypt = m.get("_enable_encrypt_messages", False)
    if encrypt is None:
        encrypt = False
    if not isinstance(encrypt, bool):
        raise errors.InvalidBody("_enable_encrypt_messages must be true or false.")
    if encrypt and not encryption_available:
        raise errors.InvalidBody(
            "_enable_encrypt_messages needs MESSAGE_ENCRYPTION_KEY, which this deployment does not set."
        )
    flavor = m.get("_flavor")
    if flavor is not None and not isinstance(flavor, str):
        raise errors.InvalidBody("_flavor must be a flavor name.")
    policy = m.get("_retry_policy")
    if policy is not None:
        from chalicelib.rules import retry_policy as retry

        retry.check(policy, "Queue")
    return QueueSettings(
        default_ttl=opt_int("_default_message_ttl", limits.min_message_ttl, limits.max_message_ttl),
        default_delay=opt_int("_default_message_delay", 0, limits.max_message_delay),
        max_post_size=opt_int("_max_messages_post_size", 1, limits.max_messages_post_size),
        dead_letter_queue=dlq,
        dead_letter_ttl=opt_int("_dead_letter_queue_messages_ttl", limits.min_message_ttl, limits.max_message_ttl),
        max_claim_count=opt_int("_max_claim_count", 1, MAX_CLAIM_COUNT),
        encrypted=encrypt,
    )
