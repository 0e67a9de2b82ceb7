"""Who is asking: the auth strategies, shared by REST and websocket.

- ``noauth``: ``X-Project-ID`` is the tenant and ``X-Roles`` the roles, as
  in upstream's no-auth mode; without ``X-Project-ID``, ``DEFAULT_PROJECT``
  when it is set (the ``openstack`` CLI cannot send the header).
- ``keystone``: ``X-Auth-Token`` is validated with Keystone; its project is
  the tenant (a different ``X-Project-ID`` is refused) and its roles decide
  admin access.
- A request carrying Zaqar's pre-signed URL headers (``URL-Signature``,
  ``URL-Paths``, ``URL-Methods``, ``URL-Expires`` and ``X-Project-ID``)
  needs no token: it may do exactly what was signed, nothing else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from chalice.app import Request

from chalicelib import errors
from chalicelib.api.context import Credentials, Services


@dataclasses.dataclass(frozen=True)
class Identity:
    project: str | None
    roles: frozenset[str] = frozenset()
    expires: float | None = None
    """Unix time the credentials stop being valid (tokens), if known."""
    signed: bool = False
    credentials: Credentials | None = dataclasses.field(default=None, repr=False)
    """The caller's token and what Keystone said of it (keystone strategy)."""


def _lower(headers: Mapping[str, object]) -> dict[str, str]:
    return {str(k).lower(): v for k, v in headers.items() if isinstance(v, str)}


def _validator(services: Services) -> object:
    from chalicelib.transport.keystone import KeystoneValidator

    return services.shared.once("keystone", lambda: KeystoneValidator(services.settings))


def signed_grant(services: Services, headers: Mapping[str, str], *, method: str, path: str) -> Identity:
    """The identity a pre-signed URL gives; NotFound (as upstream) when it does not cover this request."""
    from chalicelib import signing

    key = services.settings.signing_key
    project = headers.get("x-project-id") or ""
    paths = [p.strip() for p in (headers.get("url-paths") or "").split(",") if p.strip()]
    valid = key is not None and project and signing.verify(
        key, signature=headers.get("url-signature") or "", project=project, paths=paths,
        methods=[m.strip() for m in (headers.get("url-methods") or "").split(",") if m.strip()],
        expires=headers.get("url-expires") or "", method=method, path=path,
    )
    if not valid:
        raise errors.NotFound("The signed URL does not allow this request, or it has expired.")
    return Identity(project=project, signed=True)


def identify(services: Services, raw_headers: Mapping[str, object], *, method: str, path: str) -> Identity:
    headers = _lower(raw_headers)
    if "url-signature" in headers:
        return signed_grant(services, headers, method=method, path=path)
    if services.settings.auth_strategy == "noauth":
        roles = frozenset(r.strip().lower() for r in (headers.get("x-roles") or "").split(",") if r.strip())
        return Identity(project=headers.get("x-project-id") or services.settings.default_project, roles=roles)
    token = headers.get("x-auth-token")
    if not token:
        raise errors.Unauthorized("This request needs an X-Auth-Token from Keystone.")
    from chalicelib.transport.keystone import KeystoneValidator

    validator = _validator(services)
    assert isinstance(validator, KeystoneValidator)
    found = validator.validate(token)
    if found is None:
        raise errors.Unauthorized("The X-Auth-Token is invalid, expired or revoked.")
    claimed = headers.get("x-project-id")
    if claimed and claimed != found.project:
        raise errors.Forbidden("X-Project-ID is not the project of the X-Auth-Token.")
    return Identity(project=found.project, roles=found.roles, expires=found.expires,
                    credentials=Credentials(token=token, user=found.user, role_ids=found.role_ids))


def request_path(request: Request) -> str:
    """The request's own path, without the API Gateway stage."""
    path = str(request.context.get("path") or "")
    stage = str(request.context.get("stage") or "")
    if stage and path.startswith(f"/{stage}/"):
        path = path[len(stage) + 1 :]
    return path


def identify_request(services: Services, request: Request) -> Identity:
    return identify(services, dict(request.headers), method=request.method, path=request_path(request))


def require_admin_mode(services: Services) -> None:
    if not services.settings.admin_mode:
        raise errors.NotFound("This resource exists only in admin mode.")


def require_admin(identity: Identity) -> None:
    if "admin" not in identity.roles:
        raise errors.Forbidden("This resource is for administrators (role admin) only.")
