"""Who is calling: the ``Authorization`` header, checked, as router dependencies."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy import select
from starlette.requests import HTTPConnection

from asyncpress.core.errors import Unauthorized
from asyncpress.core.security import TokenError, Tokens
from asyncpress.core.uow import Database
from asyncpress.core.web import wired
from asyncpress.users import repository
from asyncpress.users.models import User


def account_gone() -> Unauthorized:
    """A signed token whose account does not exist (a restored backup, a row removed by hand)."""
    return Unauthorized("token", "names an account that does not exist")


def _token(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() not in {"token", "bearer"} or not token.strip():
        raise Unauthorized("token", "is malformed (expected 'Token <jwt>')")
    return token.strip()


def presented_token(header: str) -> str:
    """The token of a header that authenticated (so it is well-formed)."""
    return header.strip().partition(" ")[2].strip()


class Authenticator:
    """Turns a header into the id of an existing account, or refuses it."""

    def __init__(self, tokens: Tokens, db: Database) -> None:
        self.tokens = tokens
        self.db = db

    def user_id_from_header(self, header: str | None) -> int | None:
        """The user a header names; None without one; else Unauthorized."""
        token = _token(header)
        if token is None:
            return None
        try:
            return self.tokens.user_id(token)
        except TokenError as exc:
            raise Unauthorized("token", "is invalid or expired") from exc

    async def existing_user_id(self, header: str | None) -> int | None:
        """The user a header names, whose account exists; None without one; else Unauthorized.

        A signed token can outlive its account's row (a restored backup,
        another deployment's secret): it is refused like any other bad
        token. Each process checks an id once and remembers it, since the
        API never deletes an account; a row deleted by hand is still believed
        by a process that had seen it, until it restarts (routes that load
        the caller's row refuse it).
        """
        user_id = self.user_id_from_header(header)
        if user_id is None or self.tokens.seen(user_id):
            return user_id
        async with self.db.session() as session:
            found = await session.scalar(select(User.id).where(User.id == user_id))
        if found is None:
            raise account_gone()
        self.tokens.saw(user_id)
        return user_id

    async def user(self, user_id: int) -> User:
        """The caller's row, read on a connection of its own and returned detached."""
        async with self.db.reading() as reader:
            user = await repository.read(reader, user_id)
        if user is None:
            raise account_gone()
        self.tokens.saw(user.id)
        return user


# The viewer dependencies take only the connection and read the header
# themselves: every sub-dependency (FastAPI's ``APIKeyHeader`` one included)
# is one more round of FastAPI's dependency solving on every request.
# ``app.openapi`` declares the header's scheme for the routes that use them.
def _header(connection: HTTPConnection) -> str | None:
    return connection.headers.get("authorization")


async def optional_user_id(connection: HTTPConnection) -> int | None:
    return await wired(connection, Authenticator).existing_user_id(_header(connection))


async def required_user_id(connection: HTTPConnection) -> int:
    user_id = await wired(connection, Authenticator).existing_user_id(_header(connection))
    if user_id is None:
        raise Unauthorized("token", "is missing")
    return user_id


async def current_user(connection: HTTPConnection) -> User:
    """The caller's row; reading it is what proves the account exists."""
    authenticator = wired(connection, Authenticator)
    user_id = authenticator.user_id_from_header(_header(connection))
    if user_id is None:
        raise Unauthorized("token", "is missing")
    return await authenticator.user(user_id)


ViewerId = Annotated[int | None, Depends(optional_user_id)]
AuthUserId = Annotated[int, Depends(required_user_id)]
CurrentUser = Annotated[User, Depends(current_user)]
