"""The local delivery loop: Lambda's event source mappings and schedules, run in one thread.

It hands Kinesis records and SQS messages to the same handlers Lambda runs
(through :mod:`infra.local.pumps`, which read them with boto3), and runs the
relay and housekeeping schedules. It does not poll in a tight loop: it
sleeps until the earliest of

- a wake-up from the local AWS (:mod:`infra.local.wake`): records were
  written, or an SQS message becomes visible at a known time (now, or
  after its ``DelaySeconds``);
- a message it left in the queue (its handler failed) becoming visible
  again, one visibility timeout later;
- a retry of stream records whose handler failed (Lambda retries a failed
  batch until it succeeds; here with a short backoff that grows to the
  safety interval);
- the next relay or housekeeping run;
- the safety poll (``SAFETY_S``), for any hint that got lost.

While the stream has more than a poll read, it polls again at once; a
poll that caught up waits for the next wake-up. Without a wake-up channel (AWS somewhere else) it polls every
``FALLBACK_POLL_S``, as the loop always did.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from infra.local.wake import Wakeups

log = logging.getLogger(__name__)

SAFETY_S = 5.0
FALLBACK_POLL_S = 0.05
RELAY_S = 1.0
HOUSEKEEPING_S = 10.0
RETRY_BACKOFF_S = 0.1
BATCH_WINDOW_S = 0.025
"""After a wake-up, records are read this much later, so that writes close together are read (and
handed to the deliver Lambda) as one batch, as Lambda's MaximumBatchingWindowInSeconds does."""
VISIBLE_SLACK_S = 0.01  # moto makes a delayed message visible strictly after its time


class Pump(Protocol):
    failed: int

    def poll(self) -> int: ...


class StreamLike(Pump, Protocol):
    behind: bool
    """The last poll left records unread."""


class QueueLike(Pump, Protocol):
    visibility_timeout_s: int


class Waker(Protocol):
    """Where wake-ups come from (infra.local.wake.WakeReceiver)."""

    def wait(self, timeout_s: float) -> Wakeups: ...


class DeliveryLoop:
    def __init__(self, stream: StreamLike, queue: QueueLike, *, relay: Callable[[], Any], housekeeping: Callable[[], Any],
                 wake: Waker | None, relay_s: float = RELAY_S, housekeeping_s: float = HOUSEKEEPING_S,
                 safety_s: float = SAFETY_S, batch_window_s: float = BATCH_WINDOW_S, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time) -> None:
        self.stream, self.queue = stream, queue
        self._relay, self._housekeeping = relay, housekeeping
        self._wake = wake
        self._relay_s, self._housekeeping_s = relay_s, housekeeping_s
        self._idle_s = safety_s if wake is not None else FALLBACK_POLL_S
        self._batch_window_s = batch_window_s
        self._clock, self._wall = clock, wall
        now = clock()
        self.stream_due = self.queue_due = self.relay_due = self.housekeeping_due = now
        self._visible: list[float] = []  # when messages become visible in the queue (clock time), a heap
        self._backoff = RETRY_BACKOFF_S

    # -- one turn ---------------------------------------------------------------------------

    def turn(self, stop: threading.Event | None = None) -> None:
        """Do what is due, then wait until something else is."""
        now = self._clock()
        if now >= self.stream_due:
            self._poll_stream(now)
        now = self._clock()
        if self._visible and self._visible[0] <= now:
            self.queue_due = now
            while self._visible and self._visible[0] <= now:
                heapq.heappop(self._visible)
        if now >= self.queue_due:
            self._poll_queue(now)
        if self._clock() >= self.relay_due:
            self._run("relay", self._relay)
            self.relay_due = self._clock() + self._relay_s
        if self._clock() >= self.housekeeping_due:
            self.housekeeping_due = self._clock() + self._housekeeping_s
            self._run("housekeeping", self._housekeeping)
        self._wait(self.next_due() - self._clock(), stop)

    def next_due(self) -> float:
        due = min(self.stream_due, self.queue_due, self.relay_due, self.housekeeping_due)
        return min(due, self._visible[0]) if self._visible else due

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.turn(stop)

    # -- the parts ---------------------------------------------------------------------------

    def _poll_stream(self, now: float) -> None:
        try:
            handled, failed = self.stream.poll(), self.stream.failed
        except Exception:  # the iterator did not move: the records are handed again
            log.exception("local delivery loop: stream")
            handled, failed = 0, 1
        if handled and self.stream.behind:  # more is waiting: read on at once
            self.stream_due = now
        elif handled:  # caught up: the next write wakes the loop (or the safety poll comes)
            self.stream_due = now + self._idle_s
        elif failed:
            self.stream_due = now + self._backoff
            self._backoff = min(self._backoff * 2, self._idle_s)
        else:
            self.stream_due = now + self._idle_s
        if not failed:
            self._backoff = RETRY_BACKOFF_S

    def _poll_queue(self, now: float) -> None:
        try:
            handled, failed = self.queue.poll(), self.queue.failed
        except Exception:  # whatever was received stays in the queue, invisible for a while
            log.exception("local delivery loop: retry queue")
            handled, failed = 0, 1
        self.queue_due = now if handled else now + self._idle_s
        if failed:
            heapq.heappush(self._visible, now + self.queue.visibility_timeout_s + VISIBLE_SLACK_S)

    def _run(self, name: str, task: Callable[[], Any]) -> None:
        try:
            task()
        except Exception:  # keep delivering: log what a real Lambda would have logged
            log.exception("local delivery loop: %s", name)

    def _wait(self, timeout_s: float, stop: threading.Event | None) -> None:
        if self._wake is None:
            if timeout_s > 0:
                if stop is not None:
                    stop.wait(timeout_s)
                else:
                    time.sleep(timeout_s)
            return
        woken = self._wake.wait(timeout_s)
        now, wall = self._clock(), self._wall()
        if woken.records:
            self.stream_due = min(self.stream_due, now + self._batch_window_s)
        for when in woken.visible_at:
            due = now + (when - wall) + VISIBLE_SLACK_S
            if due <= now:
                self.queue_due = min(self.queue_due, now)
            else:
                heapq.heappush(self._visible, due)
