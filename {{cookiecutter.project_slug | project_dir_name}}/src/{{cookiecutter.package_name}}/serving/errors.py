"""Refusals: every error the service answers, FastAPI's own included, as an ``ErrorResponse``.

A route raises :class:`ServiceError` (or lets :class:`~.schema.InputError` through
:func:`checked`); the handlers installed by :func:`add_error_handlers` turn each into a response
with a stable code, one entry per field, and the request id. Nothing unexpected leaks: any other
exception becomes a logged 500 naming only its type.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .schema import ErrorResponse, FieldError, InputError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

logger = logging.getLogger(__name__)

JSON = "application/json"
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

# The refusals a route may answer, for its OpenAPI `responses`.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Malformed JSON",
        401: "Missing or wrong X-API-Key",
        413: "Body or batch too large",
        415: "Content-Type is not application/json (nor text/csv on /invocations)",
        422: "A record does not follow the model's contract",
        503: "No model loaded yet",
    }.items()
}


class ServiceError(Exception):
    """A refusal with an HTTP status, answered as an :class:`ErrorResponse`."""

    def __init__(self, status: int, code: str, errors: list[FieldError]) -> None:
        self.status = status
        self.code = code
        self.errors = errors
        super().__init__("; ".join(f"{error.field}: {error.message}" for error in errors))


def request_id(request: Request) -> str:
    """The caller's ``X-Request-ID`` when it is sane, else a new one."""
    given = request.headers.get(REQUEST_ID_HEADER, "")
    return given if _REQUEST_ID.match(given) else uuid.uuid4().hex


def checked(validate: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The records `validate` returns; its :class:`InputError` becomes a 413 or 422 refusal."""
    try:
        return validate()
    except InputError as error:
        code = "payload_too_large" if error.status == 413 else "invalid_input"  # noqa: PLR2004
        raise ServiceError(error.status, code, error.errors) from None


def not_ready(reason: str) -> ServiceError:
    """503: no model to answer with, and why."""
    return ServiceError(
        503, "not_ready", [FieldError(field="model", message=reason, type="not_ready")]
    )


def too_large(size: int, limit: int) -> ServiceError:
    """413: a body over ``SERVING_MAX_BODY_BYTES``."""
    return ServiceError(
        413,
        "payload_too_large",
        [
            FieldError(
                field="body",
                message=f"{size} bytes exceed the limit of {limit} (SERVING_MAX_BODY_BYTES)",
                type="too_large",
            )
        ],
    )


def error_response(status: int, code: str, errors: list[FieldError], request: Request) -> Response:
    """The :class:`ErrorResponse` of a refusal, with the request id echoed."""
    rid = request_id(request)
    body = ErrorResponse(
        error=code,
        message="; ".join(f"{error.field}: {error.message}" for error in errors),
        errors=errors,
        request_id=rid,
    )
    return Response(
        body.model_dump_json(),
        status_code=status,
        media_type=JSON,
        headers={REQUEST_ID_HEADER: rid},
    )


def add_error_handlers(app: FastAPI) -> None:
    """Answer every refusal, including FastAPI's own, in the :class:`ErrorResponse` shape."""

    async def service_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ServiceError)  # noqa: S101 (registered for this type only)
        return error_response(error.status, error.code, error.errors, request)

    async def validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)  # noqa: S101
        errors = [
            FieldError(
                field=".".join(str(part) for part in issue["loc"]),
                message=str(issue["msg"]),
                type=str(issue["type"]),
            )
            for issue in error.errors()
        ]
        return error_response(422, "invalid_input", errors, request)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)  # noqa: S101
        code = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}.get(
            error.status_code, "http_error"
        )
        errors = [FieldError(field="request", message=str(error.detail), type=code)]
        response = error_response(error.status_code, code, errors, request)
        response.headers.update(error.headers or {})
        return response

    async def unexpected_error(request: Request, error: Exception) -> Response:
        logger.exception("Unhandled error in %s %s", request.method, request.url.path)
        errors = [FieldError(field="server", message=type(error).__name__, type="internal")]
        return error_response(500, "internal_error", errors, request)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected_error)
