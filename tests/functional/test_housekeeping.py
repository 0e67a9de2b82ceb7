"""The scheduled housekeeping Lambda, invoked as Lambda would."""

from __future__ import annotations

import time

from chalice.test import Client

from chalicelib.api.context import Services
from tests.functional.conftest import Api


def test_housekeeping_reclaims_expired_messages_of_every_queue(api: Api, chalice_client: Client, services: Services) -> None:
    store = services.pooling.store("default")
    from chalicelib.storage.base import NewMessage

    for queue in ("a", "b"):
        api.put(f"/v2/queues/{queue}")
        store.message_post(project=api.project, queue=queue, messages=[NewMessage(f"m-{queue}", '"x"', 1, None)], client_id="c", event_id="e",
                           create=False, encrypted=False, request_size=1, default_ttl=3600)
    time.sleep(1.1)
    event = chalice_client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                                    resources=[])
    result = chalice_client.lambda_.invoke("housekeeping", event).payload
    assert result["reclaimed"] >= 2 and result["unavailable"] == 0
    assert store.queue_stats(project=api.project, queue="a").total == 0


def test_housekeeping_hands_over_stranded_dead_letters(api: Api, services: Services) -> None:
    from chalicelib.api import housekeeping

    api.put("/v2/queues/work", {"_dead_letter_queue": "dead", "_max_claim_count": 1})
    (mid,) = api.post_messages("work", "poison")
    cid = api.post("/v2/queues/work/claims").headers["location"].rsplit("/", 1)[1]
    api.delete(f"/v2/queues/work/claims/{cid}")
    store = services.pooling.store("default")
    # the claim moves the message to the outbox; pretend the hand-over crashed
    result = store.claim_create(project=api.project, queue="work", claim_id="c2", ttl=60, grace=60, limit=5)
    assert [d.record.id for d in result.dead_letters] == [mid]
    assert api.get(f"/v2/queues/dead/messages/{mid}").status == 404
    counts = housekeeping.run(services)
    assert counts["dead_letters"] == 1
    assert api.get(f"/v2/queues/dead/messages/{mid}").json["body"] == "poison"
    assert housekeeping.run(services)["dead_letters"] == 0
