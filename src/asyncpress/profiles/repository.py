from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import ColumnElement, Integer, String, bindparam, delete, exists, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.core.db.bulk import insert_ignoring_conflicts
from asyncpress.core.db.engine import Reader
from asyncpress.fast.rows import Prepared
from asyncpress.profiles.models import Follow
from asyncpress.profiles.schemas import ProfileOut
from asyncpress.users.models import User


def following_expr(viewer_id: Any, author_id: Any) -> ColumnElement[bool]:
    """Whether the viewer (an id, a bound parameter or None) follows ``author_id`` (a column)."""
    if viewer_id is None:
        return false()
    return exists().where(Follow.follower_id == viewer_id, Follow.followee_id == author_id)


def profile_from_row(row: Any) -> ProfileOut:
    """The profile in a row (read by column name) with username, bio, image and following."""
    return ProfileOut(
        username=row["username"],
        bio=row["bio"],
        image=row["image"],
        following=bool(row["following"]),
    )


_PROFILE = Prepared(
    select(
        User.username,
        User.bio,
        User.image,
        following_expr(bindparam("viewer", type_=Integer), User.id).label("following"),
    ).where(User.username == bindparam("username", type_=String))
)


async def profile(reader: Reader, username: str, viewer_id: int | None) -> ProfileOut | None:
    rows = await _PROFILE.rows(reader, {"username": username, "viewer": viewer_id})
    return profile_from_row(rows[0]) if rows else None


async def follow(session: AsyncSession, follower_id: int, followee_id: int) -> bool:
    """Follow; True when this call made the link (False when it already existed)."""
    stmt = insert_ignoring_conflicts(session, Follow).values(
        follower_id=follower_id, followee_id=followee_id
    )
    result = await session.execute(stmt)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def unfollow(session: AsyncSession, follower_id: int, followee_id: int) -> None:
    await session.execute(
        delete(Follow).where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
    )


class Follows:
    """The follow graph as the event hub reads it to route ``feed`` events."""

    async def followers_among(
        self, session: AsyncSession, author_ids: Collection[int], user_ids: Collection[int]
    ) -> dict[int, set[int]]:
        """For each author, which of ``user_ids`` follow them (one query)."""
        fans: dict[int, set[int]] = {author: set() for author in author_ids}
        if not author_ids or not user_ids:
            return fans
        rows = await session.execute(
            select(Follow.followee_id, Follow.follower_id).where(
                Follow.followee_id.in_(sorted(author_ids)),
                Follow.follower_id.in_(sorted(user_ids)),
            )
        )
        for author, follower in rows:
            fans[author].add(follower)
        return fans

    async def followees(self, session: AsyncSession, user_id: int) -> set[int]:
        rows = await session.scalars(
            select(Follow.followee_id).where(Follow.follower_id == user_id)
        )
        return set(rows)
