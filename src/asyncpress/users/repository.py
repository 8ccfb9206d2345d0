from __future__ import annotations

from typing import Any

from sqlalchemy import Integer, String, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached

from asyncpress.core.db.base import utc
from asyncpress.core.db.bulk import table_of
from asyncpress.core.db.engine import Reader
from asyncpress.fast.rows import Prepared
from asyncpress.users.models import User, fold

_USERS = table_of(User)
_BY_ID = Prepared(select(*_USERS.c).where(_USERS.c.id == bindparam("id", type_=Integer)))


async def by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(User.email == email.lower()))
    return result.scalar_one_or_none()


async def replace_password_hash(
    session: AsyncSession, user_id: int, old_hash: str, new_hash: str
) -> bool:
    """Store ``new_hash`` if the row still holds ``old_hash`` (no change in between)."""
    result = await session.execute(
        update(User)
        .where(User.id == user_id, User.password_hash == old_hash)
        .values(password_hash=new_hash)
    )
    return bool(getattr(result, "rowcount", 0))


async def by_id(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


def detached(row: Any) -> User:
    """A user from a row read by column name, in no session (read its attributes only)."""
    user = User(
        id=row["id"],
        username=row["username"],
        email=row["email"],
        password_hash=row["password_hash"],
        bio=row["bio"],
        image=row["image"],
        notify_comment=bool(row["notify_comment"]),
        notify_follower=bool(row["notify_follower"]),
        notify_favorite=bool(row["notify_favorite"]),
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
    )
    # Detached, as if loaded and its session closed: a session given it later
    # treats it as the existing row, never as a new one to insert.
    make_transient_to_detached(user)
    return user


async def read(reader: Reader, user_id: int) -> User | None:
    """The account with this id, read driver-direct and detached (the caller of a request).

    Cheaper than :func:`by_id`: no identity map, no ORM loading.
    """
    rows = await _BY_ID.rows(reader, {"id": user_id})
    return detached(rows[0]) if rows else None


def actor_columns(actor_id: Any) -> list[Any]:
    """The profile of the user ``actor_id`` names, as columns to add to a statement.

    A write reads its caller this way beside what it reads anyway: one
    statement on one connection, where a dependency of the route would read
    the caller on a pooled connection of its own first.
    """
    actor = table_of(User).alias("actor")
    return [
        select(column).where(actor.c.id == actor_id).scalar_subquery().label(f"actor_{column.key}")
        for column in (actor.c.username, actor.c.bio, actor.c.image)
    ]


def actor_from(row: Any, actor_id: int) -> User | None:
    """The actor of ``actor_columns``, transient (id and profile only); None if gone."""
    if row["actor_username"] is None:
        return None
    return User(
        id=actor_id, username=row["actor_username"], bio=row["actor_bio"], image=row["actor_image"]
    )


def _by_username(*beside: Any) -> Prepared:
    return Prepared(
        select(*_USERS.c, *beside).where(_USERS.c.username == bindparam("username", type_=String))
    )


_BY_USERNAME = _by_username()
_BY_USERNAME_WITH_ACTOR = _by_username(*actor_columns(bindparam("actor", type_=Integer)))


async def read_by_username(reader: Reader, username: str) -> User | None:
    """The account with this username (exactly), driver-direct and detached."""
    rows = await _BY_USERNAME.rows(reader, {"username": username})
    return detached(rows[0]) if rows else None


async def read_by_username_with_actor(
    reader: Reader, username: str, actor_id: int
) -> tuple[User, User | None] | None:
    """``read_by_username`` and the actor (``actor_from``) in one statement; None: no such user."""
    rows = await _BY_USERNAME_WITH_ACTOR.rows(reader, {"username": username, "actor": actor_id})
    return (detached(rows[0]), actor_from(rows[0], actor_id)) if rows else None


async def taken_fields(
    session: AsyncSession, username: str | None, email: str | None, exclude_id: int | None = None
) -> list[str]:
    """Which of ``username`` / ``email`` another account already uses."""
    conditions = []
    if username is not None:
        conditions.append(User.username_key == fold(username))
    if email is not None:
        conditions.append(User.email == email)
    if not conditions:
        return []
    stmt = select(User.username, User.email).where(or_(*conditions))
    if exclude_id is not None:
        stmt = stmt.where(User.id != exclude_id)
    taken: list[str] = []
    for row in (await session.execute(stmt)).all():
        if username is not None and fold(row.username) == fold(username):
            taken.append("username")
        if email is not None and row.email == email:
            taken.append("email")
    return sorted(set(taken))


def conflicting_field(exc: IntegrityError) -> str:
    """The field a unique violation on ``users`` was about."""
    return "email" if "email" in str(exc.orig).lower() else "username"
