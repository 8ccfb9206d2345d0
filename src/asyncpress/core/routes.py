"""Every route an app serves, through FastAPI's included routers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def flat_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """The routes, with included routers opened (FastAPI keeps them nested).

    Each yielded route has the full ``path_format``; an included APIRoute
    comes wrapped, with its attributes (``methods``, ``dependant``,
    ``matches``) passed through.
    """
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if candidates is not None:
            yield from flat_routes(candidates())
        else:
            yield route
