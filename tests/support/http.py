"""One TLS context for every HTTP client the tests open.

Every server the tests start speaks plain HTTP, yet httpx builds a context
for each client it is not given one, loading the CA bundle each time:
about 40 ms of CPU per client, hundreds of clients a run (health polls
included).
"""

from __future__ import annotations

import httpx

TLS = httpx.create_ssl_context()
