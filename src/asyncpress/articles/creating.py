"""Creating an article on PostgreSQL: one statement that commits as it ends.

The article, its tag links, its tags' use counts (and the tags it is the
first to carry) and its live event are CTEs of one statement sent outside a
transaction block (``core.uow.OneStatement``). In a unit of work that was
eight round trips (BEGIN, the article, the known tags, the new ones and
their ids, the links, the counts, the event, COMMIT), each through the ORM
and each waiting its turn on a busy event loop, with the popular tags' rows
locked from the count's UPDATE to the COMMIT. The event's payload holds
nothing the statement decides (an article's id is not in it), so it is
serialised before. SQLite and MySQL/MariaDB create in a unit of work
(``service.Articles.create``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, bindparam, insert, literal, select

from asyncpress.articles import events
from asyncpress.articles.models import Article
from asyncpress.articles.repository import ArticleRecord
from asyncpress.core.db.bulk import rows_written, table_of
from asyncpress.core.logs import current_request_id
from asyncpress.core.uow import OneStatement
from asyncpress.events import journal
from asyncpress.fast.rows import Prepared
from asyncpress.tags import uses as tag_uses


def _statement() -> Prepared:
    articles = table_of(Article)
    now = bindparam("now", type_=articles.c.created_at.type)
    added = (
        insert(articles)
        .values(
            slug=bindparam("slug", type_=String),
            title=bindparam("title", type_=String),
            description=bindparam("description", type_=String),
            body=bindparam("body", type_=String),
            author_id=bindparam("author_id", type_=articles.c.author_id.type),
            favorites_count=0,
            created_at=now,
            updated_at=now,
        )
        .returning(articles.c.id)
        .cte("added")
    )
    linked = tag_uses.linked_from(added, now)
    logged = journal.logged_from(
        select(
            literal(events.CREATED).label("type"),
            now.label("created_at"),
            bindparam("channels", type_=String).label("channels"),
            bindparam("event_data", type_=String).label("data"),
            bindparam("request_id", type_=String).label("request_id"),
        ).select_from(added)
    )
    return Prepared(
        select(added.c.id, rows_written(linked).label("linked"), rows_written(logged)),
        writes=True,
    )


_CREATE = _statement()


async def create(work: OneStatement, article: ArticleRecord, *, author_id: int) -> int:
    """Write ``article`` (its id still 0; its tags distinct) in one statement; returns its id."""
    params: dict[str, Any] = {
        "slug": article.slug,
        "title": article.title,
        "description": article.description,
        "body": article.body,
        "author_id": author_id,
        "now": article.created_at,
        tag_uses.TAG_NAMES: article.tag_list,
        "channels": journal.channels_text(events.created_channels(article, author_id)),
        "event_data": journal.compact_json(events.created_payload(article)),
        "request_id": current_request_id(),
    }
    rows = await work.send(_CREATE, params)
    work.wake_streams()
    article_id: int = rows[0]["id"]
    return article_id
