from __future__ import annotations

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.users.models import User, fold


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
