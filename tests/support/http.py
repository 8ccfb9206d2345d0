"""One TLS context for every HTTP client the tests open.

Every server the tests start speaks plain HTTP, yet httpx builds a context
for each client it is not given one, loading the CA bundle each time:
about 40 ms of CPU per client, hundreds of clients a run (health polls
included).
"""

from __future__ import annotations

import httpx

TLS = httpx.create_ssl_context()


async def preflight(
    client: httpx.AsyncClient,
    path: str,
    method: str,
    headers: str | None = None,
    origin: str = "http://localhost:4200",
) -> httpx.Response:
    """What a browser sends before a cross-origin ``method`` with ``headers`` on ``path``."""
    asked = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers is not None:
        asked["Access-Control-Request-Headers"] = headers
    return await client.options(path, headers=asked)
