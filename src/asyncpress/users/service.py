"""Registration, login and account updates."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.db import begin_write, release, utcnow
from asyncpress.errors import Invalid, Unauthorized
from asyncpress.security import Passwords
from asyncpress.users import repository
from asyncpress.users.models import User
from asyncpress.users.schemas import LoginUser, NewUser, UserUpdate

TAKEN = "has already been taken"


async def _refuse_taken(
    session: AsyncSession, username: str | None, email: str | None, exclude_id: int | None = None
) -> None:
    taken = await repository.taken_fields(session, username, email, exclude_id)
    if taken:
        raise Invalid(taken[0], TAKEN)


async def register(session: AsyncSession, passwords: Passwords, data: NewUser) -> User:
    password_hash = await passwords.hash(data.password)
    await begin_write(session)
    await _refuse_taken(session, data.username, data.email)
    user = User(username=data.username, email=data.email, password_hash=password_hash)
    session.add(user)
    try:
        await session.commit()
    except IntegrityError as exc:  # lost a race with a concurrent registration
        await session.rollback()
        raise Invalid(repository.conflicting_field(exc), TAKEN) from exc
    return user


async def login(session: AsyncSession, passwords: Passwords, data: LoginUser) -> User:
    user = await repository.by_email(session, data.email)
    await release(session)
    ok = await passwords.verify(user.password_hash if user else None, data.password)
    if user is None or not ok:
        raise Unauthorized("email or password", "is invalid")
    return user


async def update(
    session: AsyncSession, passwords: Passwords, user_id: int, data: UserUpdate
) -> User:
    changes = data.model_dump(exclude_unset=True)
    password_hash = await passwords.hash(data.password) if data.password else None
    await begin_write(session)
    user = await repository.by_id(session, user_id)
    if user is None:
        raise Unauthorized("token", "names an account that does not exist")
    new_username = data.username if data.username and data.username != user.username else None
    new_email = data.email if data.email and data.email != user.email else None
    await _refuse_taken(session, new_username, new_email, exclude_id=user.id)
    if new_username:
        user.username = new_username
    if new_email:
        user.email = new_email
    if password_hash:
        user.password_hash = password_hash
    if "bio" in changes:
        user.bio = data.bio or ""
    if "image" in changes:
        user.image = data.image
    user.updated_at = utcnow()
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise Invalid(repository.conflicting_field(exc), TAKEN) from exc
    return user
