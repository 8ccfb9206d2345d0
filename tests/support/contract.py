"""Checks every response the tests receive against the RealWorld contract.

The contract is ``realworld/openapi.yml`` in the shared folder beside the
repository (or the file named by ``REALWORLD_OPENAPI``). Two deliberate
readings, both from the contract's own pages:

* ``image`` may be null (the response-format page shows ``"image": null``);
  the OpenAPI file types it as a plain string, so it is widened here.
* Error bodies are ``{"errors": {"<field>": ["<message>"]}}`` with the field
  that failed; ``GenericErrorModel`` names ``body`` only as its example, so
  every 4xx body is checked against that envelope instead.
"""

from __future__ import annotations

import copy
import json
import os
import re
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPO = Path(__file__).resolve().parents[2]
CONTRACT_URI = "urn:realworld:openapi"
API_PREFIX = "/api"

ENVELOPE = {
    "type": "object",
    "required": ["errors"],
    "additionalProperties": False,
    "properties": {
        "errors": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "minLength": 1},
            },
        }
    },
}


def contract_path() -> Path:
    configured = os.environ.get("REALWORLD_OPENAPI")
    return Path(configured) if configured else REPO.parent / "shared" / "realworld" / "openapi.yml"


@cache
def contract() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(contract_path().read_text(encoding="utf-8"))
    document = copy.deepcopy(document)
    for name in ("User", "Profile"):
        document["components"]["schemas"][name]["properties"]["image"] = {
            "type": ["string", "null"]
        }
    return document


@cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = DRAFT202012.create_resource(contract())
    registry: Registry[Any] = Registry().with_resource(CONTRACT_URI, resource)
    return registry


@cache
def _routes() -> list[tuple[re.Pattern[str], str]]:
    routes = []
    for template in contract()["paths"]:
        pattern = re.sub(r"\{[^}]+\}", r"[^/]+", template)
        routes.append((re.compile(f"^{pattern}$"), template))
    # Literal segments win over parameters: /articles/feed before /articles/{slug}.
    routes.sort(key=lambda item: item[1].count("{"))
    return routes


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


# asyncpress's own endpoints whose paths happen to fit a contract template
# (``/articles/export`` looks like ``/articles/{slug}``).
EXTENSIONS = {("GET", "/api/articles/export")}


def operation_for(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    if not path.startswith(API_PREFIX) or (method.upper(), path) in EXTENSIONS:
        return None
    local = path[len(API_PREFIX) :] or "/"
    for pattern, template in _routes():
        if pattern.match(local):
            operation = contract()["paths"][template].get(method.lower())
            if operation is not None:
                return template, operation
    return None


def _validate(instance: Any, schema: dict[str, Any]) -> None:
    validator = Draft202012Validator(schema, registry=_registry())
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        details = "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])
        raise AssertionError(f"response breaks the contract: {details}")


def check(response: httpx.Response) -> None:
    """Raise AssertionError if ``response`` breaks the contract."""
    request = response.request
    status = response.status_code
    where = f"{request.method} {request.url.path} -> {status}"
    # 502 and 504 are deliberate answers about upstreams and deadlines (in the
    # envelope, checked below); any other 5xx is a server error.
    assert status < 500 or status in {502, 504}, f"{where}: server error {response.text[:500]}"
    if request.method == "OPTIONS":
        return
    found = operation_for(request.method, request.url.path)
    if status >= 400:
        assert response.headers.get("content-type", "").startswith("application/json"), where
        _validate(json.loads(response.content), ENVELOPE)
        return
    if found is None:
        return  # not a contract endpoint (e.g. /api/health)
    template, operation = found
    declared = operation["responses"]
    assert str(status) in declared, f"{where}: status not in the contract for {template}"
    if status == 204:
        assert response.content == b"", f"{where}: 204 with a body"
        return
    ref = declared[str(status)]["$ref"]  # every success response is a reference
    name = ref.rsplit("/", 1)[1]
    assert response.headers.get("content-type", "").startswith("application/json"), where
    pointer = _pointer("components", "responses", name, "content", "application/json", "schema")
    _validate(json.loads(response.content), {"$ref": f"{CONTRACT_URI}#/{pointer}"})


def preload() -> None:
    contract()
    _registry()
    _routes()


async def hook(response: httpx.Response) -> None:
    await response.aread()
    check(response)
