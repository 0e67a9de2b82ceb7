"""Domain errors, by category.

    ServiceError
     +-- Invalid              400  the request is wrong (title "Invalid API request")
     |    +-- InvalidBody     400  the body is wrong (title "Invalid request body")
     |    +-- MessageNotClaimed, ClaimNotFoundForDelete
     +-- Unauthorized         401
     +-- Forbidden            403
     |    +-- MessageIsClaimed, PoolInUseByFlavor
     +-- NotFound             404
     |    +-- QueueNotFound, MessageNotFound, ClaimNotFound
     +-- MethodNotAllowed     405
     +-- NotAcceptable        406
     +-- Conflict             409
     +-- PayloadTooLarge      413  (websocket frames beyond API Gateway's limit)
     +-- UnsupportedMediaType 415
     +-- Unavailable          503  a backend could not be reached
     +-- NotConfigured        503  what the request needs is not configured (says which setting)
     +-- InternalError        500  anything unexpected, as each transport's boundary reports it

Transports turn these into responses in exactly one place each; anything
else that escapes is a programming error, which that same place logs (with
its traceback) and reports as an InternalError naming the request id.
"""

from __future__ import annotations


class ServiceError(Exception):
    status: int = 500
    title: str = "Internal server error"

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


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


class MethodNotAllowed(ServiceError):
    status = 405
    title = "Method not allowed"

    def __init__(self, method: str, allowed: list[str]) -> None:
        super().__init__(f"{method} is not allowed here; allowed: {', '.join(allowed)}.")
        self.allowed = allowed


class NotAcceptable(ServiceError):
    status = 406
    title = "Not acceptable"


class Conflict(ServiceError):
    status = 409
    title = "Resource conflict"


class PayloadTooLarge(ServiceError):
    status = 413
    title = "Request entity too large"


class UnsupportedMediaType(ServiceError):
    status = 415
    title = "Unsupported media type"


class Unavailable(ServiceError):
    status = 503
    title = "Service temporarily unavailable"

    def __init__(self, description: str) -> None:
        super().__init__(f"{description} Please try again in a few seconds.")


class NotConfigured(ServiceError):
    """Waiting will not help: the operator must configure something first."""

    status = 503
    title = "Service unavailable"


class InternalError(ServiceError):
    """A bug or an exception nobody translated: reported with the request id the log line carries."""

    status = 500
    title = "Internal server error"

    def __init__(self, request_id: str) -> None:
        super().__init__(f"Unexpected error: the request failed on our side. Request id: {request_id}.")
        self.request_id = request_id


class QueueNotFound(NotFound):
    def __init__(self, *, project: str, queue: str) -> None:
        super().__init__(f"Queue {queue} does not exist.")
        self.project = project
        self.queue = queue


class MessageNotFound(NotFound):
    def __init__(self, *, queue: str, message_id: str) -> None:
        super().__init__(f"Message {message_id} does not exist in queue {queue}.")
        self.message_id = message_id


class ClaimNotFound(NotFound):
    def __init__(self, *, queue: str, claim_id: str) -> None:
        super().__init__(f"Claim {claim_id} does not exist in queue {queue} or has expired.")
        self.claim_id = claim_id


class MessageIsClaimed(Forbidden):
    def __init__(self, *, message_id: str) -> None:
        super().__init__(
            f"Message {message_id} is claimed; delete it with the claim_id of its live claim."
        )
        self.message_id = message_id


class PoolInUseByFlavor(Forbidden):
    """The pool is the last one of a flavor (upstream's MongoDB and Redis pool stores refuse its delete)."""

    title = "Unable to delete"

    def __init__(self, *, pool: str, flavors: list[str]) -> None:
        named = ", ".join(flavors)
        super().__init__(
            f"Pool {pool} is the only pool of flavor {named}, so it cannot be deleted: delete the flavor "
            "or give it other pools first."
        )
        self.pool = pool
        self.flavors = flavors


class MessageNotClaimed(Invalid):
    def __init__(self, *, message_id: str, claim_id: str) -> None:
        super().__init__(
            f"Message {message_id} is not claimed by {claim_id}: the claim does not exist, "
            "has expired or holds other messages."
        )
        self.message_id = message_id
        self.claim_id = claim_id
