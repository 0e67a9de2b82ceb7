"""The message-pool driver contract.

A driver holds the queues, messages and claims of one pool. The contract is
deliberately small: each method is one atomic step on the backend (one round
trip on Redis). Zaqar semantics that need no atomicity (defaults, limits,
hrefs, body encoding and encryption) live above it, in ``chalicelib.api``.

Times are the backend's clock in milliseconds since the epoch, so that every
container agrees on when a claim or a message expires. Every result carries
``now_ms`` from that clock.

Every method takes the tenant as the required keyword ``project``.
"""

from __future__ import annotations

import abc
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class QueueSettings:
    """The reserved metadata a driver acts on by itself, already validated."""

    default_ttl: int | None = None
    default_delay: int | None = None
    max_post_size: int | None = None
    dead_letter_queue: str | None = None
    dead_letter_ttl: int | None = None
    max_claim_count: int | None = None
    encrypted: bool = False


@dataclasses.dataclass(frozen=True)
class NewMessage:
    id: str
    body: str
    """The body as JSON text (or ciphertext when ``encrypted``)."""
    ttl: int | None
    delay: int | None


@dataclasses.dataclass(frozen=True)
class MessageRecord:
    id: str
    marker: int
    ttl: int
    created_ms: int
    expires_ms: int
    body: str
    encrypted: bool
    claim_id: str | None = None
    claim_expires_ms: int = 0
    claim_count: int = 0
    delay_until_ms: int = 0


@dataclasses.dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_marker: str | None
    now_ms: int


@dataclasses.dataclass(frozen=True)
class Posted:
    ids: list[str]
    now_ms: int
    effective: list[tuple[int, int]]
    """(ttl, delay) of each message after the queue's defaults applied."""
    event_stored: bool = False
    """The message.posted event went to the queue's outbox: someone listens, so publish it."""
    pending: list[str] | None = None
    """When the event was stored and this post took the queue's publish lease
    (see ``outbox_lease``): the outbox entries to publish, this one among them."""
    repeated: bool = False
    """The post repeated a keyed post of the window (see ``Idempotency``): ``ids`` are that post's, nothing
    was stored and no event written."""


@dataclasses.dataclass(frozen=True)
class Idempotency:
    """What makes a post idempotent: a key, unique per (project, queue) while ``window_ms`` runs from the post
    that used it first, and the digest of what that post carried. A post with a bound key and the same digest
    stores nothing and answers the first post's ids; with another digest it is refused
    (IdempotencyConflict). The check is in the post's own atomic step."""

    key: str
    digest: str
    window_ms: int


PUBLISH_LEASE_MS = 15_000
"""How long a publish lease holds without renewal (see ``MessageStore.outbox_lease``): longer
than the stream client's worst case for one publish (connect, read and retry timeouts)."""
PENDING_COUNT = 100
PENDING_BYTES = 900_000
"""A lease hands out at most this many entries and bytes at a time (one stream record is at most 1 MiB)."""


@dataclasses.dataclass(frozen=True)
class PostedEntry:
    """One message of a message.posted outbox entry."""

    id: str
    ttl: int
    delay: int
    body: str
    """As stored: JSON text, or ciphertext when the entry is encrypted."""


@dataclasses.dataclass(frozen=True)
class PostedEvent:
    """The payload of a message.posted outbox entry (see ``StoredEvent``)."""

    id: str
    time_ms: int
    encrypted: bool
    messages: list[PostedEntry]

    def to_json(self, sequence: int) -> str:
        rows = [[m.id, m.ttl, m.delay, m.body] for m in self.messages]
        return json.dumps({"id": self.id, "k": POSTED, "t": self.time_ms, "s": sequence, "x": int(self.encrypted),
                           "m": rows}, separators=(",", ":"))


POSTED = "message.posted"


@dataclasses.dataclass(frozen=True)
class StoredEvent:
    """An outbox entry: an event written in the same atomic step as its change.

    On the wire (the JSON text every driver stores and ``outbox_lease`` hands
    out): ``{"id", "k" (kind), "t" (ms), "s" (sequence), "d" (data)}``; a
    message.posted entry carries ``"x" (0|1)`` and ``"m": [[id, ttl, delay,
    body], ...]`` (bodies as stored) instead of ``"d"``. ``s`` numbers the
    events of one queue from 1, in the order of their changes, and keeps
    counting when the queue is deleted and made again. Entries of versions
    before sequences have neither ``k`` nor ``s``: they are message.posted
    entries with sequence 0.

    The data of each kind: ``queue.created``/``queue.updated``
    ``{"metadata"}``; ``queue.deleted`` ``{}``; ``queue.purged``
    ``{"resource_types"}``; ``message.deleted`` ``{"ids"}`` (the messages
    that existed); ``claim.created`` ``{"claim_id", "ids"}``;
    ``claim.updated`` ``{"claim_id", "ttl", "grace"}``; ``claim.deleted``
    ``{"claim_id"}``; ``subscription.*`` whatever ``outbox_record`` was given.
    """

    id: str
    kind: str
    time_ms: int
    sequence: int
    data: dict[str, Any]
    posted: PostedEvent | None = None

    @classmethod
    def from_json(cls, text: str) -> StoredEvent:
        doc = json.loads(text)
        kind = str(doc.get("k", POSTED))
        if kind != POSTED:
            return cls(str(doc["id"]), kind, int(doc["t"]), int(doc["s"]), dict(doc.get("d") or {}))
        entries = [PostedEntry(str(i), int(t), int(d), str(b)) for i, t, d, b in doc["m"]]
        posted = PostedEvent(str(doc["id"]), int(doc["t"]), bool(doc["x"]), entries)
        return cls(posted.id, POSTED, posted.time_ms, int(doc.get("s", 0)), {}, posted)


def event_json(event_id: str, kind: str, time_ms: int, sequence: int, data: Mapping[str, Any]) -> str:
    """The outbox entry of an event that is not message.posted (for drivers that build entries in Python)."""
    return json.dumps({"id": event_id, "k": kind, "t": time_ms, "s": sequence, "d": dict(data)},
                      separators=(",", ":"))


@dataclasses.dataclass(frozen=True)
class Listeners:
    """Whether a queue has subscribers who can receive, as its pool knows it."""

    until_ms: int
    generation: int


@dataclasses.dataclass(frozen=True)
class Flagged:
    """A queue whose outbox holds events a request could not publish (since ``since_ms``)."""

    project: str
    queue: str
    since_ms: int


@dataclasses.dataclass(frozen=True)
class Records:
    items: list[MessageRecord]
    now_ms: int


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A message taken out of its queue by a claim, bound for ``target``."""

    record: MessageRecord
    target: str
    ttl: int | None


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    claim_id: str
    items: list[MessageRecord]
    now_ms: int
    dead_letters: list[DeadLetter] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    ttl: int
    grace: int
    created_ms: int
    items: list[MessageRecord]
    now_ms: int


@dataclasses.dataclass(frozen=True)
class Stats:
    total: int
    claimed: int
    oldest: MessageRecord | None
    newest: MessageRecord | None
    now_ms: int


@dataclasses.dataclass(frozen=True)
class Subscription:
    id: str
    project: str
    queue: str
    subscriber: str
    ttl: int
    options: dict[str, Any]
    created_ms: int
    expires_ms: int
    confirmed: bool
    connection: str | None
    """The websocket connection that subscribed itself, if any."""


class QueueMissing(Exception):
    """The pool has no such queue and the caller did not ask to create it."""


class EncryptionRequired(Exception):
    """The queue stores only encrypted bodies and the post sent clear ones."""


class DriverError(Exception):
    """Raised by drivers for rejections decided inside an atomic step."""


class PostTooLarge(DriverError):
    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class IdempotencyConflict(DriverError):
    """The post's idempotency key is bound, within its window, to a post that carried something else."""


class MessageStore(abc.ABC):
    """One pool's storage of queues, messages and claims."""

    capabilities: frozenset[str] = frozenset()

    @abc.abstractmethod
    def ping(self) -> bool:
        """True when the backend answers."""

    # -- queues -----------------------------------------------------------

    @abc.abstractmethod
    def queue_create(
        self, *, project: str, queue: str, metadata: Mapping[str, Any], settings: QueueSettings,
        event_id: str | None = None,
    ) -> bool:
        """Create the queue with this metadata; False (and no change) if it exists.

        ``event_id``, on this and every other write that takes it: when given
        and something changed, the change's event (see ``StoredEvent``) goes
        to the queue's outbox in the same atomic step.
        """

    @abc.abstractmethod
    def queue_get(self, *, project: str, queue: str) -> dict[str, Any] | None:
        """The queue's metadata, or None when the queue does not exist."""

    @abc.abstractmethod
    def queue_get_many(self, *, project: str, queues: Sequence[str]) -> list[dict[str, Any] | None]:
        """Metadata of several queues of one project, in order, in one round trip."""

    @abc.abstractmethod
    def queue_set(
        self, *, project: str, queue: str, metadata: Mapping[str, Any], settings: QueueSettings,
        event_id: str | None = None,
    ) -> bool:
        """Replace the metadata of an existing queue; False if it does not exist."""

    @abc.abstractmethod
    def queue_delete(self, *, project: str, queue: str, event_id: str | None = None) -> None:
        """Delete the queue with all its messages and claims. Idempotent.

        The outbox and the listening horizon are kept: events already
        written must still be published, and sequences keep counting.
        """

    @abc.abstractmethod
    def queue_purge(
        self, *, project: str, queue: str, event_id: str | None = None, resource_types: Sequence[str] = ("messages",)
    ) -> None:
        """Remove every message and claim of the queue; keep the queue and its metadata.

        ``resource_types`` is what the queue.purged event reports.
        """

    @abc.abstractmethod
    def queue_stats(self, *, project: str, queue: str) -> Stats:
        """Counts, oldest and newest message; zeros for a missing queue."""

    # -- messages ---------------------------------------------------------

    @abc.abstractmethod
    def message_post(
        self,
        *,
        project: str,
        queue: str,
        messages: Sequence[NewMessage],
        client_id: str,
        create: bool,
        encrypted: bool,
        request_size: int,
        default_ttl: int,
        event_id: str | None,
        stream_all: bool = False,
        idempotency: Idempotency | None = None,
    ) -> Posted:
        """Append messages atomically, oldest first.

        In the same atomic step, when the queue has subscribers who can
        receive (see ``listen``) or ``stream_all`` is set, the message.posted
        event ``event_id`` goes to the queue's outbox and
        ``Posted.event_stored`` is True; otherwise nothing but the messages
        is written. With ``event_id`` None (no stream) no event is ever
        stored: nothing would take it out again. A stored event also tries
        the queue's publish lease with ``event_id`` as holder; when taken,
        ``Posted.pending`` holds what to publish (see ``outbox_lease``). On
        Redis that is one round trip either way. With ``stream_all``, a
        queue created here also records its queue.created event first.

        Raises QueueMissing when the queue does not exist and ``create`` is
        False, EncryptionRequired when the queue encrypts and ``encrypted``
        is False, PostTooLarge when ``request_size`` exceeds the queue's own
        limit, IdempotencyConflict when ``idempotency`` names a key bound to
        another post. Nothing is stored in any of those cases. A repeated
        keyed post answers the first one's ids (``Posted.repeated``); the key
        is bound again by the first post after its window.
        """

    @abc.abstractmethod
    def message_list(
        self,
        *,
        project: str,
        queue: str,
        marker: str | None,
        limit: int,
        client_id: str,
        echo: bool,
        include_claimed: bool,
        include_delayed: bool,
    ) -> Page[MessageRecord]:
        """Up to ``limit`` matching messages after ``marker``, oldest first.

        The page is short only when no more messages match.
        """

    @abc.abstractmethod
    def message_get_many(self, *, project: str, queue: str, ids: Sequence[str]) -> Records:
        """The live messages among ``ids``, in the order asked; unknown ids are skipped."""

    @abc.abstractmethod
    def message_delete(
        self, *, project: str, queue: str, message_id: str, claim_id: str | None, event_id: str | None = None
    ) -> None:
        """Delete one message, honouring its claim.

        A missing message is not an error. Raises MessageIsClaimed when the
        message is in a live claim and ``claim_id`` is None;
        MessageNotClaimed when ``claim_id`` is given and is not the
        message's live claim (none, or another).
        """

    @abc.abstractmethod
    def message_delete_many(
        self, *, project: str, queue: str, ids: Sequence[str], event_id: str | None = None
    ) -> int:
        """Delete these messages whatever their claims; returns how many existed."""

    @abc.abstractmethod
    def message_pop(self, *, project: str, queue: str, limit: int, event_id: str | None = None) -> Records:
        """Remove and return up to ``limit`` claimable messages, oldest first."""

    # -- claims -----------------------------------------------------------

    @abc.abstractmethod
    def claim_create(
        self, *, project: str, queue: str, claim_id: str, ttl: int, grace: int, limit: int,
        event_id: str | None = None,
    ) -> ClaimResult:
        """Claim up to ``limit`` messages that are in no live claim, oldest first.

        Atomic: a message is never in two live claims. Each claimed message's
        claim count grows by one; a message that already reached the queue's
        ``max_claim_count`` leaves the queue as a DeadLetter instead.
        """

    @abc.abstractmethod
    def claim_get(self, *, project: str, queue: str, claim_id: str) -> Claim | None:
        """The live claim and the messages it still holds, or None."""

    @abc.abstractmethod
    def claim_update(
        self, *, project: str, queue: str, claim_id: str, ttl: int, grace: int, event_id: str | None = None
    ) -> bool:
        """Renew a live claim from now; False when it does not exist or expired."""

    @abc.abstractmethod
    def claim_delete(self, *, project: str, queue: str, claim_id: str, event_id: str | None = None) -> None:
        """Release the claim's messages. Idempotent (an event only when the claim existed)."""

    # -- dead letters and housekeeping ------------------------------------

    @abc.abstractmethod
    def dead_letter_accept(self, *, project: str, queue: str, letters: Sequence[DeadLetter]) -> None:
        """Append dead letters to this queue, keeping their ids. Idempotent."""

    @abc.abstractmethod
    def dead_letter_done(self, *, project: str, queue: str, ids: Sequence[str]) -> None:
        """Forget dead letters of ``queue`` once their target accepted them."""

    @abc.abstractmethod
    def dead_letter_pending(self, *, project: str, queue: str) -> list[DeadLetter]:
        """Dead letters of ``queue`` not yet accepted by their target."""

    # -- the outbox ----------------------------------------------------------
    #
    # Publishing keeps each queue's order: only the holder of the queue's
    # publish lease publishes, entries leave in sequence order, and the
    # holder goes on until the outbox is empty, so events written while it
    # published are taken out too. A holder that dies loses the lease after
    # PUBLISH_LEASE_MS; whoever takes it next publishes what is left.

    @abc.abstractmethod
    def outbox_record(self, *, project: str, queue: str, event_id: str, kind: str, data: Mapping[str, Any]) -> None:
        """Write an event whose change lives elsewhere (a subscription in the catalog) to the queue's outbox."""

    @abc.abstractmethod
    def outbox_lease(self, *, project: str, queue: str, holder: str) -> list[str] | None:
        """Take (or renew) the queue's publish lease for ``holder``.

        Returns the oldest pending entries (JSON texts, at most PENDING_COUNT
        and about PENDING_BYTES, in sequence order), or None when another
        holder has a live lease. With nothing pending the result is empty
        and no lease is held afterwards.
        """

    @abc.abstractmethod
    def outbox_release(
        self, *, project: str, queue: str, holder: str, published: Sequence[str], keep: bool
    ) -> list[str]:
        """Forget the ``published`` entries; then hand out the next ones or give the lease up.

        With ``keep`` and the lease still ``holder``'s, the lease is renewed
        and the next pending entries are returned; when none is left (or
        without ``keep``) the lease is released and the result is empty. A
        lease lost to another holder is left alone.
        """

    @abc.abstractmethod
    def outbox_flag(self, *, project: str, queue: str) -> None:
        """Tell the relay that this queue's outbox holds events nobody published."""

    @abc.abstractmethod
    def outbox_flagged(self, *, flagged_before_ms: int, limit: int) -> list[Flagged]:
        """Queues of this pool whose outbox the relay should publish, oldest flag first."""

    @abc.abstractmethod
    def outbox_unflag(self, *, flagged: Flagged) -> bool:
        """Take the queue off the relay's list unless it was flagged again since ``flagged`` was read."""

    # -- who listens ---------------------------------------------------------

    @abc.abstractmethod
    def listen(self, *, project: str, queue: str, until_ms: int) -> int:
        """Record that the queue has subscribers who can receive until ``until_ms``.

        The horizon only grows here; every call bumps the generation, which
        is returned. Kept when the queue itself is deleted.
        """

    @abc.abstractmethod
    def listeners(self, *, project: str, queue: str) -> Listeners:
        """The queue's listening horizon and its generation (zeros when never set)."""

    @abc.abstractmethod
    def listen_lower(self, *, project: str, queue: str, until_ms: int, generation: int) -> bool:
        """Set the horizon to ``until_ms`` unless ``listen`` ran since ``generation`` was read."""

    @abc.abstractmethod
    def gc(self, *, project: str, queue: str, stale_before_ms: int) -> int:
        """Reclaim expired messages and claims of one queue; returns how many.

        When the outbox holds an entry written before ``stale_before_ms``
        and no publish lease is live (whoever wrote it died before
        publishing or flagging it), the queue is flagged for the relay.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
