from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.db import begin_write
from asyncpress.errors import Invalid, NotFound
from asyncpress.events import publish as events
from asyncpress.notifications import service as notifications
from asyncpress.profiles import repository
from asyncpress.profiles.schemas import ProfileOut
from asyncpress.users.models import User


async def get(session: AsyncSession, username: str, viewer_id: int | None) -> ProfileOut:
    found = await repository.profile(session, username, viewer_id)
    if found is None:
        raise NotFound("profile")
    return found


async def set_following(
    session: AsyncSession, viewer: User, username: str, *, follow: bool
) -> ProfileOut:
    """Follow or unfollow; doing it twice is the same as doing it once."""
    await begin_write(session)
    target = await repository.user_by_username(session, username)
    if target is None:
        raise NotFound("profile")
    if target.id == viewer.id:
        raise Invalid("username", "is you; you cannot follow yourself")
    created = False
    if follow:
        created = await repository.follow(session, viewer.id, target.id)
        await notifications.on_follow(
            session, actor=viewer.username, actor_id=viewer.id, followee=target
        )
    else:
        await repository.unfollow(session, viewer.id, target.id)
    found = await repository.profile(session, username, viewer.id)
    if created:  # following twice is one event
        await events.followed(session, viewer, target)
    await session.commit()
    assert found is not None
    return found
