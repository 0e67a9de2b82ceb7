"""Topics (``/v2/topics``): named streams of messages that are delivered to their subscriptions and kept
for their ttl, to be listed, never claimed.

A topic is kept as a queue of its project's *topic space*: the project id with :data:`SPACE` after it. The
catalog, the pools, the outbox, the subscriptions and the notifier then serve topics as they serve queues,
and a topic and a queue of the same name never meet, nor does listing one kind show the other. Project ids
cannot contain control characters (``chalicelib.api.validation.project_id``), so no caller can name a topic
space as a project of its own; every place that shows a project or a path to people (CloudEvents, the
failed-notifications record, notification documents, fan-out to a queue) goes through :func:`owner`.
"""

from __future__ import annotations

SPACE = "\x1ft"
"""What follows the project id in the project of a topic's storage (a control character, then ``t``)."""
MAX_PROJECT = 256 - len(SPACE)
"""The longest project id that can have topics: the catalog keeps project ids of at most 256 characters."""


def space(project: str) -> str:
    """The project under which ``project``'s topics are kept."""
    return project + SPACE


def owner(project: str) -> tuple[str, bool]:
    """(the tenant's project, whether this is its topic space) of a stored project."""
    if project.endswith(SPACE):
        return project[: -len(SPACE)], True
    return project, False


def collection(project: str) -> str:
    """``topics`` or ``queues``: the path segment of what a stored project holds."""
    return "topics" if owner(project)[1] else "queues"


def path(project: str, name: str) -> str:
    """The API path of a queue or topic, by its stored project."""
    return f"/v2/{collection(project)}/{name}"
