"""Domain errors, by category.

    ServiceError
     +-- Invalid              400  the request is wrong (title "Invalid API request")
     |    +-- InvalidBody     400  the body is wrong (title "Invalid request body")
     |    +-- MessageNotClaimed
     +-- Unauthorized         401
     +-- Forbidden            403
     |    +-- MessageIsClaimed, PoolInUseByFlavor
     +-- NotFound             404
     |    +-- QueueNotFound, MessageNotFound, ClaimNotFound
     +-- MethodNotAllowed     405
     +-- NotAcceptable        406
     +-- Conflict             409
     +-- PayloadTooLarge      413  (websocket frames beyond API Gateway's limit)
     +-- IdempotencyConflict  422  an Idempotency-Key reused for other messages within its window
     +-- UnsupportedMediaType 415
     +-- Unavailable          503  a backend could not be reached
     +-- NotConfigured        503  what the request needs is not configured (says which setting)
     +-- InternalError        500  anything unexpected, as each transport's boundary reports it

Each class only declares: its status and title, its ``message`` (a
template of its description, or of its fields) and, for an error with
context, those fields (a dataclass: ``QueueNotFound(project=..., queue=...)``);
no error writes a constructor of its own. Transports turn these into responses in exactly one place each; anything
else that escapes is a programming error, which that same place logs (with
its traceback) and reports as an InternalError naming the request id.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar


class ServiceError(Exception):
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal server error"
    message: ClassVar[str] = "{description}"
    """The description: a template of the constructor's arguments (a list is joined with commas)."""
    description: str

    def __init__(self, description: str) -> None:
        self._describe({"description": description})

    def __post_init__(self) -> None:
        """For the dataclass errors: the description from their fields."""
        self._describe(vars(self))

    def _describe(self, fields: dict[str, object]) -> None:
        values = {k: ", ".join(map(str, v)) if isinstance(v, list) else v for k, v in fields.items()}
        self.description = self.message.format_map(values)
        Exception.__init__(self, self.description)


class Invalid(ServiceError):
    status = 400
    title = "Invalid API request"


class InvalidBody(Invalid):
    title = "Invalid request body"


class Unauthorized(ServiceError):
    status = 401
    title = "Not authorized"


class Forbidden(ServiceError):
    status = 403
    title = "Not authorized"


class NotFound(ServiceError):
    status = 404
    title = "Not found"


@dataclasses.dataclass(eq=False)
class MethodNotAllowed(ServiceError):
    status = 405
    title = "Method not allowed"
    message = "{method} is not allowed here; allowed: {allowed}."
    method: str
    allowed: list[str]


class NotAcceptable(ServiceError):
    status = 406
    title = "Not acceptable"


class Conflict(ServiceError):
    status = 409
    title = "Resource conflict"


class PayloadTooLarge(ServiceError):
    status = 413
    title = "Request entity too large"


@dataclasses.dataclass(eq=False)
class IdempotencyConflict(ServiceError):
    status = 422
    title = "Idempotency key reused"
    message = ("Idempotency-Key {key!r} was used for a post of other messages to this queue less than {window}s "
               "ago: a repeated post must carry the same messages, new messages a new key.")
    key: str
    window: int


class UnsupportedMediaType(ServiceError):
    status = 415
    title = "Unsupported media type"


class Unavailable(ServiceError):
    status = 503
    title = "Service temporarily unavailable"
    message = "{description} Please try again in a few seconds."


class NotConfigured(ServiceError):
    """Waiting will not help: the operator must configure something first."""

    status = 503
    title = "Service unavailable"


@dataclasses.dataclass(eq=False)
class InternalError(ServiceError):
    """A bug or an exception nobody translated: reported with the request id the log line carries."""

    message = "Unexpected error: the request failed on our side. Request id: {request_id}."
    request_id: str


@dataclasses.dataclass(eq=False, kw_only=True)
class QueueNotFound(NotFound):
    message = "Queue {queue} does not exist."
    project: str
    queue: str


@dataclasses.dataclass(eq=False, kw_only=True)
class MessageNotFound(NotFound):
    message = "Message {message_id} does not exist in queue {queue}."
    queue: str
    message_id: str


@dataclasses.dataclass(eq=False, kw_only=True)
class ClaimNotFound(NotFound):
    message = "Claim {claim_id} does not exist in queue {queue} or has expired."
    queue: str
    claim_id: str


@dataclasses.dataclass(eq=False, kw_only=True)
class MessageIsClaimed(Forbidden):
    message = "Message {message_id} is claimed; delete it with the claim_id of its live claim."
    message_id: str


@dataclasses.dataclass(eq=False, kw_only=True)
class PoolInUseByFlavor(Forbidden):
    """The pool is the last one of a flavor (upstream's MongoDB and Redis pool stores refuse its delete)."""

    title = "Unable to delete"
    message = ("Pool {pool} is the only pool of flavor {flavors}, so it cannot be deleted: delete the flavor "
               "or give it other pools first.")
    pool: str
    flavors: list[str]


@dataclasses.dataclass(eq=False, kw_only=True)
class MessageNotClaimed(Invalid):
    message = ("Message {message_id} is not claimed by {claim_id}: the claim does not exist, "
               "has expired or holds other messages.")
    message_id: str
    claim_id: str
