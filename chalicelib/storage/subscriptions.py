"""Subscriptions, kept in the SQL catalog.

They are control-plane data: few, written rarely, read by the delivery
Lambda off the request path. Keeping them in the catalog (not in a pool)
means they survive the deletion of their queue, as upstream's do, and a
websocket disconnect can remove its subscriptions with one statement.

Ids start with the creation time in hex, so listing by id lists oldest
first and markers stay stable.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from chalicelib import errors
from chalicelib.storage.base import Subscription
from chalicelib.storage.catalog import Catalog, metadata, sql_errors

subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("project", sa.String(256), nullable=False),
    sa.Column("queue", sa.String(64), nullable=False),
    sa.Column("subscriber", sa.String(1024), nullable=False),
    sa.Column("ttl", sa.Integer, nullable=False),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("expires", sa.BigInteger, nullable=False),
    sa.Column("confirmed", sa.Boolean, nullable=False),
    sa.Column("connection", sa.String(128), nullable=True),
    sa.UniqueConstraint("project", "queue", "subscriber", name="uq_subscriptions_subscriber"),
    sa.Index("ix_subscriptions_scope", "project", "queue", "id"),
    sa.Index("ix_subscriptions_connection", "connection"),
    sa.Index("ix_subscriptions_expires", "expires"),
)


_LIVE_FOR_QUEUE = sa.select(subscriptions).where(
    subscriptions.c.project == sa.bindparam("project"), subscriptions.c.queue == sa.bindparam("queue"),
    subscriptions.c.expires > sa.bindparam("now")).order_by(subscriptions.c.id)


def new_id(now_ms: int) -> str:
    return f"{now_ms:012x}{secrets.token_hex(10)}"


def _row(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        project=row.project,
        queue=row.queue,
        subscriber=row.subscriber,
        ttl=row.ttl,
        options=json.loads(row.options),
        created_ms=row.created,
        expires_ms=row.expires,
        confirmed=bool(row.confirmed),
        connection=row.connection,
    )


def _unavailable() -> AbstractContextManager[None]:
    return sql_errors("The subscription catalog could not be reached.")


class SubscriptionStore:
    def __init__(self, catalog: Catalog) -> None:
        self._engine = catalog.engine

    def _one(self, query: Any) -> Subscription | None:
        with _unavailable():
            with self._engine.connect() as conn:
                row = conn.execute(query).first()
        return None if row is None else _row(row)

    def _scope(self, project: str, queue: str) -> Any:
        return sa.and_(subscriptions.c.project == project, subscriptions.c.queue == queue)

    def create(
        self,
        *,
        project: str,
        queue: str,
        subscriber: str,
        ttl: int,
        options: dict[str, Any],
        confirmed: bool,
        connection: str | None,
        now_ms: int,
    ) -> tuple[Subscription, bool]:
        """Create, or return the live subscription of the same subscriber (and False)."""
        same = sa.and_(self._scope(project, queue), subscriptions.c.subscriber == subscriber)
        sid, expires = new_id(now_ms), now_ms + ttl * 1000
        values = {
            "id": sid, "project": project, "queue": queue, "subscriber": subscriber, "ttl": ttl,
            "options": json.dumps(options), "created": now_ms, "expires": expires,
            "confirmed": confirmed, "connection": connection,
        }
        with _unavailable():
            try:
                with self._engine.begin() as conn:
                    # an expired subscription of the same subscriber no longer counts
                    conn.execute(subscriptions.delete().where(same, subscriptions.c.expires <= now_ms))
                    conn.execute(subscriptions.insert().values(**values))
            except sa_exc.IntegrityError:
                existing = self._one(sa.select(subscriptions).where(same))
                if existing is None:
                    raise errors.Unavailable("The subscription could not be stored.") from None
                return existing, False
        created = Subscription(
            id=sid, project=project, queue=queue, subscriber=subscriber, ttl=ttl, options=options,
            created_ms=now_ms, expires_ms=expires, confirmed=confirmed, connection=connection,
        )
        return created, True

    def get(self, *, project: str, queue: str, sid: str, now_ms: int) -> Subscription | None:
        return self._one(
            sa.select(subscriptions).where(
                self._scope(project, queue), subscriptions.c.id == sid, subscriptions.c.expires > now_ms
            )
        )

    def page(self, *, project: str, queue: str, marker: str | None, limit: int, now_ms: int) -> list[Subscription]:
        query = sa.select(subscriptions).where(self._scope(project, queue), subscriptions.c.expires > now_ms)
        if marker:
            query = query.where(subscriptions.c.id > marker)
        query = query.order_by(subscriptions.c.id).limit(limit)
        with _unavailable():
            with self._engine.connect() as conn:
                return [_row(row) for row in conn.execute(query)]

    def update(
        self, *, project: str, queue: str, sid: str, changes: dict[str, Any], now_ms: int
    ) -> Subscription | None:
        """Apply changes (subscriber, ttl, options) to a live subscription; None when there is none."""
        values: dict[str, Any] = {}
        if "subscriber" in changes:
            values["subscriber"] = changes["subscriber"]
        if "ttl" in changes:
            values["ttl"] = changes["ttl"]
            values["expires"] = now_ms + changes["ttl"] * 1000
        if "options" in changes:
            values["options"] = json.dumps(changes["options"])
        where = sa.and_(self._scope(project, queue), subscriptions.c.id == sid, subscriptions.c.expires > now_ms)
        with _unavailable():
            try:
                with self._engine.begin() as conn:
                    if values and conn.execute(subscriptions.update().where(where).values(**values)).rowcount == 0:
                        return None
            except sa_exc.IntegrityError:
                raise errors.Conflict(f"Queue {queue} already has a subscription for {changes.get('subscriber')}.") from None
        return self.get(project=project, queue=queue, sid=sid, now_ms=now_ms)

    def confirm(self, *, project: str, queue: str, sid: str, confirmed: bool, now_ms: int) -> Subscription | None:
        where = sa.and_(self._scope(project, queue), subscriptions.c.id == sid, subscriptions.c.expires > now_ms)
        with _unavailable():
            with self._engine.begin() as conn:
                if conn.execute(subscriptions.update().where(where).values(confirmed=confirmed)).rowcount == 0:
                    return None
        return self.get(project=project, queue=queue, sid=sid, now_ms=now_ms)

    def _delete(self, where: Any) -> list[Subscription]:
        with _unavailable():
            with self._engine.begin() as conn:
                rows = [_row(row) for row in conn.execute(sa.select(subscriptions).where(where))]
                if rows:
                    conn.execute(subscriptions.delete().where(subscriptions.c.id.in_([r.id for r in rows])))
        return rows

    def delete(self, *, project: str, queue: str, sid: str) -> list[Subscription]:
        return self._delete(sa.and_(self._scope(project, queue), subscriptions.c.id == sid))

    def delete_for_queue(self, *, project: str, queue: str) -> list[Subscription]:
        return self._delete(self._scope(project, queue))

    def delete_for_connection(self, connection: str) -> list[Subscription]:
        return self._delete(subscriptions.c.connection == connection)

    def delete_expired(self, *, now_ms: int) -> list[Subscription]:
        return self._delete(subscriptions.c.expires <= now_ms)

    def live_for_queue(self, *, project: str, queue: str, now_ms: int) -> Sequence[Subscription]:
        """Read for every notified post: one statement built once, with its parameters bound per call."""
        with _unavailable():
            with self._engine.connect() as conn:
                rows = conn.execute(_LIVE_FOR_QUEUE, {"project": project, "queue": queue, "now": now_ms})
                return [_row(row) for row in rows]

    def listening_until(self, *, project: str, queue: str, now_ms: int, confirmed_only: bool) -> int:
        """When the last live subscription of the queue that can receive expires (0 when none can)."""
        query = sa.select(sa.func.max(subscriptions.c.expires)).where(
            self._scope(project, queue), subscriptions.c.expires > now_ms)
        if confirmed_only:
            query = query.where(subscriptions.c.confirmed.is_(True))
        with _unavailable():
            with self._engine.connect() as conn:
                value = conn.execute(query).scalar()
        return int(value or 0)

    def horizons(self, *, now_ms: int, confirmed_only: bool, after: tuple[str, str] | None,
                 limit: int) -> list[tuple[str, str, int]]:
        """(project, queue, last expiry) of every queue with live subscriptions that can receive, by name."""
        expires = sa.func.max(subscriptions.c.expires)
        query = sa.select(subscriptions.c.project, subscriptions.c.queue, expires).where(
            subscriptions.c.expires > now_ms)
        if confirmed_only:
            query = query.where(subscriptions.c.confirmed.is_(True))
        if after is not None:
            query = query.where(sa.tuple_(subscriptions.c.project, subscriptions.c.queue) > after)
        query = query.group_by(subscriptions.c.project, subscriptions.c.queue).order_by(
            subscriptions.c.project, subscriptions.c.queue).limit(limit)
        with _unavailable():
            with self._engine.connect() as conn:
                return [(row[0], row[1], int(row[2])) for row in conn.execute(query)]
