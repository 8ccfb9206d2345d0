"""Registration, login and account updates."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.core import cache_keys
from asyncpress.core.db.base import utcnow
from asyncpress.core.errors import Invalid, Unauthorized
from asyncpress.core.security import Passwords, Tokens
from asyncpress.core.uow import Database
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


class Accounts:
    def __init__(self, db: Database, passwords: Passwords, tokens: Tokens) -> None:
        self.db = db
        self.passwords = passwords
        self.tokens = tokens

    def token_for(self, user: User) -> str:
        return self.tokens.issue(user.id)

    async def register(self, data: NewUser) -> User:
        password_hash = await self.passwords.hash(data.password)
        try:
            async with self.db.write() as uow:
                await _refuse_taken(uow.session, data.username, data.email)
                user = User(username=data.username, email=data.email, password_hash=password_hash)
                uow.session.add(user)
                await uow.commit()
        except IntegrityError as exc:  # lost a race with a concurrent registration
            raise Invalid(repository.conflicting_field(exc), TAKEN) from exc
        return user

    async def login(self, data: LoginUser) -> User:
        # The session is closed before the (slow) hash check: no connection waits on it.
        async with self.db.session() as session:
            user = await repository.by_email(session, data.email)
        ok = await self.passwords.verify(user.password_hash if user else None, data.password)
        if user is None or not ok:
            raise Unauthorized("email or password", "is invalid")
        if self.passwords.outdated(user.password_hash):
            await self._rehash(user, data.password)
        return user

    async def _rehash(self, user: User, password: str) -> None:
        """Hash a password that just verified again, with today's parameters.

        Only the row that still holds the old hash is changed: a password
        changed in between is kept.
        """
        new_hash = await self.passwords.hash(password)
        async with self.db.write() as uow:
            replaced = await repository.replace_password_hash(
                uow.session, user.id, user.password_hash, new_hash
            )
            await uow.commit()
        if replaced:
            user.password_hash = new_hash

    async def update(self, user_id: int, data: UserUpdate) -> User:
        changes = data.model_dump(exclude_unset=True)
        password_hash = await self.passwords.hash(data.password) if data.password else None
        try:
            async with self.db.write() as uow:
                user = await repository.by_id(uow.session, user_id)
                if user is None:
                    raise Unauthorized("token", "names an account that does not exist")
                new_username = (
                    data.username if data.username and data.username != user.username else None
                )
                new_email = data.email if data.email and data.email != user.email else None
                await _refuse_taken(uow.session, new_username, new_email, exclude_id=user.id)
                if new_username:
                    user.username = new_username
                    # Counts by ?author= and ?favorited= name the old username.
                    uow.retire(cache_keys.ARTICLE_COUNTS)
                if new_email:
                    user.email = new_email
                if password_hash:
                    user.password_hash = password_hash
                if "bio" in changes:
                    user.bio = data.bio or ""
                if "image" in changes:
                    user.image = data.image
                user.updated_at = utcnow()
                await uow.commit()
        except IntegrityError as exc:
            raise Invalid(repository.conflicting_field(exc), TAKEN) from exc
        return user
