"""How one queue's events become stream records: as few as fit, in order, none over the limit."""

from __future__ import annotations

import json

from chalicelib.events.model import Event
from chalicelib.events.publisher import partition_key, records


def _events(*sizes: int) -> list[Event]:
    return [Event("message.posted", "p", "q", {"pad": "x" * size}, id=f"e{n}", sequence=n + 1)
            for n, size in enumerate(sizes)]


def _ids(data: bytes) -> list[str]:
    document = json.loads(data)
    return [d["id"] for d in (document if isinstance(document, list) else [document])]


def test_one_event_is_one_cloudevent_and_several_are_one_array_in_order() -> None:
    [(single, count)] = records(_events(10))
    assert count == 1 and json.loads(single)["id"] == "e0"
    [(batch, count)] = records(_events(10, 10, 10))
    assert count == 3 and _ids(batch) == ["e0", "e1", "e2"]


def test_records_never_pass_the_limit_and_keep_the_order() -> None:
    events = _events(*[300] * 20)
    limit = 2000
    out = records(events, limit)
    assert len(out) > 1
    assert all(len(data) + len(partition_key(events[0])) <= limit for data, _count in out)
    assert [i for data, _count in out for i in _ids(data)] == [e.id for e in events]
    assert sum(count for _data, count in out) == len(events)


def test_an_event_too_large_for_any_record_is_skipped_alone() -> None:
    out = records(_events(10, 5000, 10), 1000)
    assert [count for _data, count in out] == [1, 1, 1]
    assert out[1][0] == b""  # not published, counted, so the events after it go out
    assert _ids(out[0][0]) == ["e0"] and _ids(out[2][0]) == ["e2"]
