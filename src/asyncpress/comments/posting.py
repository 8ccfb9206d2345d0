"""Adding a comment on PostgreSQL: one statement that commits as it ends.

The comment, its live event and the author's mail are CTEs of one statement
sent outside a transaction block (``core.uow.OneStatement``): one round trip
where a unit of work took five (BEGIN, the comment, the mail, the event,
COMMIT) and held the event log's lock across the last of them. Only the
comment's id is unknown until the statement runs: the event's payload is
serialised with a slot for it (``journal.slot``), and the mail's key is made
from it in SQL. SQLite and MySQL/MariaDB add a comment in a unit of work
(``service.Comments.add``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    String,
    bindparam,
    cast,
    literal,
    select,
)

from asyncpress.comments import events, repository
from asyncpress.comments.models import Comment
from asyncpress.comments.schemas import CommentOut
from asyncpress.core.db.bulk import rows_written, table_of
from asyncpress.core.logs import current_request_id
from asyncpress.core.uow import OneStatement
from asyncpress.events import journal
from asyncpress.fast.rows import Prepared
from asyncpress.notifications import repository as outbox
from asyncpress.notifications.service import COMMENT_KEY_PREFIX, Message, message_params

ID_KEY = "id"


def _statement() -> Prepared:
    added = repository.insert_returning_id().cte("added")
    now = bindparam("now", type_=table_of(Comment).c.created_at.type)
    logged = journal.logged_from(
        select(
            literal(events.CREATED).label("type"),
            now.label("created_at"),
            bindparam("channels", type_=String).label("channels"),
            journal.filled(bindparam("event_data", type_=String), ID_KEY, added.c.id).label("data"),
            bindparam("request_id", type_=String).label("request_id"),
        ).select_from(added)
    )
    key = literal(COMMENT_KEY_PREFIX) + cast(added.c.id, String)
    enqueued = outbox.enqueued_from(outbox.bound_message(key).select_from(added))
    return Prepared(
        select(added.c.id, rows_written(logged), rows_written(enqueued).label("queued")),
        writes=True,
    )


_POST = _statement()


async def post(
    work: OneStatement,
    *,
    article_id: int,
    author_id: int,
    slug: str,
    comment: CommentOut,
    now: datetime,
    channels: list[str],
    message: Message | None,
) -> int:
    """Add ``comment`` (its id still 0) in one statement; returns its id."""
    data = journal.compact_json(events.created_payload(slug, comment.model_copy(update={"id": -1})))
    if not journal.holds_slot_once(data, ID_KEY):
        raise ValueError("the event's payload must hold the id's slot once")
    params: dict[str, Any] = {
        "body": comment.body,
        "article_id": article_id,
        "author_id": author_id,
        "now": now,
        "channels": journal.channels_text(channels),
        "event_data": data,
        "request_id": current_request_id(),
        **message_params(message),
        "outbox_now": now,
    }
    rows = await work.send(_POST, params)
    work.wake_streams()
    if rows[0]["queued"]:
        work.kick_outbox()
    comment_id: int = rows[0]["id"]
    return comment_id
