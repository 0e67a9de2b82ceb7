"""The local stack's AWS adjustments (infra/local/aws.py), its wake-ups (infra/local/wake.py) and the
delivery loop's schedule (infra/local/deliveries.py), without starting the stack: moto in-process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.local import aws, wake
from infra.local.deliveries import DeliveryLoop
from infra.local.wake import Wakeups

STREAM = "events"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kinesis(clock: Clock) -> Iterator[Any]:
    with mock_aws(), aws.adjusted(retention_s=60, max_records=1000, clock=clock):
        client = boto3.client("kinesis")
        client.create_stream(StreamName=STREAM, ShardCount=1)
        yield client


def _put(kinesis: Any, *bodies: str) -> list[str]:
    reply = kinesis.put_records(StreamName=STREAM, Records=[{"Data": b.encode(), "PartitionKey": "p"} for b in bodies])
    return [r["SequenceNumber"] for r in reply["Records"]]


def _iterator(kinesis: Any, kind: str, sequence_number: str | None = None) -> str:
    shard = kinesis.describe_stream(StreamName=STREAM)["StreamDescription"]["Shards"][0]["ShardId"]
    extra = {"StartingSequenceNumber": sequence_number} if sequence_number else {}
    iterator: str = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard, ShardIteratorType=kind,
                                               **extra)["ShardIterator"]
    return iterator


def _read(kinesis: Any, iterator: str, limit: int = 10_000) -> tuple[list[str], str]:
    reply = kinesis.get_records(ShardIterator=iterator, Limit=limit)
    return [r["Data"].decode() for r in reply["Records"]], reply["NextShardIterator"]


def test_get_records_returns_what_follows_the_iterator_in_order(kinesis: Any) -> None:
    numbers = _put(kinesis, *[f"r{i}" for i in range(50)])
    assert [int(n) for n in numbers] == sorted(int(n) for n in numbers)  # increasing, as Kinesis'

    got, _ = _read(kinesis, _iterator(kinesis, "AFTER_SEQUENCE_NUMBER", numbers[19]))
    assert got == [f"r{i}" for i in range(20, 50)]
    got, _ = _read(kinesis, _iterator(kinesis, "AT_SEQUENCE_NUMBER", numbers[19]), limit=3)
    assert got == ["r19", "r20", "r21"]

    everything: list[str] = []
    iterator = _iterator(kinesis, "TRIM_HORIZON")
    for _ in range(10):
        got, iterator = _read(kinesis, iterator, limit=7)
        everything += got
    assert everything == [f"r{i}" for i in range(50)]
    assert _read(kinesis, iterator)[0] == []  # caught up

    latest = _iterator(kinesis, "LATEST")
    _put(kinesis, "new")
    assert _read(kinesis, latest)[0] == ["new"]


def test_records_past_retention_are_dropped_and_numbering_goes_on(kinesis: Any, clock: Clock) -> None:
    old = _put(kinesis, "a", "b", "c")
    reader = _iterator(kinesis, "AFTER_SEQUENCE_NUMBER", old[0])
    clock.now += 61
    new = _put(kinesis, "d", "e")
    assert int(new[0]) > int(old[-1])
    assert _read(kinesis, _iterator(kinesis, "TRIM_HORIZON"))[0] == ["d", "e"]
    assert _read(kinesis, reader)[0] == ["d", "e"]  # a reader left behind goes on from the oldest record left

    clock.now += 61
    assert _read(kinesis, _iterator(kinesis, "TRIM_HORIZON"))[0] == []  # dropped when read, too
    latest = _iterator(kinesis, "LATEST")
    _put(kinesis, "f")
    assert _read(kinesis, latest)[0] == ["f"]


def test_a_shard_keeps_at_most_max_records(kinesis: Any) -> None:
    for start in range(0, 1500, 500):
        _put(kinesis, *[str(i) for i in range(start, start + 500)])
    kept: list[str] = []
    iterator = _iterator(kinesis, "TRIM_HORIZON")
    while True:
        got, iterator = _read(kinesis, iterator)
        if not got:
            break
        kept += got
    assert kept == [str(i) for i in range(500, 1500)]


def test_writes_and_reads_never_walk_the_shard(kinesis: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """What makes a write O(1) and a read O(records returned): moto's own code takes
    list(records.keys()) on every write and walks every record on every read."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.kinesis.models import kinesis_backends

    _put(kinesis, *[str(i) for i in range(500)])
    iterator = _iterator(kinesis, "TRIM_HORIZON")
    (shard,) = kinesis_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].streams[STREAM].shards.values()
    assert isinstance(shard.records, aws.RecordLog)

    def walked(self: Any) -> Any:
        raise AssertionError("the whole shard was walked")

    monkeypatch.setattr(aws.RecordLog, "__iter__", walked)
    monkeypatch.setattr(aws.RecordLog, "__reversed__", walked)
    monkeypatch.setattr(aws.RecordLog, "keys", walked)
    monkeypatch.setattr(aws.RecordLog, "values", walked)
    monkeypatch.setattr(aws.RecordLog, "items", walked)
    kinesis.put_record(StreamName=STREAM, Data=b"one more", PartitionKey="p")
    _put(kinesis, "and", "two")
    got, iterator = _read(kinesis, iterator, limit=2)
    assert got == ["0", "1"]
    kinesis.describe_stream(StreamName=STREAM)


def test_the_adjustments_come_off_again() -> None:
    from moto.kinesis.models import KinesisBackend, Shard
    from moto.sqs.models import SQSBackend

    before = (Shard.put_record, Shard.get_records, Shard.__init__, KinesisBackend.put_records,
              SQSBackend.send_message)
    sender, receiver = wake.pair()
    with aws.adjusted(wake=wake.WakeSender(sender)):
        assert Shard.put_record is not before[0] and SQSBackend.send_message is not before[-1]
    assert (Shard.put_record, Shard.get_records, Shard.__init__, KinesisBackend.put_records,
            SQSBackend.send_message) == before
    sender.close()
    receiver.close()


def test_writes_wake_the_delivery_loop() -> None:
    sender, receiver = wake.pair()
    hints = wake.WakeReceiver(receiver)
    try:
        with mock_aws(), aws.adjusted(wake=wake.WakeSender(sender)):
            kinesis, sqs = boto3.client("kinesis"), boto3.client("sqs")
            kinesis.create_stream(StreamName=STREAM, ShardCount=1)
            url = sqs.create_queue(QueueName="retries")["QueueUrl"]
            assert hints.drain() == Wakeups()

            kinesis.put_record(StreamName=STREAM, Data=b"x", PartitionKey="p")
            assert hints.wait(1.0).records
            _put(kinesis, "y", "z")
            assert hints.wait(1.0).records

            sent = time.time()
            sqs.send_message(QueueUrl=url, MessageBody="now")
            sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=2)
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "a", "DelaySeconds": 5},
                                                          {"Id": "b", "MessageBody": "b"}])
            got = hints.wait(1.0)
            assert not got.records and len(got.visible_at) == 4
            now_, later, batched_later, batched_now = got.visible_at
            assert sent - 1 < now_ < sent + 1 and sent - 1 < batched_now < sent + 1
            assert sent + 1.5 < later < sent + 3 and sent + 4.5 < batched_later < sent + 6
    finally:
        hints.close()
        sender.close()


# -- the delivery loop's schedule, with a fake clock -------------------------------------------


class FakePump:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.polls: list[float] = []
        self.results: list[tuple[int, int]] = []  # (handled, failed) per poll; (0, 0) once they run out
        self.failed = 0
        self.behind = True  # as if every batch left more to read
        self.visibility_timeout_s = 30

    def poll(self) -> int:
        self.polls.append(self.clock.now)
        handled, self.failed = self.results.pop(0) if self.results else (0, 0)
        return handled


class FakeWaker:
    """Hands out scripted wake-ups at given times; otherwise sleeps (on the fake clock) the whole timeout."""

    def __init__(self, clock: Clock, wall_offset: float) -> None:
        self.clock = clock
        self.wall_offset = wall_offset
        self.script: list[tuple[float, Wakeups]] = []

    def wait(self, timeout_s: float) -> Wakeups:
        until = self.clock.now + max(0.0, timeout_s)
        if self.script and self.script[0][0] <= until:
            at, wakeups = self.script.pop(0)
            self.clock.now = max(self.clock.now, at)
            return wakeups
        self.clock.now = until
        return Wakeups()


def _loop(clock: Clock, waker: FakeWaker | None = None,
          window: float = 0.0) -> tuple[DeliveryLoop, FakePump, FakePump, list[float]]:
    stream, queue = FakePump(clock), FakePump(clock)
    relays: list[float] = []
    loop = DeliveryLoop(stream, queue, relay=lambda: relays.append(clock.now), housekeeping=lambda: None,
                        wake=waker, relay_s=1.0, housekeeping_s=10.0, safety_s=5.0, batch_window_s=window,
                        clock=clock,
                        wall=lambda: clock.now + (waker.wall_offset if waker else 0.0))
    return loop, stream, queue, relays


def _run_until(loop: DeliveryLoop, clock: Clock, until: float) -> None:
    while clock.now < until:
        loop.turn()


def test_an_idle_loop_only_runs_its_schedules_and_a_slow_safety_poll(clock: Clock) -> None:
    waker = FakeWaker(clock, wall_offset=5000.0)
    loop, stream, queue, relays = _loop(clock, waker)
    start = clock.now
    _run_until(loop, clock, start + 20)
    assert len(stream.polls) == len(queue.polls) == 4  # at 0, 5, 10 and 15 s
    assert len(relays) == 20


def test_records_wake_the_loop_and_it_polls_while_busy(clock: Clock) -> None:
    waker = FakeWaker(clock, wall_offset=5000.0)
    loop, stream, _queue, _relays = _loop(clock, waker)
    start = clock.now
    waker.script.append((start + 2.5, Wakeups(records=True)))
    stream.results = [(0, 0), (100, 0), (100, 0), (3, 0)]  # the first poll at start, then three batches
    _run_until(loop, clock, start + 4)
    assert stream.polls[:1] == [start]
    assert stream.polls[1:5] == [start + 2.5] * 4  # woken, then again and again while there is work
    assert len(stream.polls) == 5


def test_a_poll_that_caught_up_waits_for_the_next_wake_up(clock: Clock) -> None:
    waker = FakeWaker(clock, wall_offset=5000.0)
    loop, stream, _queue, _relays = _loop(clock, waker)
    stream.behind = False
    start = clock.now
    waker.script += [(start + 1.0, Wakeups(records=True)), (start + 2.0, Wakeups(records=True))]
    stream.results = [(0, 0), (1, 0), (1, 0)]
    _run_until(loop, clock, start + 3)
    assert stream.polls == [start, start + 1.0, start + 2.0]  # no empty read after each batch


def test_records_written_close_together_are_read_as_one_batch(clock: Clock) -> None:
    waker = FakeWaker(clock, wall_offset=5000.0)
    loop, stream, _queue, _relays = _loop(clock, waker, window=0.025)
    stream.behind = False
    start = clock.now
    waker.script += [(start + 1.0, Wakeups(records=True)), (start + 1.01, Wakeups(records=True))]
    stream.results = [(0, 0), (2, 0)]
    _run_until(loop, clock, start + 2)
    assert [round(t - start, 3) for t in stream.polls] == [0.0, 1.025]  # one read for both writes


def test_a_delayed_message_is_polled_for_when_it_becomes_visible(clock: Clock) -> None:
    waker = FakeWaker(clock, wall_offset=5000.0)
    loop, _stream, queue, _relays = _loop(clock, waker)
    start = clock.now
    wall_start = start + waker.wall_offset
    waker.script.append((start + 0.5, Wakeups(visible_at=[wall_start + 0.5 + 2.0])))  # sent at 0.5 s, delay 2 s
    _run_until(loop, clock, start + 4.9)
    assert queue.polls[0] == start
    assert len(queue.polls) == 2 and start + 2.5 <= queue.polls[1] < start + 2.6


def test_a_message_left_after_a_failure_is_polled_for_after_its_visibility_timeout(clock: Clock) -> None:
    waker = FakeWaker(clock, wall_offset=0.0)
    loop, _stream, queue, _relays = _loop(clock, waker)
    queue.visibility_timeout_s = 7
    start = clock.now
    queue.results = [(0, 1)]  # the first poll received a message its handler failed
    _run_until(loop, clock, start + 7.5)
    assert [round(t - start, 2) for t in queue.polls] == [0.0, 5.0, 7.01]


def test_failed_stream_records_are_retried_with_a_backoff(clock: Clock) -> None:
    waker = FakeWaker(clock, wall_offset=0.0)
    loop, stream, _queue, _relays = _loop(clock, waker)
    start = clock.now
    stream.results = [(0, 2), (0, 2), (0, 2), (2, 0)]
    _run_until(loop, clock, start + 1)
    assert [round(t - start, 2) for t in stream.polls] == [0.0, 0.1, 0.3, 0.7, 0.7]


def test_without_wake_ups_the_loop_polls_as_it_always_did(clock: Clock) -> None:
    loop, stream, _queue, _relays = _loop(clock, None)
    start = clock.now
    loop._wait = lambda timeout_s, stop: setattr(clock, "now", clock.now + max(0.0, timeout_s))  # type: ignore[method-assign]
    _run_until(loop, clock, start + 1)
    assert 19 <= len(stream.polls) <= 21  # every 50 ms
