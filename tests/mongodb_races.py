"""Races a MongoDB pool's tests stage on purpose."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.storage.mongodb.driver import MongoStore


@contextmanager
def deleted_while_posting(store: MongoStore, project: str, queue: str) -> Iterator[None]:
    """The queue is deleted between the next post's read of it and that post's write (once)."""
    read = store._queue_for_post
    raced: list[bool] = []

    def then_deleted(*args: Any) -> dict[str, Any]:
        found = read(*args)
        if not raced:
            raced.append(True)
            store.queue_delete(project=project, queue=queue)
        return found

    store._queue_for_post = then_deleted  # type: ignore[method-assign]
    try:
        yield
    finally:
        store._queue_for_post = read  # type: ignore[method-assign]
    assert raced, "no post read the queue"
