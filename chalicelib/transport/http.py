"""The plumbing of the Zaqar v2 REST transport, shared by every ``rest_*`` blueprint.

Each view (``rest_home``, ``rest_queues``, ``rest_messages``,
``rest_subscriptions``, ``rest_topics``, ``rest_admin``, ``rest_openapi``) parses its input
with the helpers here, makes one call into ``chalicelib.api`` and renders
the result. Every error answers Zaqar's ``{"title", "description"}``:
:func:`zaqar_view` screens the headers, query and path
(:mod:`chalicelib.api.inputs`) before the view runs, turns domain errors
into their responses and anything else into a 500 naming the request id
(the traceback goes to the log); the :func:`zaqar_errors` middleware, around
Chalice's own routing and every view, does the same for what escapes or
what Chalice answers itself (405, 415, its own 500s). The middleware comes
with this module's blueprint, which has no routes of its own.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from chalice.app import Blueprint, ChaliceViewError, Request, Response

from chalicelib import errors, observability, runtime
from chalicelib.api import inputs, validation
from chalicelib.api.context import Caller, Services
from chalicelib.transport import auth

log = logging.getLogger(__name__)
bp = Blueprint(__name__)
ANY = ["*/*"]
JSON = "application/json"

REQUEST_ID_HEADER = "X-Openstack-Request-Id"
_TITLES = {400: errors.Invalid.title, 401: errors.Unauthorized.title, 403: errors.Forbidden.title,
           404: errors.NotFound.title, 405: errors.MethodNotAllowed.title, 406: errors.NotAcceptable.title,
           409: errors.Conflict.title, 413: errors.PayloadTooLarge.title, 415: errors.UnsupportedMediaType.title,
           503: errors.Unavailable.title}


def error_response(exc: errors.ServiceError) -> Response:
    headers: dict[str, str | list[str]] = {"Content-Type": JSON}
    if isinstance(exc, errors.MethodNotAllowed):
        headers["Allow"] = ", ".join(exc.allowed)
    return Response({"title": exc.title, "description": exc.description}, headers=headers, status_code=exc.status)


def request_id() -> str:
    """This request's id as Zaqar shows it (``req-`` and API Gateway's or Lambda's id), made once per request."""
    request = getattr(bp, "current_request", None)  # None when the event was no API Gateway request
    if not isinstance(request, Request):
        return f"req-{uuid.uuid4()}"
    given = request.context.get("requestId") or getattr(bp.lambda_context, "aws_request_id", None)
    if not isinstance(given, str) or not given:  # made up once, kept with the request for its other answers
        given = request.context["requestId"] = str(uuid.uuid4())
    return f"req-{given}"


def screen(request: Request, path_parts: dict[str, Any]) -> None:
    """Refuse (400) headers, query parameters and path parts no backend could store."""
    inputs.check_headers(request.headers.items())
    params = request.query_params
    if params is not None:
        inputs.check_query({name: [str(v) for v in params.getlist(name)] for name in params})
    inputs.check_path({name: value for name, value in path_parts.items() if isinstance(value, str)})


def zaqar_view(view: Callable[..., Response]) -> Callable[..., Response]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        started = time.perf_counter()
        rid = request_id()
        try:
            screen(current_request(), kwargs)
            response = view(*args, **kwargs)
        except errors.ServiceError as exc:
            if exc.status >= 500:
                log.warning("%s %s: %s", current_request().method, current_request().context.get("path"), exc.description)
            response = error_response(exc)
        except ChaliceViewError as exc:  # Chalice's own errors (BadRequestError...), with their status
            response = _translated(Response({"Code": type(exc).__name__, "Message": str(exc)},
                                            status_code=exc.STATUS_CODE))
        except Exception:  # a bug: the traceback to the log, the request id to the client
            log.exception("%s %s failed (%s)", current_request().method, current_request().context.get("path"), rid)
            response = error_response(errors.InternalError(rid))
        response.headers[REQUEST_ID_HEADER] = rid
        queue = kwargs.get("queue_name", kwargs.get("topic_name"))
        _log_request(view.__name__, response.status_code, started, rid[4:], queue if isinstance(queue, str) else None)
        return response

    return wrapper


def _zaqar_shaped(response: Response) -> bool:
    body = response.body
    return isinstance(body, dict) and set(body) == {"title", "description"}


@bp.middleware("http")
def zaqar_errors(request: Request | None, get_response: Callable[[Request | None], Response]) -> Response:
    """The REST boundary around Chalice's routing and every view: whatever fails, or whatever Chalice
    answers itself (405, 415, its 500s, in its ``{"Code", "Message"}`` body), answers in Zaqar's format."""
    try:
        response = get_response(request)
    except Exception:
        rid = request_id()
        log.exception("%s %s failed (%s)", getattr(request, "method", "?"), getattr(request, "path", "?"), rid)
        response = error_response(errors.InternalError(rid))
    if response.status_code >= 400 and not _zaqar_shaped(response):
        response = _translated(response)
    if REQUEST_ID_HEADER not in response.headers:
        response.headers[REQUEST_ID_HEADER] = request_id()
    return response


def _translated(response: Response) -> Response:
    """A response Chalice made, in Zaqar's format (Chalice has logged the traceback of its 500s)."""
    status = response.status_code
    if status >= 500 and status != 503:
        return error_response(errors.InternalError(request_id()))
    body = response.body
    message = body.get("Message") if isinstance(body, dict) else None
    description = str(message) if message else "The request cannot be served."
    headers: dict[str, str | list[str]] = {"Content-Type": JSON}
    allow = response.headers.get("Allow")
    if allow is not None:
        headers["Allow"] = allow
    title = _TITLES.get(status, errors.Invalid.title if status < 500 else errors.InternalError.title)
    return Response({"title": title, "description": description}, headers=headers, status_code=status)


def _log_request(operation: str, status: int, started: float, request_id: str | None, queue: str | None) -> None:
    try:
        services = runtime.services()
    except errors.ServiceError:
        return  # nothing configured to log with
    if services.settings.request_log:
        observability.emit(observability.request_record(
            transport="rest", operation=operation, status=status, latency_ms=(time.perf_counter() - started) * 1000,
            request_id=request_id, project=header("x-project-id"), queue=queue,
        ))


def current_request() -> Request:
    request = bp.current_request
    assert request is not None
    return request


def current_services() -> Services:
    return runtime.services()


def header(name: str) -> str | None:
    value: str | None = current_request().headers.get(name)
    return value


def param(name: str) -> str | None:
    params = current_request().query_params
    if params is None:
        return None
    value: str | None = params.get(name)
    return value


def list_param(name: str) -> str | None:
    """A list parameter, given repeated (``?ids=a&ids=b``, as python-zaqarclient sends it), comma-separated
    (``?ids=a,b``) or both: every value, comma-joined."""
    params = current_request().query_params
    if params is None or name not in params:
        return None
    return ",".join(str(value) for value in params.getlist(name))


def params_of() -> dict[str, str]:
    params = current_request().query_params
    return {} if params is None else {key: str(params.get(key)) for key in params}


def _raw() -> bytes:
    try:
        raw = current_request().raw_body  # Chalice encodes a text body to UTF-8 itself
        return raw.encode() if isinstance(raw, str) else raw or b""
    except UnicodeError:
        raise errors.InvalidBody("The request body contains a lone surrogate: it is not UTF-8 text.") from None
    except ValueError:  # binascii.Error: a body API Gateway marked base64 that is not
        raise errors.InvalidBody("The request body is not valid base64, as isBase64Encoded says it is.") from None


def read_body(optional: bool = False) -> tuple[Any, int]:
    """The JSON body and its size in bytes; None for an empty optional body.

    Checked by :func:`chalicelib.api.inputs.parse_json`: UTF-8, not nested
    too deep, every string and key storable."""
    raw = _raw()
    content_type = (header("content-type") or "").lower()
    if raw and content_type.startswith("application/x-www-form-urlencoded"):
        raise errors.Invalid("Form-encoded bodies are not accepted: send JSON.")
    if len(raw) > inputs.MAX_BODY_BYTES:
        raise errors.InvalidBody(f"Request bodies may be at most {inputs.MAX_BODY_BYTES} bytes; "
                                 f"this one has {len(raw)}.")
    if not raw or raw.isspace():  # no stripped copy of the body just to see it is blank
        if optional:
            return None, 0
        raise errors.InvalidBody("The request body is empty; a JSON document is expected.")
    return inputs.parse_json(raw, "The request body"), len(raw)


def who(services: Services) -> tuple[Caller, auth.Identity]:
    """Check the headers every /v2 request needs and say who is asking, with what rights."""
    accept = header("accept")
    if accept and not any(kind in accept for kind in (JSON, "*/*", "application/*", "json-home")):
        raise errors.NotAcceptable(f"This API only answers in {JSON}; Accept was {accept[:80]!r}.")
    identity = auth.identify_request(services, current_request())
    client = validation.client_id(header("client-id"), strict_uuid=services.settings.client_id_uuid_strict)
    project = validation.project_id(identity.project, services.settings.limits)
    return Caller(project=project, client_id=client, credentials=identity.credentials), identity


def caller_of(services: Services) -> Caller:
    return who(services)[0]


def json_reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    merged: dict[str, str | list[str]] = {"Content-Type": JSON, **(headers or {})}
    return Response(body, headers=merged, status_code=status)


def empty(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    merged: dict[str, str | list[str]] = {**(headers or {})}
    return Response("", headers=merged, status_code=status)
