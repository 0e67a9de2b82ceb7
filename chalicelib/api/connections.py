"""Websocket connection operations: a connection opens, authenticates for a project, acts for it, closes.

The websocket transport calls these (and the housekeeping Lambda, for
connections whose credentials expired); the records are kept by
:mod:`chalicelib.storage.connections` for as long as API Gateway lets a
connection live.
"""

from __future__ import annotations

import time

from chalicelib import errors
from chalicelib.api import subscriptions, validation
from chalicelib.api.context import Services


class AuthenticationExpired(errors.Unauthorized):
    """The credentials the connection authenticated with have expired: the connection is to be closed."""


def connection_open(services: Services, connection_id: str, *, source_ip: str) -> None:
    """Record a new connection, not authenticated yet."""
    services.connections.open(connection_id, now_ms=int(time.time() * 1000), source_ip=source_ip)


def connection_authenticate(services: Services, connection_id: str, *, project: str | None,
                            expires: float | None) -> None:
    """Tie the connection to the project its credentials are for (checked as every request's project is),
    until they expire (unix time, when known)."""
    checked = validation.project_id(project, services.settings.limits)
    services.connections.authenticate(connection_id, project=checked, expires=expires)


def connection_project(services: Services, connection_id: str, *, claimed: str | None) -> str | None:
    """The project an authenticated connection acts for.

    Forbidden before the connection authenticated, or when a frame claims
    another project; :class:`AuthenticationExpired` once its credentials
    have expired."""
    connection = services.connections.get(connection_id)
    if connection is None or not connection.authenticated:
        raise errors.Forbidden("Not authentified: send an authenticate frame with X-Auth-Token first.")
    if connection.expires is not None and connection.expires <= time.time():
        raise AuthenticationExpired("Authentication expired.")
    if claimed and claimed != connection.project:
        raise errors.Forbidden("X-Project-ID is not the project this connection authenticated for.")
    return connection.project


def connection_close(services: Services, connection_id: str) -> None:
    """Remove the subscriptions made over the connection, then forget it."""
    subscriptions.subscriptions_of_connection_delete(services, connection_id)
    services.connections.close(connection_id)


def connections_expired(services: Services) -> list[str]:
    """Connections whose credentials have expired, oldest first (a bounded batch: the rest next time)."""
    return services.connections.expired(now=time.time())
