"""Zaqar's ``_retry_policy``: how often and how late a failed delivery is tried again.

Phases, as upstream (and SNS) define them: ``retries_with_no_delay``
immediate retries; ``minimum_delay_retries`` retries ``minimum_delay``
apart; a backoff phase from ``minimum_delay`` to ``maximum_delay`` in steps
shaped by ``retry_backoff_function``; ``maximum_delay_retries`` retries
``maximum_delay`` apart. Then the delivery has failed for good.

Unlike upstream, the waits are not slept in a worker: each retry is a
message on an SQS delay queue.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from chalicelib import errors

STEP = 5  # seconds between backoff steps, upstream's LINEAR_INTERVAL
FUNCTIONS = ("linear", "arithmetic", "geometric", "exponential")
_INT_KEYS = ("retries_with_no_delay", "minimum_delay_retries", "minimum_delay", "maximum_delay",
             "maximum_delay_retries")
_COUNT_KEYS = ("retries_with_no_delay", "minimum_delay_retries", "maximum_delay_retries")
MAX_RETRIES = 100  # per phase (SNS allows 100 retries in all)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    retries_with_no_delay: int = 3
    minimum_delay_retries: int = 3
    minimum_delay: int = 5
    maximum_delay: int = 30
    maximum_delay_retries: int = 3
    retry_backoff_function: str = "linear"
    ignore_subscription_override: bool = False

    def backoff(self) -> list[int]:
        """The waits of the backoff phase, from the minimum towards the maximum delay."""
        low, high = self.minimum_delay, self.maximum_delay
        steps = max(1, (high - low) // STEP)
        if self.retry_backoff_function == "linear":  # upstream's range(minimum, maximum, LINEAR_INTERVAL)
            return list(range(low, high, STEP)) or [low]
        last = steps - 1 if steps > 1 else 1
        waits = []
        for i in range(steps):
            if self.retry_backoff_function == "arithmetic":
                share = (i * (i + 1) / 2) / (last * (last + 1) / 2)
                waits.append(int(low + (high - low) * share))
            else:  # geometric and exponential grow by the same ratio per step
                waits.append(int(low * (high / low) ** (i / last)) if low > 0 else int(high * i / last))
        return waits

    def delays(self) -> list[int]:
        """Every wait, in order; its length is the number of retries."""
        return (
            [0] * self.retries_with_no_delay
            + [self.minimum_delay] * self.minimum_delay_retries
            + self.backoff()
            + [self.maximum_delay] * self.maximum_delay_retries
        )

    def delay_before(self, retry: int) -> int | None:
        """Seconds to wait before retry number ``retry`` (1-based); None when there is none left."""
        waits = self.delays()
        return waits[retry - 1] if 1 <= retry <= len(waits) else None


def check(raw: Any, where: str) -> dict[str, Any]:
    """Validate a ``_retry_policy`` document (queue metadata or subscription options)."""
    if not isinstance(raw, dict):
        raise errors.InvalidBody(f"{where} _retry_policy must be a JSON object.")
    unknown = set(raw) - set(_INT_KEYS) - {"retry_backoff_function", "ignore_subscription_override"}
    if unknown:
        raise errors.InvalidBody(f"{where} _retry_policy has unknown keys: {', '.join(sorted(unknown))}.")
    for key in _INT_KEYS:
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise errors.InvalidBody(f"{where} _retry_policy.{key} must be a non-negative integer.")
        if key in _COUNT_KEYS and isinstance(value, int) and value > MAX_RETRIES:
            # each retry is a list entry and an SQS message: a huge count would exhaust the notifier
            raise errors.InvalidBody(f"{where} _retry_policy.{key} may be at most {MAX_RETRIES}.")
    function = raw.get("retry_backoff_function")
    if function is not None and function not in FUNCTIONS:
        raise errors.InvalidBody(f"{where} _retry_policy.retry_backoff_function must be one of {', '.join(FUNCTIONS)}.")
    override = raw.get("ignore_subscription_override")
    if override is not None and not isinstance(override, bool):
        raise errors.InvalidBody(f"{where} _retry_policy.ignore_subscription_override must be true or false.")
    policy = _build(raw)
    if policy.maximum_delay < policy.minimum_delay:
        raise errors.InvalidBody(f"{where} _retry_policy.maximum_delay must not be below minimum_delay.")
    if policy.maximum_delay - policy.minimum_delay < 2 * STEP:
        raise errors.InvalidBody(f"{where} _retry_policy needs maximum_delay - minimum_delay of at least {2 * STEP}.")
    if policy.maximum_delay > 900:
        raise errors.InvalidBody(f"{where} _retry_policy.maximum_delay may be at most 900 seconds (SQS's delay limit).")
    return raw


def _build(raw: Mapping[str, Any]) -> RetryPolicy:
    fields = {k: v for k, v in raw.items() if k in RetryPolicy.__dataclass_fields__ and v is not None}
    for key in _COUNT_KEYS:  # a policy stored before counts were bounded cannot make the notifier allocate more
        if isinstance(fields.get(key), int):
            fields[key] = min(fields[key], MAX_RETRIES)
    return RetryPolicy(**fields)


def effective(queue_policy: Mapping[str, Any] | None, subscription_policy: Mapping[str, Any] | None) -> RetryPolicy:
    """The subscription's policy wins, unless either says ignore_subscription_override."""
    queue_policy = queue_policy or {}
    subscription_policy = subscription_policy or {}
    ignore = bool(queue_policy.get("ignore_subscription_override")) or bool(
        subscription_policy.get("ignore_subscription_override"))
    chosen = queue_policy if ignore or not subscription_policy else subscription_policy
    return _build(chosen)
