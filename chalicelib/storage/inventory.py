"""Pools and flavors in the catalog: what the admin API manages.

A flavor is a named set of pools: a pool belongs to at most one flavor
(its ``flavor`` column), and a queue created with ``_flavor`` is placed on
one of that flavor's pools. A flavor's own row keeps its capabilities.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from chalicelib import errors
from chalicelib.storage.catalog import Catalog, flavors, pools, queues, sql_errors
from chalicelib.storage.pools import Pool


def _unavailable() -> AbstractContextManager[None]:
    return sql_errors("The catalog database could not be reached.")


def _keeps_its_flavor() -> sa.ColumnElement[bool]:
    """True for a pool whose deletion leaves its flavor a pool: it has none, the flavor is gone, or the
    flavor has another pool (as upstream's MongoDB and Redis stores, a flavor keeps at least one)."""
    others = pools.alias("others")
    siblings = sa.select(sa.func.count()).select_from(others).where(others.c.flavor == pools.c.flavor)
    return sa.or_(pools.c.flavor.is_(None), ~sa.exists().where(flavors.c.name == pools.c.flavor),
                  siblings.scalar_subquery() > 1)


def _pool(row: Any) -> Pool:
    return Pool(row.name, row.uri, row.weight, row.flavor, json.loads(row.options or "{}"))


class Inventory:
    def __init__(self, catalog: Catalog) -> None:
        self._engine = catalog.engine

    # -- pools --------------------------------------------------------------------

    def pool_page(self, *, marker: str | None, limit: int) -> list[Pool]:
        query = sa.select(pools).order_by(pools.c.name).limit(limit)
        if marker:
            query = query.where(pools.c.name > marker)
        with _unavailable():
            with self._engine.connect() as conn:
                return [_pool(row) for row in conn.execute(query)]

    def pool_get(self, name: str) -> Pool | None:
        with _unavailable():
            with self._engine.connect() as conn:
                row = conn.execute(sa.select(pools).where(pools.c.name == name)).first()
        return None if row is None else _pool(row)

    def pool_create(self, pool: Pool) -> None:
        with _unavailable():
            try:
                with self._engine.begin() as conn:
                    conn.execute(pools.insert().values(name=pool.name, uri=pool.uri, weight=pool.weight,
                                                       flavor=pool.flavor, options=json.dumps(pool.options)))
            except sa_exc.IntegrityError:
                raise errors.Conflict(f"Pool {pool.name} already exists, or another pool has the URI {pool.uri}.") from None

    def pool_update(self, name: str, changes: dict[str, Any]) -> Pool | None:
        values = {k: (json.dumps(v) if k == "options" else v) for k, v in changes.items()}
        with _unavailable():
            try:
                with self._engine.begin() as conn:
                    if conn.execute(pools.update().where(pools.c.name == name).values(**values)).rowcount == 0:
                        return None
            except sa_exc.IntegrityError:
                raise errors.Conflict(f"Another pool already has the URI {changes.get('uri')}.") from None
        return self.pool_get(name)

    def pool_delete(self, name: str) -> None:
        """Delete a pool that is not a flavor's last pool, holds no queue and serves no flavor in use.

        A flavor must keep at least one pool (as upstream's MongoDB and Redis
        stores: PoolInUseByFlavor, 403); nothing is deleted when refused.
        """
        with _unavailable():
            with self._engine.begin() as conn:
                row = conn.execute(sa.select(pools).where(pools.c.name == name).with_for_update()).first()
                if row is None:
                    return
                if row.flavor is not None:
                    # the flavor's row stays locked to the end of the transaction (PostgreSQL), so two deletes
                    # of its last two pools cannot both see the other one
                    conn.execute(sa.select(flavors.c.name).where(flavors.c.name == row.flavor).with_for_update())
                    if not conn.execute(sa.select(_keeps_its_flavor()).where(pools.c.name == name)).scalar():
                        raise errors.PoolInUseByFlavor(pool=name, flavors=[row.flavor])
                held = conn.execute(sa.select(sa.func.count()).select_from(queues).where(queues.c.pool == name)).scalar()
                if held:
                    raise errors.Conflict(f"Pool {name} still holds {held} queue(s); delete or move them first.")
                if row.flavor is not None and self._flavor_used(conn, row.flavor):
                    raise errors.Forbidden(f"Pool {name} serves flavor {row.flavor}, which queues use.")
                # The same rule once more in the delete itself: SQLite runs the reads above outside
                # the transaction, so a concurrent delete of the flavor's other pool may have passed them too.
                if not conn.execute(pools.delete().where(pools.c.name == name, _keeps_its_flavor())).rowcount:
                    flavor = conn.execute(sa.select(pools.c.flavor).where(pools.c.name == name)).scalar()
                    if flavor is not None:
                        raise errors.PoolInUseByFlavor(pool=name, flavors=[flavor])

    # -- flavors ------------------------------------------------------------------

    @staticmethod
    def _flavor_used(conn: Any, flavor: str) -> bool:
        return conn.execute(sa.select(queues.c.name).where(queues.c.flavor == flavor).limit(1)).first() is not None

    def flavor_pools(self, name: str) -> list[str]:
        with _unavailable():
            with self._engine.connect() as conn:
                query = sa.select(pools.c.name).where(pools.c.flavor == name).order_by(pools.c.name)
                return [row.name for row in conn.execute(query)]

    def flavor_get(self, name: str) -> dict[str, Any] | None:
        with _unavailable():
            with self._engine.connect() as conn:
                row = conn.execute(sa.select(flavors).where(flavors.c.name == name)).first()
        if row is None:
            return None
        return {"name": row.name, "capabilities": json.loads(row.capabilities or "{}"),
                "pool_list": self.flavor_pools(name)}

    def flavor_page(self, *, marker: str | None, limit: int) -> list[dict[str, Any]]:
        query = sa.select(flavors.c.name).order_by(flavors.c.name).limit(limit)
        if marker:
            query = query.where(flavors.c.name > marker)
        with _unavailable():
            with self._engine.connect() as conn:
                names = [row.name for row in conn.execute(query)]
        return [found for name in names if (found := self.flavor_get(name)) is not None]

    def flavor_put(self, name: str, *, pool_list: Sequence[str], capabilities: dict[str, Any], create: bool) -> bool:
        """Create (or, with create False, update) a flavor and give it exactly these pools."""
        with _unavailable():
            with self._engine.begin() as conn:
                exists = conn.execute(sa.select(flavors.c.name).where(flavors.c.name == name)).first() is not None
                if create and exists:
                    raise errors.Conflict(f"Flavor {name} already exists.")
                if not create and not exists:
                    return False
                rows = conn.execute(sa.select(pools.c.name, pools.c.flavor).where(pools.c.name.in_(list(pool_list))))
                found = {row.name: row.flavor for row in rows}
                missing = sorted(set(pool_list) - set(found))
                if missing:
                    raise errors.InvalidBody(f"Unknown pool(s): {', '.join(missing)}.")
                taken = sorted(p for p, f in found.items() if f not in (None, name))
                if taken:
                    raise errors.Conflict(f"Pool(s) {', '.join(taken)} already serve another flavor.")
                if exists:
                    conn.execute(flavors.update().where(flavors.c.name == name)
                                 .values(capabilities=json.dumps(capabilities)))
                else:
                    conn.execute(flavors.insert().values(name=name, capabilities=json.dumps(capabilities)))
                conn.execute(pools.update().where(pools.c.flavor == name).values(flavor=None))
                conn.execute(pools.update().where(pools.c.name.in_(list(pool_list))).values(flavor=name))
        return True

    def flavor_delete(self, name: str) -> None:
        with _unavailable():
            with self._engine.begin() as conn:
                if self._flavor_used(conn, name):
                    raise errors.Conflict(f"Flavor {name} is used by queues; delete them first.")
                conn.execute(pools.update().where(pools.c.flavor == name).values(flavor=None))
                conn.execute(flavors.delete().where(flavors.c.name == name))
