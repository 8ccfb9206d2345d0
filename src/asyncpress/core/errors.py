"""Errors in the RealWorld envelope: ``{"errors": {"<field>": ["<message>"]}}``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class AppError(Exception):
    """A failure the client should see, with its status code and field."""

    status_code = 400
    headers: dict[str, str] | None = None

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field} {message}")
        self.field = field
        self.message = message


class BadRequest(AppError):
    """A body that cannot be read at all (not UTF-8, nested past any sense)."""

    status_code = 400


class Unauthorized(AppError):
    status_code = 401


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404

    def __init__(self, field: str, message: str = "not found") -> None:
        super().__init__(field, message)


class Invalid(AppError):
    status_code = 422


class BadGateway(AppError):
    """An upstream answered, but not with anything usable."""

    status_code = 502


class GatewayTimeout(AppError):
    """An upstream did not answer within its deadline."""

    status_code = 504


class InvalidFields(Exception):
    """Several fields failed at once (a 422 with each of them)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def envelope(errors: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    return {"errors": errors}


def error_response(
    status_code: int,
    errors: dict[str, list[str]],
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(envelope(errors), status_code=status_code, headers=headers)


# Locations FastAPI reports that are containers, not the field the user typed.
_WRAPPERS = {"body", "query", "path", "header", "user", "article", "comment", "notifications"}


def _field_name(loc: Sequence[int | str]) -> str:
    parts = [str(p) for p in loc]
    while len(parts) > 1 and parts[0] in _WRAPPERS:
        parts = parts[1:]
    # FastAPI validates an ``Annotated`` body as "body"; a missing wrapper is
    # reported by the wrapper's own name, which is what the client needs.
    return ".".join(parts) if parts else "body"


# pydantic error type -> RealWorld-style message (``{…}`` filled from the error's context).
_MESSAGES = {
    "missing": "can't be blank",
    "string_too_long": "is too long (maximum is {max_length} characters)",
    "too_long": "has too many items (maximum is {max_length})",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "greater_than_equal": "must be greater than or equal to {ge}",
    "less_than_equal": "must be less than or equal to {le}",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "json_invalid": "is not valid JSON",
    "string_pattern_mismatch": "is invalid",
    "bool_type": "must be true or false",
    "extra_forbidden": "is not a known setting",
}


def _message(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return "can't be blank"
        return f"is too short (minimum is {ctx.get('min_length')} characters)"
    if kind == "value_error" and ctx.get("error"):
        return str(ctx["error"])
    template = _MESSAGES.get(kind)
    if template is None:
        return str(err.get("msg") or "is invalid")
    return template.format(**ctx)


def validation_errors(errors: Sequence[Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for err in errors:
        field = "body" if err.get("type") == "json_invalid" else _field_name(err.get("loc", ()))
        message = _message(err)
        bucket = out.setdefault(field, [])
        if message not in bucket:
            bucket.append(message)
    return out


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers = {"WWW-Authenticate": "Token"} if exc.status_code == 401 else exc.headers
    return error_response(exc.status_code, {exc.field: [exc.message]}, headers)


async def _invalid_fields(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidFields)
    return error_response(422, exc.errors)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, validation_errors(exc.errors()))


def _allowed_methods(request: Request) -> str:
    """The methods of the first route template that matches this path.

    One route serves one method, so a template's methods are spread over
    several routes; the first template to match is the one the path means
    (``/api/articles/feed`` is the feed, not an article called "feed").
    """
    template: str | None = None
    methods: set[str] = set()
    for route in request.app.router.routes:
        path_format = getattr(route, "path_format", None)
        if template is not None and path_format != template:
            continue
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match.value and getattr(route, "methods", None):  # FULL or PARTIAL
            template = path_format
            methods |= set(route.methods)
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        exc.headers = {**(exc.headers or {}), "Allow": _allowed_methods(request)}
    field = getattr(exc, "field", None) or {404: "path", 405: "method"}.get(
        exc.status_code, "request"
    )
    detail = str(exc.detail) or "failed"
    phrases = {status.phrase for status in HTTPStatus}
    # Starlette's stock details are reason phrases ("Not Found"): say them in
    # lower case like our own messages; keep a custom detail as written.
    detail = detail.lower() if detail in phrases else detail
    return error_response(exc.status_code, {field: [detail]}, exc.headers)


class StreamEnded(Exception):
    """A streaming response the server cut off on purpose; nothing to report."""


async def _database_fault(request: Request, exc: Exception) -> JSONResponse:
    from asyncpress.core.db_faults import RETRY_AFTER_S, classify  # noqa: PLC0415 - drivers

    status = classify(exc)
    if status is None:
        # Not a fault of the database's: an error like any other, answered
        # and logged once by asyncpress.ops.request_id.
        raise exc
    log.warning(
        "%s %s: database unavailable (%s: %s)",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc,
    )
    if status == 504:
        return error_response(504, {"database": ["did not answer in time"]})
    return error_response(
        503,
        {"database": ["is unavailable; try again shortly"]},
        {"Retry-After": str(RETRY_AFTER_S)},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(InvalidFields, _invalid_fields)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    from asyncpress.core.db_faults import FAULTS  # noqa: PLC0415 - drivers

    for fault in FAULTS:
        app.add_exception_handler(fault, _database_fault)
    # Any other error is answered 500 and logged once, with the request's id,
    # by the outermost layer (asyncpress.ops.request_id), not here: a handler
    # for Exception runs outside every middleware, where Starlette re-raises
    # after answering and the server logs the error a second time.
