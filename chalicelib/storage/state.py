"""The state Redis (``STATE_URL``, the default pool unless set): one lazily
made client shared by what keeps small state there (websocket connections,
the notifier's delivery log)."""

from __future__ import annotations

import threading
from typing import Any


class StateRedis:
    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from chalicelib.storage.redis.driver import connect

                    self._client = connect(self.url)
        return self._client
