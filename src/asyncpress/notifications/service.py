"""What deserves an e-mail, and the user's say in it.

Each trigger writes an outbox row in the caller's transaction: if the cause
rolls back, so does the message. Nothing is sent for one's own actions.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.db import begin_write
from asyncpress.errors import Unauthorized
from asyncpress.notifications import repository
from asyncpress.notifications.schemas import Preferences, PreferencesUpdate
from asyncpress.users.models import User

EXCERPT_CHARS = 500

# API name -> column on users
_COLUMNS = {
    "comment_on_my_article": "notify_comment",
    "new_follower": "notify_follower",
    "favorite_of_my_article": "notify_favorite",
}


def preferences_of(user: User) -> Preferences:
    return Preferences(
        comment_on_my_article=user.notify_comment,
        new_follower=user.notify_follower,
        favorite_of_my_article=user.notify_favorite,
    )


async def update_preferences(
    session: AsyncSession, user_id: int, changes: PreferencesUpdate
) -> Preferences:
    await begin_write(session)
    user = await session.get(User, user_id)
    if user is None:
        raise Unauthorized("token", "names an account that does not exist")
    for name, value in changes.model_dump(exclude_none=True).items():
        setattr(user, _COLUMNS[name], value)
    await session.commit()
    return preferences_of(user)


async def on_comment(
    session: AsyncSession,
    *,
    comment_id: int,
    actor: str,
    actor_id: int,
    owner: User,
    title: str,
    slug: str,
    body: str,
) -> None:
    if owner.id == actor_id or not owner.notify_comment:
        return
    excerpt = body if len(body) <= EXCERPT_CHARS else body[: EXCERPT_CHARS - 1] + "…"
    payload = {
        "recipient": owner.username,
        "actor": actor,
        "title": title,
        "slug": slug,
        "excerpt": excerpt,
    }
    await repository.enqueue(session, f"comment:{comment_id}", "comment", owner.email, payload)


async def on_follow(session: AsyncSession, *, actor: str, actor_id: int, followee: User) -> None:
    if followee.id == actor_id or not followee.notify_follower:
        return
    payload = {"recipient": followee.username, "actor": actor}
    key = f"follow:{actor_id}:{followee.id}"
    await repository.enqueue(session, key, "follow", followee.email, payload)


async def on_favorite(
    session: AsyncSession,
    *,
    actor: str,
    actor_id: int,
    owner: User,
    article_id: int,
    title: str,
    slug: str,
) -> None:
    if owner.id == actor_id or not owner.notify_favorite:
        return
    payload = {"recipient": owner.username, "actor": actor, "title": title, "slug": slug}
    key = f"favorite:{actor_id}:{article_id}"
    await repository.enqueue(session, key, "favorite", owner.email, payload)
