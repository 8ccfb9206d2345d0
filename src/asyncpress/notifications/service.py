"""What deserves an e-mail, and the user's say in it.

Each trigger writes an outbox row in the caller's unit of work, and asks
its commit to kick the outbox: if the cause rolls back, so does the message.
Nothing is sent for one's own actions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from asyncpress.core.errors import Unauthorized
from asyncpress.core.uow import Database, UnitOfWork
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


class NotificationPreferences:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def update(self, user_id: int, changes: PreferencesUpdate) -> Preferences:
        async with self.db.write() as uow:
            user = await uow.session.get(User, user_id)
            if user is None:
                raise Unauthorized("token", "names an account that does not exist")
            for name, value in changes.model_dump(exclude_none=True).items():
                setattr(user, _COLUMNS[name], value)
            await uow.commit()
        return preferences_of(user)


async def _queue(uow: UnitOfWork, key: str, kind: str, to: str, payload: dict[str, str]) -> None:
    await repository.enqueue(uow.session, key, kind, to, payload)
    uow.kick_outbox()


@dataclass(frozen=True, slots=True)
class Message:
    """An outbox row as a trigger wants it queued."""

    key: str  # idempotency: a second message with the key is not queued
    kind: str
    to_email: str
    payload: dict[str, str]


COMMENT_KEY_PREFIX = "comment:"  # and the comment's id


def message_params(message: Message | None) -> dict[str, Any]:
    """The parameters of ``repository.bound_message`` for ``message`` (None: queue nothing)."""
    return {
        "notify": message is not None,
        "outbox_key": message.key if message else "",
        "outbox_kind": message.kind if message else "",
        "outbox_to": message.to_email if message else "",
        "outbox_payload": json.dumps(message.payload if message else {}),
    }


def comment_message(
    *, comment_id: int, actor: str, actor_id: int, owner: User, title: str, slug: str, body: str
) -> Message | None:
    """The mail a comment sends the article's author, if they want it."""
    if owner.id == actor_id or not owner.notify_comment:
        return None
    excerpt = body if len(body) <= EXCERPT_CHARS else body[: EXCERPT_CHARS - 1] + "…"
    payload = {
        "recipient": owner.username,
        "actor": actor,
        "title": title,
        "slug": slug,
        "excerpt": excerpt,
    }
    return Message(f"{COMMENT_KEY_PREFIX}{comment_id}", "comment", owner.email, payload)


async def queue(uow: UnitOfWork, message: Message | None) -> None:
    """Queue ``message`` in the unit of work (nothing for None)."""
    if message is not None:
        await _queue(uow, message.key, message.kind, message.to_email, message.payload)


def follow_message(*, actor: str, actor_id: int, followee: User) -> Message | None:
    """The mail a new follower sends, if the followee wants it."""
    if followee.id == actor_id or not followee.notify_follower:
        return None
    payload = {"recipient": followee.username, "actor": actor}
    return Message(f"follow:{actor_id}:{followee.id}", "follow", followee.email, payload)


async def on_follow(uow: UnitOfWork, *, actor: str, actor_id: int, followee: User) -> None:
    await queue(uow, follow_message(actor=actor, actor_id=actor_id, followee=followee))


async def on_favorite(
    uow: UnitOfWork,
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
    await _queue(uow, favorite_key(actor_id, article_id), "favorite", owner.email, payload)


def favorite_key(actor_id: int, article_id: int) -> str:
    """A favorite's message key: one message per reader and article, however often."""
    return f"favorite:{actor_id}:{article_id}"
