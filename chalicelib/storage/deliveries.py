"""Which deliveries were made: the notifier's memory against redelivered batches.

One Redis key per delivered (event, subscription, message), kept for a few
days, in the state Redis (``STATE_URL``, the default pool unless set).
"""

from __future__ import annotations

from typing import Any

from chalicelib.storage.state import StateRedis


class DeliveryLog:
    def __init__(self, state: StateRedis) -> None:
        self._state = state

    def _redis(self) -> Any:
        return self._state.client()

    def delivered(self, key: str) -> bool:
        from chalicelib.storage.redis.driver import translated

        with translated("check the delivery log"):
            return bool(self._redis().exists(key))

    def record(self, key: str, *, keep_s: int) -> None:
        from chalicelib.storage.redis.driver import translated

        with translated("write the delivery log"):
            self._redis().set(key, "1", ex=keep_s)
