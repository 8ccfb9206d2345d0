"""Annotated dependency aliases shared by every router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.errors import Unauthorized
from asyncpress.resources import Resources
from asyncpress.security import TokenError, Tokens
from asyncpress.users.models import User


async def get_resources(request: Request) -> Resources:
    # async on purpose: FastAPI runs a plain ``def`` dependency in its thread
    # pool, a thread hop on every request (docs/benchmarks.md).
    resources: Resources = request.app.state.resources
    return resources


ResourcesDep = Annotated[Resources, Depends(get_resources)]


async def get_session(resources: ResourcesDep) -> AsyncIterator[AsyncSession]:
    """One session per request. It never commits: the service does, once."""
    async with resources.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]

_authorization = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    description="`Token <jwt>` as returned by login or registration.",
)


def _token(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() not in {"token", "bearer"} or not token.strip():
        raise Unauthorized("token", "is malformed (expected 'Token <jwt>')")
    return token.strip()


def user_id_from_header(tokens: Tokens, header: str | None) -> int | None:
    """The user an ``Authorization`` header names; None without one; else Unauthorized."""
    token = _token(header)
    if token is None:
        return None
    try:
        return tokens.user_id(token)
    except TokenError as exc:
        raise Unauthorized("token", "is invalid or expired") from exc


async def existing_user_id(resources: Resources, header: str | None) -> int | None:
    """The user a header names, whose account exists; None without one; else Unauthorized.

    A signed token can outlive its account's row (a restored backup, another
    deployment's secret): it is refused like any other bad token. Each
    process checks an id once and remembers it, since the API never deletes
    an account; a row deleted by hand is still believed by a process that had
    seen it, until it restarts (routes that load the caller's row refuse it).
    """
    user_id = user_id_from_header(resources.tokens, header)
    if user_id is None or resources.tokens.seen(user_id):
        return user_id
    async with resources.sessionmaker() as session:
        found = await session.scalar(select(User.id).where(User.id == user_id))
    if found is None:
        raise Unauthorized("token", "names an account that does not exist")
    resources.tokens.saw(user_id)
    return user_id


async def optional_user_id(
    resources: ResourcesDep, header: Annotated[str | None, Depends(_authorization)]
) -> int | None:
    return await existing_user_id(resources, header)


async def required_user_id(
    user_id: Annotated[int | None, Depends(optional_user_id)],
) -> int:
    if user_id is None:
        raise Unauthorized("token", "is missing")
    return user_id


async def current_user(
    resources: ResourcesDep, user_id: Annotated[int, Depends(required_user_id)]
) -> User:
    """The caller's row, read in a short session of its own.

    It is returned detached, so the request's session starts its (write)
    transaction clean.
    """
    async with resources.sessionmaker() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise Unauthorized("token", "names an account that does not exist")
    resources.tokens.saw(user.id)
    return user


ViewerId = Annotated[int | None, Depends(optional_user_id)]
AuthUserId = Annotated[int, Depends(required_user_id)]
CurrentUser = Annotated[User, Depends(current_user)]
