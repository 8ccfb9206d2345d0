from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.db import begin_write
from asyncpress.errors import Invalid, NotFound
from asyncpress.profiles import repository
from asyncpress.profiles.schemas import ProfileOut


async def get(session: AsyncSession, username: str, viewer_id: int | None) -> ProfileOut:
    found = await repository.profile(session, username, viewer_id)
    if found is None:
        raise NotFound("profile")
    return found


async def set_following(
    session: AsyncSession, viewer_id: int, username: str, *, follow: bool
) -> ProfileOut:
    """Follow or unfollow; doing it twice is the same as doing it once."""
    await begin_write(session)
    target_id = await repository.user_id_by_username(session, username)
    if target_id is None:
        raise NotFound("profile")
    if target_id == viewer_id:
        raise Invalid("username", "is you; you cannot follow yourself")
    if follow:
        await repository.follow(session, viewer_id, target_id)
    else:
        await repository.unfollow(session, viewer_id, target_id)
    found = await repository.profile(session, username, viewer_id)
    await session.commit()
    assert found is not None
    return found
