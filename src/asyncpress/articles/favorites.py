"""A favorite or unfavorite on PostgreSQL: one statement that commits as it ends.

Every favorite of an article moves its count, so a popular article's row is
wanted by all its favoriters at once, and a transaction holds it from the
UPDATE to the COMMIT. In a unit of work that was three round trips to the
app and back (the count, the event, the COMMIT), each waiting its turn on
a busy event loop: writers queued on the row for milliseconds apiece. Here
the favorite row, the count, the live event and the author's notification
are CTEs of one statement sent outside a transaction block
(``OneStatement``): PostgreSQL holds the row only while the statement runs.

The event's payload is the article as the REST API shows it, with the new
count, which only the statement knows: the payload is serialised with a
slot for the count that the statement fills in (``journal.slot``).

SQLite and MySQL/MariaDB favorite in a unit of work (``repository.move_favorite``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    CTE,
    DateTime,
    Integer,
    Select,
    String,
    bindparam,
    case,
    cast,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from asyncpress.articles.models import Article, Favorite
from asyncpress.core.db.base import utcnow
from asyncpress.core.db.bulk import rows_written, table_of
from asyncpress.core.logs import current_request_id
from asyncpress.core.uow import OneStatement
from asyncpress.events import journal
from asyncpress.events.channels import USER_PREFIX
from asyncpress.fast.rows import Prepared
from asyncpress.notifications import repository as outbox
from asyncpress.notifications.service import favorite_key
from asyncpress.users.models import User

COUNT_KEY = "favoritesCount"


def _statement(favorite: bool) -> Prepared:
    favorites, articles = table_of(Favorite), table_of(Article)
    user = bindparam("user_id", type_=Integer)
    article = bindparam("article_id", type_=Integer)
    now = bindparam("now", type_=DateTime(timezone=True))
    changed: CTE
    if favorite:
        written = pg_insert(favorites).values(user_id=user, article_id=article, created_at=now)
        changed = written.on_conflict_do_nothing().returning(favorites.c.article_id).cte("added")
    else:
        removed = delete(favorites).where(
            favorites.c.user_id == user, favorites.c.article_id == article
        )
        changed = removed.returning(favorites.c.article_id).cte("removed")
    moved = (
        update(articles)
        .where(articles.c.id == changed.c.article_id)
        .values(favorites_count=articles.c.favorites_count + (1 if favorite else -1))
        .returning(articles.c.favorites_count, articles.c.author_id)
        .cte("moved")
    )
    channels: Any = bindparam("channels", type_=String)
    if favorite:  # the author hears of it on their `user` channel, unless it is their own
        own = moved.c.author_id == user
        author_channel = literal(" " + USER_PREFIX) + cast(moved.c.author_id, String)
        channels = channels + case((own, literal("")), else_=author_channel)
    logged = journal.logged_from(
        select(
            bindparam("event_type", type_=String).label("type"),
            now.label("created_at"),
            channels.label("channels"),
            journal.filled(
                bindparam("event_data", type_=String), COUNT_KEY, moved.c.favorites_count
            ).label("data"),
            bindparam("request_id", type_=String).label("request_id"),
        ).select_from(moved)
    )
    columns: list[Any] = [moved.c.favorites_count, rows_written(logged).label("logged")]
    if favorite:
        columns.append(rows_written(outbox.enqueued_from(_notification(moved))).label("notified"))
    return Prepared(select(*columns).select_from(moved), writes=True)


def _notification(moved: CTE) -> Select[Any]:
    """The author's message, as ``notifications.service.on_favorite`` would queue it."""
    author = table_of(User).alias("author")
    user = bindparam("user_id", type_=Integer)
    payload = func.json_build_object(
        "recipient",
        author.c.username,
        "actor",
        bindparam("actor", type_=String),
        "title",
        bindparam("title", type_=String),
        "slug",
        bindparam("slug", type_=String),
    )
    return (
        select(
            bindparam("outbox_key", type_=String).label("idempotency_key"),
            literal("favorite").label("kind"),
            author.c.email.label("to_email"),
            payload.label("payload"),
        )
        .select_from(moved)
        .join(author, author.c.id == moved.c.author_id)
        .where(author.c.notify_favorite, author.c.id != user)
    )


_FAVORITE, _UNFAVORITE = _statement(True), _statement(False)


async def write(
    work: OneStatement,
    *,
    actor: User,
    article_id: int,
    slug: str,
    title: str,
    favorite: bool,
    event_type: str,
    event_data: str,
    channels: str,
) -> int | None:
    """Favorite or unfavorite in one statement: the new count, None when it was already so.

    ``event_data`` holds ``journal.slot(COUNT_KEY)`` once, where the new count goes.
    """
    if not journal.holds_slot_once(event_data, COUNT_KEY):
        raise ValueError("the event's payload must hold the count's slot once")
    params: dict[str, Any] = {
        "user_id": actor.id,
        "article_id": article_id,
        "now": utcnow(),
        "channels": channels,
        "event_type": event_type,
        "event_data": event_data,
        "request_id": current_request_id(),
    }
    if favorite:
        params |= {
            "actor": actor.username,
            "title": title,
            "slug": slug,
            "outbox_key": favorite_key(actor.id, article_id),
            "outbox_now": params["now"],
        }
    rows = await work.send(_FAVORITE if favorite else _UNFAVORITE, params)
    if not rows:
        return None
    work.wake_streams()
    if favorite and rows[0]["notified"]:
        work.kick_outbox()
    count: int = rows[0]["favorites_count"]
    return count
