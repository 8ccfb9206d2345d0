"""How routers reach the services the app's lifespan wired.

The lifespan builds every service once, with its collaborators, and lists
them in a :class:`Wiring` on ``app.state``. A router asks for one by its
class (``Annotated[Articles, provided(Articles)]``) and gets that instance:
routers name what they use, and nothing is passed through every call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any, TypeVar, cast

from fastapi import Depends
from starlette.requests import HTTPConnection

T = TypeVar("T")


class Wiring:
    """The app's services, one instance per class."""

    def __init__(self, *services: object) -> None:
        self._by_class: dict[type[Any], object] = {}
        for service in services:
            self.add(service)

    def add(self, service: object) -> None:
        kind = type(service)
        if kind in self._by_class:
            raise ValueError(f"{kind.__name__} is wired twice")
        self._by_class[kind] = service

    def get(self, kind: type[T]) -> T:
        try:
            return cast(T, self._by_class[kind])
        except KeyError:
            raise LookupError(f"{kind.__name__} is not wired in the app's lifespan") from None


@cache
def _dependency(kind: type[T]) -> Callable[[HTTPConnection], Awaitable[T]]:
    # One function per class, so FastAPI resolves it once per request however
    # many dependencies ask. Async on purpose: a plain ``def`` dependency
    # would run in the thread pool, a thread hop on every request.
    # HTTPConnection, so WebSocket routes can ask too.
    async def dependency(connection: HTTPConnection) -> T:
        return wired(connection, kind)

    dependency.__name__ = f"wired_{kind.__name__}"
    return dependency


def wired(connection: HTTPConnection, kind: type[T]) -> T:
    """The instance of ``kind`` the lifespan wired, for a dependency of its own.

    A dependency that needs a service calls this instead of depending on
    ``provided(kind)``: FastAPI's dependency solving costs more per
    sub-dependency than anything these functions do.
    """
    wiring: Wiring = connection.app.state.wiring
    return wiring.get(kind)


def provided(kind: type[T]) -> Any:
    """``Depends`` on the instance of ``kind`` the lifespan wired."""
    return Depends(_dependency(kind))  # type: ignore[arg-type]  # classes are hashable
