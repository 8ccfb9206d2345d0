"""Follow and unfollow on PostgreSQL: one statement that commits as it ends.

A follow is its row, the followee's live event and, if they want it, their
mail: three CTEs of one statement sent outside a transaction block
(``core.uow.OneStatement``), one round trip where a unit of work took five
(BEGIN, the row, the mail, the event, COMMIT) and held the event log's lock
across the last of them. An unfollow is its DELETE alone. Everything the
statement writes is known before it is sent (the followee was read), so
the payloads are built in Python. SQLite and MySQL/MariaDB follow in a unit
of work (``service.Profiles.set_following``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    bindparam,
    delete,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from asyncpress.core.db.base import utcnow
from asyncpress.core.db.bulk import rows_written, table_of
from asyncpress.core.logs import current_request_id
from asyncpress.core.uow import OneStatement
from asyncpress.events import journal
from asyncpress.events.channels import user_channel
from asyncpress.fast.rows import Prepared
from asyncpress.notifications import repository as outbox
from asyncpress.notifications.service import follow_message, message_params
from asyncpress.profiles.events import FOLLOWED, followed_payload
from asyncpress.profiles.models import Follow
from asyncpress.users.models import User


def _follow() -> Prepared:
    follows = table_of(Follow)
    now = bindparam("now", type_=DateTime(timezone=True))
    added = (
        pg_insert(follows)
        .values(
            follower_id=bindparam("follower_id", type_=Integer),
            followee_id=bindparam("followee_id", type_=Integer),
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(follows.c.followee_id)
        .cte("added")
    )
    logged = journal.logged_from(  # following twice is one event
        select(
            bindparam("event_type", type_=String).label("type"),
            now.label("created_at"),
            bindparam("channels", type_=String).label("channels"),
            bindparam("event_data", type_=String).label("data"),
            bindparam("request_id", type_=String).label("request_id"),
        ).select_from(added)
    )
    enqueued = outbox.enqueued_from(outbox.bound_message())  # a second one: not queued (its key)
    return Prepared(
        select(
            rows_written(added).label("added"),
            rows_written(logged),
            rows_written(enqueued).label("queued"),
        ),
        writes=True,
    )


_FOLLOW = _follow()
_UNFOLLOW = Prepared(
    delete(table_of(Follow))
    .where(
        table_of(Follow).c.follower_id == bindparam("follower_id", type_=Integer),
        table_of(Follow).c.followee_id == bindparam("followee_id", type_=Integer),
    )
    .returning(table_of(Follow).c.followee_id)
)


async def write(work: OneStatement, follower: User, followee: User, *, follow: bool) -> None:
    """Follow or unfollow in one statement; doing it twice is doing it once."""
    ids = {"follower_id": follower.id, "followee_id": followee.id}
    if not follow:
        await work.send(_UNFOLLOW, ids)
        return
    message = follow_message(actor=follower.username, actor_id=follower.id, followee=followee)
    params: dict[str, Any] = {
        **ids,
        "now": utcnow(),
        "event_type": FOLLOWED,
        "event_data": journal.compact_json(followed_payload(follower, followee)),
        "channels": journal.channels_text([user_channel(followee.id)]),
        "request_id": current_request_id(),
        **message_params(message),
    }
    params["outbox_now"] = params["now"]
    rows = await work.send(_FOLLOW, params)
    if rows[0]["added"]:
        work.wake_streams()
    if rows[0]["queued"]:
        work.kick_outbox()
