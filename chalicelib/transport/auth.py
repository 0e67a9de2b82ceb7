"""Who is asking: the auth strategy seam.

``noauth`` (the only strategy until the Keystone issue) trusts the
``X-Project-ID`` header and, as upstream's no-auth mode does, the roles in
``X-Roles``. The Keystone strategy will fill in the project and roles from
a validated token behind the same two functions.
"""

from __future__ import annotations

from chalice.app import Request

from chalicelib import errors
from chalicelib.api.context import Services


def project_for(services: Services, request: Request) -> str | None:
    value: str | None = request.headers.get("x-project-id")
    return value


def roles_for(services: Services, request: Request) -> set[str]:
    raw = request.headers.get("x-roles") or ""
    return {role.strip().lower() for role in raw.split(",") if role.strip()}


def require_admin_mode(services: Services) -> None:
    if not services.settings.admin_mode:
        raise errors.NotFound("This resource exists only in admin mode.")


def require_admin(services: Services, request: Request) -> None:
    if "admin" not in roles_for(services, request):
        raise errors.Forbidden("This resource is for administrators (role admin) only.")
