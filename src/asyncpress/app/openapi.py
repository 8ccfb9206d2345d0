"""``/openapi.json`` that tells the truth about what the API answers.

FastAPI describes each route from its signature. What the app adds around
the routes is stated here, once, for every operation:

- every error is the RealWorld envelope ``{"errors": {field: [message]}}``
  (FastAPI's ``HTTPValidationError`` shape is never sent);
- every status an operation can answer: 422 (validation, NUL in a path or
  query), 400 and 413 for bodies, 401 where a token is read, 403 and 404
  where the route checks them, 429 where a rate limit applies, 502 for
  link previews, 503 (database faults, a busy renderer) and 504 (deadlines);
- which operations need a token and which only read one if given
  (``security: [{}, {...}]``);
- the constraints the app enforces outside the models: no string holds NUL.

``tests/test_fuzz.py`` runs schemathesis over this document with all its
checks, so a route that answers something not written here fails the suite.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from asyncpress.users.auth import current_user, optional_user_id, required_user_id

ERRORS_REF = {"$ref": "#/components/schemas/Errors"}
SCHEME = "APIKeyHeader"
NO_NUL = "^[^\\u0000]*$"

_REASONS = {
    400: "The body cannot be read (not UTF-8, not JSON, nested too deeply).",
    401: "No token where one is needed, or a token that is invalid, expired or names no account.",
    403: "The resource belongs to someone else, or the action is not allowed to the caller.",
    404: "The resource in the path does not exist.",
    413: "The body is larger than the limit.",
    422: "A field, query or path parameter is invalid (named in the envelope).",
    431: "The request head (line and headers) is larger than the server takes.",
    429: "Too many attempts from this client; see Retry-After.",
    502: "The upstream page could not be fetched.",
    503: "The database (or the renderer) is unavailable for now; see Retry-After.",
    504: "The request (or a statement) passed its deadline.",
}
_ERRORS_SCHEMA = {
    "title": "Errors",
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        }
    },
}
_RATE_LIMITED = {("/api/users", "post"), ("/api/users/login", "post")}
_OWNED_OR_FORBIDDEN = {"put", "delete", "post"}
_CHANNEL = "(global|feed|user(:[^,\\s]{1,64})?|article:[^,\\s]{1,255})"


def _calls(dependant: Dependant) -> set[Any]:
    found = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def _auth(route: Any) -> str | None:
    calls = _calls(route.dependant)
    if required_user_id in calls or current_user in calls:
        return "required"
    if optional_user_id in calls:
        return "optional"
    return None


def _statuses(path: str, method: str, operation: dict[str, Any], auth: str | None) -> set[int]:
    statuses = {422, 431, 503}
    if path != "/api/events":  # a stream ends by its own lifetime, not the deadline
        statuses.add(504)
    if "requestBody" in operation:
        statuses |= {400, 413}
    if auth is not None or path == "/api/users/login":
        statuses.add(401)
    if auth == "required" and method in _OWNED_OR_FORBIDDEN:
        statuses.add(403)
    if path == "/api/events":
        statuses |= {401, 403}  # channels of other users, tickets
    if "{" in path:
        statuses.add(404)
    if (path, method) in _RATE_LIMITED:
        statuses.add(429)
    if path == "/api/link-preview":
        statuses.add(502)
    return statuses


def _no_nul(node: Any) -> None:
    """State, on every free-form string, that NUL is refused (ops.gate, schemas.Input)."""
    if isinstance(node, dict):
        if (
            node.get("type") == "string"
            and not {"pattern", "format", "enum", "const"} & node.keys()
        ):
            node["pattern"] = NO_NUL
        for value in node.values():
            _no_nul(value)
    elif isinstance(node, list):
        for value in node:
            _no_nul(value)


def _describe(app: FastAPI, document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Errors"] = _ERRORS_SCHEMA
    # The viewer dependencies read the header themselves (users.auth).
    document["components"]["securitySchemes"] = {
        SCHEME: {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <jwt>` as returned by login or registration.",
        }
    }
    routes = {
        (route.path_format, method.lower()): route
        for route in app.routes
        # WebSocket routes are not APIRoutes; they have no operations.
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            route = routes.get((path, method))
            auth = _auth(route) if route is not None else None
            if auth == "required":
                operation["security"] = [{SCHEME: []}]
            elif auth == "optional":
                operation["security"] = [{}, {SCHEME: []}]
            else:
                operation.pop("security", None)
            responses = operation.setdefault("responses", {})
            for status in sorted(_statuses(path, method, operation, auth)):
                responses[str(status)] = {
                    "description": _REASONS[status],
                    "content": {"application/json": {"schema": ERRORS_REF}},
                }
    _no_nul(document)
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve the described document (built once, on the first request for it)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = _describe(app, document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
