"""A container's long-lived helpers live with its services (chalicelib.api.context.Shared): each is made once,
however many threads ask at the same moment, and new services come with new helpers."""

from __future__ import annotations

import threading
import time

from chalicelib.api.context import Shared


def test_each_helper_is_made_once_even_when_threads_race_for_it() -> None:
    shared = Shared()
    made: list[object] = []
    start = threading.Barrier(8, timeout=30)

    def make() -> object:
        time.sleep(0.01)  # long enough for the others to arrive while it is being made
        made.append(object())
        return made[-1]

    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(shared.once("helper", make))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and got == made * 8


def test_other_services_have_other_helpers() -> None:
    first, second = Shared(), Shared()
    assert first.once("notifier", object) is first.once("notifier", object)
    assert first.once("notifier", object) is not second.once("notifier", object)
    assert first.once("keystone", dict) is not first.once("trusts", dict)


def test_making_one_helper_may_ask_for_another() -> None:
    """The notifier is made with the trusts client: asking for it while making the notifier must not wait for
    itself (a deadlock here once stopped every trust+ delivery)."""
    shared = Shared()
    done = threading.Event()

    def make_outer() -> tuple[str, object]:
        return ("notifier", shared.once("trusts", object))

    worker = threading.Thread(target=lambda: (shared.once("notifier", make_outer), done.set()), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert done.is_set()
    assert shared.once("notifier", object)[1] is shared.once("trusts", object)  # type: ignore[index]
