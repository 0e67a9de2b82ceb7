"""Which deliveries were made: the notifier's memory against redelivered batches.

One Redis key per delivered (event, subscription, message), kept for a few
days, in the state Redis (``STATE_URL``, the default pool unless set).
"""

from __future__ import annotations

from typing import Any


class DeliveryLog:
    def __init__(self, url: str) -> None:
        self._url = url
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            from chalicelib.storage.redis.driver import connect

            self._client = connect(self._url)
        return self._client

    def delivered(self, key: str) -> bool:
        from chalicelib.storage.redis.driver import translated

        with translated("check the delivery log"):
            return bool(self._redis().exists(key))

    def record(self, key: str, *, keep_s: int) -> None:
        from chalicelib.storage.redis.driver import translated

        with translated("write the delivery log"):
            self._redis().set(key, "1", ex=keep_s)
