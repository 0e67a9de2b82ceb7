"""Websocket connections: who is connected, authenticated as which project.

A record lives as long as API Gateway lets a connection live (2 hours),
so a connection that vanished without a ``$disconnect`` cannot linger.
Stored in the state Redis (``STATE_URL``), one hash per connection under
its own hash tag.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from chalicelib.storage.redis import keys
from chalicelib.storage.state import StateRedis

MAX_CONNECTION_SECONDS = 2 * 60 * 60


@dataclasses.dataclass(frozen=True)
class Connection:
    id: str
    connected_ms: int
    project: str | None
    authenticated: bool
    source_ip: str
    expires: float | None = None
    """When the credentials the connection authenticated with expire (unix time)."""




class ConnectionStore:
    def __init__(self, state: StateRedis) -> None:
        self._state = state

    def _redis(self) -> Any:
        return self._state.client()

    def open(self, connection_id: str, *, now_ms: int, source_ip: str) -> None:
        from chalicelib.storage.redis.driver import translated

        with translated("record the connection"):
            pipe = self._redis().pipeline(transaction=False)
            pipe.hset(keys.connection(connection_id), mapping={"connected": now_ms, "ip": source_ip, "auth": 0, "project": ""})
            pipe.expire(keys.connection(connection_id), MAX_CONNECTION_SECONDS)
            pipe.execute()

    def get(self, connection_id: str) -> Connection | None:
        from chalicelib.storage.redis.driver import translated

        with translated("read the connection"):
            raw = self._redis().hgetall(keys.connection(connection_id))
        if not raw:
            return None
        return Connection(
            id=connection_id,
            connected_ms=int(raw.get("connected", 0)),
            project=raw.get("project") or None,
            authenticated=raw.get("auth") == "1",
            source_ip=raw.get("ip", ""),
            expires=float(raw["exp"]) if raw.get("exp") else None,
        )

    def authenticate(self, connection_id: str, *, project: str, expires: float | None = None) -> None:
        from chalicelib.storage.redis.driver import translated

        with translated("record the authentication"):
            self._redis().hset(keys.connection(connection_id), mapping={"auth": 1, "project": project,
                                                             "exp": "" if expires is None else expires})
            if expires is not None:
                self._redis().zadd(keys.CONNECTION_EXPIRIES, {connection_id: expires})

    def expired(self, *, now: float, limit: int = 500) -> list[str]:
        """Connections whose authentication expired, oldest first."""
        from chalicelib.storage.redis.driver import translated

        with translated("read expired connections"):
            return list(self._redis().zrangebyscore(keys.CONNECTION_EXPIRIES, "-inf", now, start=0, num=limit))

    def close(self, connection_id: str) -> None:
        from chalicelib.storage.redis.driver import translated

        with translated("forget the connection"):
            self._redis().delete(keys.connection(connection_id))
            self._redis().zrem(keys.CONNECTION_EXPIRIES, connection_id)
