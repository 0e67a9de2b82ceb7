"""What every operation receives: the services of this container and the caller."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from chalicelib.config import Settings
from chalicelib.events.model import EventSink

if TYPE_CHECKING:
    from chalicelib.storage.connections import ConnectionStore
    from chalicelib.storage.deliveries import DeliveryLog
    from chalicelib.storage.pooling import Pooling
    from chalicelib.storage.subscriptions import SubscriptionStore

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Services:
    settings: Settings
    pooling: Pooling
    subscriptions: SubscriptionStore
    connections: ConnectionStore
    deliveries: DeliveryLog
    sink: EventSink
    shared: Shared = dataclasses.field(default_factory=lambda: Shared())
    """What the container keeps between requests besides the above, made on first use."""


class Shared:
    """This container's long-lived helpers (the Keystone validator and its token cache, the trusts client, the
    notifier, which queues encrypt), each made once on first use and kept with the services, so replacing
    the services (runtime.install) replaces them all: no module keeps state of its own."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: making one helper may need another (the notifier, trusts)
        self._made: dict[str, Any] = {}

    def once(self, name: str, make: Callable[[], T]) -> T:
        found = self._made.get(name)
        if found is None:
            with self._lock:
                found = self._made.get(name)
                if found is None:
                    found = self._made[name] = make()
        return cast(T, found)


@dataclasses.dataclass(frozen=True)
class Credentials:
    """The caller's own Keystone token and what Keystone said of it, for acting on the caller's
    behalf (a trust+ subscriber's trust is made with it). Never logged: kept out of reprs."""

    token: str = dataclasses.field(repr=False)
    user: str
    role_ids: tuple[str, ...]
    """The token's roles on its project."""


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who asks: the tenant and the client instance (already validated)."""

    project: str
    client_id: str
    credentials: Credentials | None = dataclasses.field(default=None, repr=False, compare=False)
    """The caller's Keystone token (keystone auth strategy), when the transport has it."""


@dataclasses.dataclass(frozen=True)
class Outcome(Generic[T]):
    """A write operation's result (its events go to the queue's outbox in the pool's own step)."""

    value: T
