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


def check_signature(services: Services, request: Request) -> None:
    """A request that carries a pre-signed URL's headers must match them (404 otherwise, as upstream)."""
    signature = request.headers.get("url-signature")
    if signature is None:
        return
    from chalicelib.api import signing

    key = services.settings.signing_key
    valid = key is not None and signing.verify(
        key,
        signature=signature,
        project=request.headers.get("x-project-id") or "",
        paths=[p.strip() for p in (request.headers.get("url-paths") or "").split(",") if p.strip()],
        methods=[m.strip() for m in (request.headers.get("url-methods") or "").split(",") if m.strip()],
        expires=request.headers.get("url-expires") or "",
        method=request.method,
        path=_path(request),
    )
    if not valid:
        raise errors.NotFound("The signed URL does not match this request, or it has expired.")


def _path(request: Request) -> str:
    """The request's own path, without the API Gateway stage."""
    path = str(request.context.get("path") or "")
    stage = str(request.context.get("stage") or "")
    if stage and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    return path
