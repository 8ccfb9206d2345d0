"""Article use cases. Each write commits exactly once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.articles import counts, repository
from asyncpress.articles.models import Article
from asyncpress.articles.repository import ArticleRecord, Filters
from asyncpress.articles.schemas import ArticleUpdate, NewArticle
from asyncpress.articles.slugs import first_free, slugify
from asyncpress.cache import Cached
from asyncpress.db import begin_write, release, utcnow
from asyncpress.errors import Forbidden, NotFound
from asyncpress.events import publish as events
from asyncpress.notifications import service as notifications
from asyncpress.profiles.schemas import ProfileOut
from asyncpress.users.models import User

# A concurrent writer may take the slug we picked between our read and our
# insert; the unique constraint catches it and we pick again, with a random
# suffix (see slugs.first_free), which a second race is all but sure to miss.
SLUG_ATTEMPTS = 5

T = TypeVar("T")


def _slug_conflict(exc: IntegrityError) -> bool:
    return "slug" in str(exc.orig).lower()


async def list_articles(
    session: AsyncSession,
    cache: Cached,
    count_ttl_s: float,
    filters: Filters,
    viewer_id: int | None,
    limit: int,
    offset: int,
) -> tuple[list[ArticleRecord], int]:
    """A page and the count of every match, the count from the cache when kept."""
    key, kept = await counts.lookup(cache, filters, count_ttl_s)
    records, total = await repository.page(session, filters, viewer_id, limit, offset, kept)
    if kept is None:
        await release(session)  # no connection held across a cache write
        await counts.keep(cache, key, total, count_ttl_s)
    return records, total


async def get(session: AsyncSession, slug: str, viewer_id: int | None) -> ArticleRecord:
    found = await repository.record_by_slug(session, slug, viewer_id)
    if found is None:
        raise NotFound("article")
    return found


async def _write_retrying_slug(session: AsyncSession, write: Callable[[bool], Awaitable[T]]) -> T:
    """Run ``write`` in a write transaction and commit, again if a slug was taken.

    ``write`` is told whether its last pick was lost to a concurrent writer.
    """
    for attempt in range(1, SLUG_ATTEMPTS + 1):
        await begin_write(session)
        try:
            written = await write(attempt > 1)
            await session.commit()
        except IntegrityError as exc:
            await session.rollback()
            if not _slug_conflict(exc) or attempt == SLUG_ATTEMPTS:
                raise
        else:
            return written
    raise AssertionError("unreachable")


async def create(session: AsyncSession, author: User, data: NewArticle) -> ArticleRecord:
    base = slugify(data.title)

    async def write(contended: bool) -> ArticleRecord:
        now = utcnow()
        taken = await repository.slugs_like(session, base)
        article = Article(
            slug=first_free(base, taken, contended=contended),
            title=data.title,
            description=data.description,
            body=data.body,
            author_id=author.id,
            favorites_count=0,
            created_at=now,
            updated_at=now,
        )
        session.add(article)
        await session.flush()
        await repository.set_tags(session, article.id, article.created_at, data.tag_list)
        # Everything the response shows is known here; no need to read it back.
        created = ArticleRecord(
            id=article.id,
            slug=article.slug,
            title=article.title,
            description=article.description,
            body=article.body,
            tag_list=sorted(data.tag_list),
            created_at=article.created_at,
            updated_at=article.updated_at,
            favorited=False,
            favorites_count=0,
            author=ProfileOut.of(author),
        )
        await events.article_created(session, created, author.id)
        return created

    return await _write_retrying_slug(session, write)


async def with_author(session: AsyncSession, slug: str) -> tuple[Article, User]:
    """The article and its author's row, or NotFound."""
    found = await repository.with_author(session, slug)
    if found is None:
        raise NotFound("article")
    return found


async def _owned(session: AsyncSession, slug: str, user_id: int) -> Article:
    article = await repository.by_slug(session, slug)
    if article is None:
        raise NotFound("article")
    if article.author_id != user_id:
        raise Forbidden("article", "belongs to another author")
    return article


async def update(
    session: AsyncSession, user_id: int, slug: str, data: ArticleUpdate
) -> tuple[ArticleRecord, str]:
    """The updated article, and the slug it had before (``slug`` may be a retired one)."""

    async def write(contended: bool) -> tuple[ArticleRecord, str]:
        article = await _owned(session, slug, user_id)
        previous = article.slug
        if data.title is not None and data.title != article.title:
            base = slugify(data.title)
            taken = await repository.slugs_like(session, base, exclude_id=article.id)
            article.title = data.title
            article.slug = first_free(base, taken, contended=contended)
        if data.description is not None:
            article.description = data.description
        if data.body is not None:
            article.body = data.body
        article.updated_at = utcnow()
        await session.flush()
        if article.slug != previous:  # links to the old slug keep working
            await repository.retire_slug(session, article.id, previous)
        if data.tag_list is not None:
            await repository.set_tags(session, article.id, article.created_at, data.tag_list)
        updated = await get(session, article.slug, user_id)
        await events.article_updated(session, updated, old_slug=previous)
        return updated, previous

    return await _write_retrying_slug(session, write)


async def delete(session: AsyncSession, user_id: int, slug: str) -> str:
    """Delete the article; its slug (the current one, if ``slug`` was retired)."""
    await begin_write(session)
    article = await _owned(session, slug, user_id)
    last_state = await get(session, article.slug, None)
    # Comments, favorites and tag links go with it (ON DELETE CASCADE).
    await repository.delete_article(session, article.id)
    await events.article_deleted(session, last_state)
    await session.commit()
    return article.slug


async def set_favorite(
    session: AsyncSession, user: User, slug: str, *, favorite: bool
) -> ArticleRecord:
    """Favorite or unfavorite; doing it twice is the same as doing it once."""
    await begin_write(session)
    article, owner = await with_author(session, slug)
    if favorite:
        changed = await repository.add_favorite(session, user.id, article.id)
        await notifications.on_favorite(
            session,
            actor=user.username,
            actor_id=user.id,
            owner=owner,
            article_id=article.id,
            title=article.title,
            slug=article.slug,
        )
    else:
        changed = await repository.remove_favorite(session, user.id, article.id)
    record = await repository.record_by_slug(session, slug, user.id)
    assert record is not None
    if changed:  # doing it twice is one event, as it is one notification
        await events.favorite_changed(
            session, record, actor=user, owner_id=owner.id, favorite=favorite
        )
    await session.commit()
    return record
