"""Article use cases. Each write is one unit of work that commits once."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, Literal

from anyio.to_thread import run_sync

from asyncpress.articles import (
    bulk,
    counts,
    creating,
    events,
    export,
    favorites,
    repository,
)
from asyncpress.articles.models import Article
from asyncpress.articles.repository import ArticleRecord, Filters
from asyncpress.articles.schemas import ArticleOut, ArticleResponse, ArticleUpdate, NewArticle
from asyncpress.articles.slugs import (
    first_free,
    retrying_slug,
    slugify,
    write_again_if_victim,
    write_retrying_slug,
)
from asyncpress.core import cache_keys
from asyncpress.core.cache import Cache
from asyncpress.core.config import Settings
from asyncpress.core.db.base import utcnow
from asyncpress.core.db.references import gone_as
from asyncpress.core.errors import Forbidden, NotFound
from asyncpress.core.uow import Database, UnitOfWork
from asyncpress.events.journal import channels_text, compact_json
from asyncpress.notifications import service as notifications
from asyncpress.profiles.schemas import ProfileOut
from asyncpress.tags import uses as tag_uses
from asyncpress.users import repository as users_repository
from asyncpress.users.auth import account_gone
from asyncpress.users.models import User


class _Renamed(Exception):
    """An anonymous read through a retired slug: answered, never cached."""

    def __init__(self, record: ArticleRecord) -> None:
        super().__init__(record.slug)
        self.record = record


async def _owned(uow: UnitOfWork, slug: str, user_id: int) -> Article:
    article = await repository.by_slug(uow.session, slug, for_update=True)
    if article is None:
        raise NotFound("article")
    if article.author_id != user_id:
        raise Forbidden("article", "belongs to another author")
    return article


def _new_record(slug: str, data: NewArticle, author: User) -> ArticleRecord:
    """The new article as the response shows it: all known before it is written."""
    now = utcnow()
    return ArticleRecord(
        id=0,
        slug=slug,
        title=data.title,
        description=data.description,
        body=data.body,
        tag_list=sorted(data.tag_list),
        created_at=now,
        updated_at=now,
        favorited=False,
        favorites_count=0,
        author=ProfileOut.of(author),
    )


class Articles:
    def __init__(self, db: Database, cache: Cache, settings: Settings) -> None:
        self.db = db
        self.cache = cache
        self.count_ttl_s = settings.articles_count_cache_s
        self.article_ttl_s = settings.article_cache_s

    # -- reads -------------------------------------------------------------

    async def page(
        self, filters: Filters, viewer_id: int | None, limit: int, offset: int
    ) -> tuple[list[ArticleRecord], int]:
        """A page and the count of every match, the count from the cache when kept."""
        key, kept = await counts.lookup(self.cache, filters, self.count_ttl_s)
        async with self.db.session() as session:
            records, total = await repository.page(session, filters, viewer_id, limit, offset, kept)
        if kept is None:  # kept after the session closed: no connection waits on the cache
            await counts.keep(self.cache, key, total, self.count_ttl_s)
        return records, total

    async def get(self, slug: str, viewer_id: int | None) -> ArticleRecord:
        async with self.db.reading() as reader:
            found = await repository.record_by_slug(reader, slug, viewer_id)
        if found is None:
            raise NotFound("article")
        return found

    async def read(self, slug: str, viewer_id: int | None) -> ArticleResponse:
        """The article as the caller sees it; an anonymous read of a current slug is cached."""
        if viewer_id is not None:  # favorited / following are the viewer's own
            return ArticleResponse(
                article=ArticleOut.model_validate(await self.get(slug, viewer_id))
            )

        async def anonymous() -> dict[str, Any]:
            record = await self.get(slug, None)
            if record.slug != slug:
                # A retired slug: cached, it would outlive the writes that
                # retire the article's current key.
                raise _Renamed(record)
            response = ArticleResponse(article=ArticleOut.model_validate(record))
            dumped: dict[str, Any] = response.model_dump(mode="json", by_alias=True)
            return dumped

        try:
            cached = await self.cache.get_or_compute(
                cache_keys.article(slug), self.article_ttl_s, anonymous
            )
        except _Renamed as renamed:
            return ArticleResponse(article=ArticleOut.model_validate(renamed.record))
        return ArticleResponse.model_validate(cached)

    def export(self, filters: Filters, kind: Literal["ndjson", "csv"]) -> AsyncIterator[bytes]:
        if kind == "csv":
            return export.csv_rows(self.db.sessionmaker, filters)
        return export.ndjson(self.db.sessionmaker, filters)

    # -- writes ------------------------------------------------------------

    async def create(self, author_id: int, data: NewArticle) -> ArticleRecord:
        base = slugify(data.title)
        if self.db.engine.dialect.name == "postgresql":
            return await retrying_slug(
                lambda contended: self._create_at_once(author_id, data, base, contended)
            )

        async def write(uow: UnitOfWork, contended: bool) -> ArticleRecord:
            author = await users_repository.read(uow.session, author_id)
            if author is None:
                raise account_gone()
            taken = await repository.slugs_like(uow.session, base)
            created = _new_record(first_free(base, taken, contended=contended), data, author)
            article = Article(
                slug=created.slug,
                title=created.title,
                description=created.description,
                body=created.body,
                author_id=author.id,
                favorites_count=0,
                created_at=created.created_at,
                updated_at=created.updated_at,
            )
            uow.session.add(article)
            await uow.session.flush()
            created.id = article.id
            uses = await repository.set_tags(
                uow.session, article.id, article.created_at, data.tag_list, new_article=True
            )
            uow.retire(cache_keys.TAGS, cache_keys.ARTICLE_COUNTS)
            uow.preview_links_in(data.body)
            await tag_uses.add(uow.session, uses)  # hot rows: locked as late as can be
            await events.created(uow, created, author.id)
            await uow.commit()
            return created

        return await write_retrying_slug(self.db, write)

    async def _create_at_once(
        self, author_id: int, data: NewArticle, base: str, contended: bool
    ) -> ArticleRecord:
        """``create`` on PostgreSQL: one read (the slugs taken and the author), then
        one statement (articles.creating)."""
        async with self.db.write_at_once() as work:
            taken, author = await repository.slugs_and_actor(work.connection, base, author_id)
            if author is None:
                raise account_gone()
            created = _new_record(first_free(base, taken, contended=contended), data, author)
            with gone_as(account_gone()):  # the account was removed since it was read
                created.id = await creating.create(work, created, author_id=author.id)
            work.retire(cache_keys.TAGS, cache_keys.ARTICLE_COUNTS)
            work.preview_links_in(data.body)
            await work.commit()
        return created

    async def update(self, user_id: int, slug: str, data: ArticleUpdate) -> ArticleRecord:
        """Edit the article (``slug`` may be a retired one); links to its old slug keep working."""

        async def write(uow: UnitOfWork, contended: bool) -> ArticleRecord:
            session = uow.session
            article = await _owned(uow, slug, user_id)
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
                uow.preview_links_in(data.body)
            article.updated_at = utcnow()
            await session.flush()
            if article.slug != previous:
                await repository.retire_slug(session, article.id, previous)
            uses: Counter[int] = Counter()
            if data.tag_list is not None:
                uses = await repository.set_tags(
                    session, article.id, article.created_at, data.tag_list
                )
            updated = await repository.record_by_slug(session, article.slug, user_id)
            assert updated is not None
            await tag_uses.add(session, uses)  # hot rows: locked as late as can be
            uow.retire(
                cache_keys.article(previous),
                cache_keys.article(updated.slug),
                cache_keys.TAGS,
                cache_keys.ARTICLE_COUNTS,
            )
            await events.updated(uow, updated, old_slug=previous)
            await uow.commit()
            return updated

        return await write_retrying_slug(self.db, write)

    async def delete(self, user_id: int, slug: str) -> None:
        await write_again_if_victim(self.db, lambda uow: self._delete(uow, user_id, slug))

    async def _delete(self, uow: UnitOfWork, user_id: int, slug: str) -> None:
        article = await _owned(uow, slug, user_id)
        last_state = await repository.record_by_slug(uow.session, article.slug, None)
        assert last_state is not None
        # Comments and favorites go with it (ON DELETE CASCADE); tag links
        # are removed first, so that their tags' use counts go down.
        await repository.delete_article(uow.session, article.id)
        uow.retire(cache_keys.article(article.slug), cache_keys.TAGS, cache_keys.ARTICLE_COUNTS)
        await events.deleted(uow, last_state)
        await uow.commit()

    async def set_favorite(self, user_id: int, slug: str, *, favorite: bool) -> ArticleRecord:
        """Favorite or unfavorite; doing it twice is the same as doing it once.

        The response is the article as read before the write, with the count
        the write returned: no second read.
        """
        if self.db.engine.dialect.name == "postgresql":
            return await self._set_favorite_at_once(user_id, slug, favorite=favorite)
        async with self.db.write() as uow:
            user = await users_repository.read(uow.session, user_id)
            if user is None:
                raise account_gone()
            record = await repository.record_by_slug(uow.session, slug, user.id)
            if record is None:
                raise NotFound("article")
            with gone_as(NotFound("article")):  # deleted since it was read
                moved = await repository.move_favorite(
                    uow.session, user.id, record.id, favorite=favorite
                )
            record.favorited = favorite
            uow.retire(cache_keys.article(record.slug), cache_keys.ARTICLE_COUNTS)
            if moved is not None:  # doing it twice is one event, as it is one notification
                record.favorites_count = moved.favorites_count
                if favorite:
                    await notifications.on_favorite(
                        uow,
                        actor=user.username,
                        actor_id=user.id,
                        owner=moved.owner,
                        article_id=record.id,
                        title=record.title,
                        slug=record.slug,
                    )
                await events.favorite_changed(
                    uow, record, actor=user, owner_id=moved.owner.id, favorite=favorite
                )
            await uow.commit()
        return record

    async def _set_favorite_at_once(
        self, user_id: int, slug: str, *, favorite: bool
    ) -> ArticleRecord:
        """``set_favorite`` on PostgreSQL: one read (the article and the caller),
        then one statement (articles.favorites)."""
        async with self.db.write_at_once() as work:
            found = await repository.record_and_actor(work.connection, slug, user_id)
            if found is None:
                raise NotFound("article")
            record, user = found
            if user is None:
                raise account_gone()
            counted = dataclasses.replace(record, favorites_count=-1)  # the count's slot
            with gone_as(NotFound("article")):  # deleted since it was read
                count = await favorites.write(
                    work,
                    actor=user,
                    article_id=record.id,
                    slug=record.slug,
                    title=record.title,
                    favorite=favorite,
                    event_type=events.favorite_type(favorite),
                    event_data=compact_json(events.favorite_payload(counted, user)),
                    channels=channels_text(events.favorite_channels(record)),
                )
            record.favorited = favorite
            work.retire(cache_keys.article(record.slug), cache_keys.ARTICLE_COUNTS)
            if count is not None:
                record.favorites_count = count
            await work.commit()
        return record

    async def import_(self, author_id: int, body: bytes, *, ndjson: bool) -> list[str]:
        """All of ``body``'s articles or none; 422 (InvalidFields) names each bad item."""
        items = await run_sync(bulk.parse, body, ndjson)  # CPU work, off the event loop
        return await bulk.import_articles(self.db, author_id, items)
