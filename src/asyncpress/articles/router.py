from __future__ import annotations

from typing import Annotated, Literal

from anyio.to_thread import run_sync
from fastapi import APIRouter, BackgroundTasks, Body, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.articles import bulk, export, service
from asyncpress.articles.counts import GENERATION_KEY as COUNTS_KEY
from asyncpress.articles.repository import ArticleRecord, Filters
from asyncpress.articles.schemas import (
    ArticleListItem,
    ArticleOut,
    ArticleResponse,
    ArticlesResponse,
    NewArticleRequest,
    UpdateArticleRequest,
)
from asyncpress.deps import AuthUserId, CurrentUser, ResourcesDep, SessionDep, ViewerId
from asyncpress.pagination import Limit, Offset
from asyncpress.resources import Resources
from asyncpress.schemas import Schema
from asyncpress.stats.router import STATS_KEY
from asyncpress.tags.router import TAGS_KEY

router = APIRouter(prefix="/articles")


def _one(record: ArticleRecord) -> ArticleResponse:
    return ArticleResponse(article=ArticleOut.model_validate(record))


def _page(records: list[ArticleRecord], total: int) -> ArticlesResponse:
    return ArticlesResponse(
        articles=[ArticleListItem.model_validate(r) for r in records], articles_count=total
    )


# Declared before "/{slug}" so that "feed" is never taken for a slug.
@router.get("/feed", response_model=ArticlesResponse, tags=["Articles"])
async def feed(
    session: SessionDep,
    user_id: AuthUserId,
    resources: ResourcesDep,
    limit: Limit = 20,
    offset: Offset = 0,
) -> ArticlesResponse:
    return await _list(session, resources, Filters(feed_of=user_id), user_id, limit, offset)


async def _list(
    session: AsyncSession,
    resources: Resources,
    filters: Filters,
    viewer_id: int | None,
    limit: int,
    offset: int,
) -> ArticlesResponse:
    ttl = resources.settings.articles_count_cache_s
    records, total = await service.list_articles(
        session, resources.cache, ttl, filters, viewer_id, limit, offset
    )
    return _page(records, total)


@router.get("/export", tags=["Articles"], response_class=StreamingResponse)
async def export_articles(
    resources: ResourcesDep,
    export_format: Annotated[Literal["ndjson", "csv"], Query(alias="format")] = "ndjson",
    tag: Annotated[str | None, Query(max_length=64)] = None,
    author: Annotated[str | None, Query(max_length=64)] = None,
    favorited: Annotated[str | None, Query(max_length=64)] = None,
) -> StreamingResponse:
    """Every matching article, with body and tags, streamed in chunks (newest first)."""
    filters = Filters(tag=tag, author=author, favorited=favorited)
    if export_format == "csv":
        body, media = export.csv_rows(resources.sessionmaker, filters), "text/csv; charset=utf-8"
    else:
        body, media = export.ndjson(resources.sessionmaker, filters), "application/x-ndjson"
    return StreamingResponse(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="articles.{export_format}"'},
    )


class ImportResponse(Schema):
    imported: int
    slugs: list[str]


@router.post(
    "/import",
    status_code=status.HTTP_201_CREATED,
    response_model=ImportResponse,
    tags=["Articles"],
    openapi_extra={
        # NDJSON (one article per line, Content-Type: application/x-ndjson) is
        # accepted too; it is left out here because a schema cannot say
        # "lines of JSON objects", and a fuzzer would take any text for valid.
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["articles"],
                        "properties": {
                            "articles": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": bulk.MAX_IMPORT,
                                "items": {"$ref": "#/components/schemas/NewArticle"},
                            }
                        },
                    }
                },
            },
            "required": True,
        }
    },
)
async def import_articles(
    request: Request, session: SessionDep, user: CurrentUser, resources: ResourcesDep
) -> ImportResponse:
    """Up to 10,000 articles as ``{"articles": [...]}``, or as NDJSON
    (``Content-Type: application/x-ndjson``, one article per line); all or nothing."""
    ndjson = request.headers.get("content-type", "").startswith("application/x-ndjson")
    body = await request.body()  # bounded by MAX_IMPORT_BODY_BYTES
    items = await run_sync(bulk.parse, body, ndjson)  # 422 (InvalidFields) names each item
    slugs = await bulk.import_articles(session, user.id, items)
    await resources.cache.invalidate(STATS_KEY, TAGS_KEY, COUNTS_KEY)
    return ImportResponse(imported=len(slugs), slugs=slugs)


@router.get("", response_model=ArticlesResponse, tags=["Articles"])
async def list_articles(
    session: SessionDep,
    viewer_id: ViewerId,
    resources: ResourcesDep,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    author: Annotated[str | None, Query(max_length=64)] = None,
    favorited: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> ArticlesResponse:
    filters = Filters(tag=tag, author=author, favorited=favorited)
    return await _list(session, resources, filters, viewer_id, limit, offset)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ArticleResponse, tags=["Articles"]
)
async def create_article(
    body: Annotated[NewArticleRequest, Body()],
    session: SessionDep,
    user: CurrentUser,
    resources: ResourcesDep,
    background: BackgroundTasks,
) -> ArticleResponse:
    record = await service.create(session, user, body.article)
    await resources.cache.invalidate(TAGS_KEY, COUNTS_KEY)
    background.add_task(resources.previews.warm, record.body or "")
    return _one(record)


def article_key(slug: str) -> str:
    return f"article:{slug}"


@router.get("/{slug}", response_model=ArticleResponse, tags=["Articles"])
async def get_article(
    slug: str, session: SessionDep, viewer_id: ViewerId, resources: ResourcesDep
) -> ArticleResponse:
    if viewer_id is not None:  # favorited / following are the viewer's own
        return _one(await service.get(session, slug, viewer_id))

    async def anonymous() -> dict[str, object]:
        record = await service.get(session, slug, None)
        if record.slug != slug:
            # A retired slug: cached, it would outlive the writes that retire
            # the article's current key.
            raise _Renamed(record)
        return _one(record).model_dump(mode="json", by_alias=True)

    try:
        cached = await resources.cache.get_or_compute(
            article_key(slug), resources.settings.article_cache_s, anonymous
        )
    except _Renamed as renamed:
        return _one(renamed.record)
    return ArticleResponse.model_validate(cached)


class _Renamed(Exception):
    def __init__(self, record: ArticleRecord) -> None:
        super().__init__(record.slug)
        self.record = record


@router.put("/{slug}", response_model=ArticleResponse, tags=["Articles"])
async def update_article(
    slug: str,
    body: Annotated[UpdateArticleRequest, Body()],
    session: SessionDep,
    user: CurrentUser,
    resources: ResourcesDep,
    background: BackgroundTasks,
) -> ArticleResponse:
    record, previous = await service.update(session, user.id, slug, body.article)
    await resources.cache.invalidate(
        article_key(previous), article_key(record.slug), TAGS_KEY, COUNTS_KEY
    )
    if body.article.body is not None:
        background.add_task(resources.previews.warm, record.body or "")
    return _one(record)


@router.delete("/{slug}", status_code=status.HTTP_204_NO_CONTENT, tags=["Articles"])
async def delete_article(
    slug: str, session: SessionDep, user: CurrentUser, resources: ResourcesDep
) -> Response:
    deleted = await service.delete(session, user.id, slug)
    await resources.cache.invalidate(article_key(deleted), TAGS_KEY, COUNTS_KEY)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{slug}/favorite", response_model=ArticleResponse, tags=["Favorites"])
async def favorite(
    slug: str,
    session: SessionDep,
    user: CurrentUser,
    resources: ResourcesDep,
    background: BackgroundTasks,
) -> ArticleResponse:
    record = await service.set_favorite(session, user, slug, favorite=True)
    await resources.cache.invalidate(article_key(record.slug), COUNTS_KEY)
    background.add_task(resources.outbox.kick)
    return _one(record)


@router.delete("/{slug}/favorite", response_model=ArticleResponse, tags=["Favorites"])
async def unfavorite(
    slug: str, session: SessionDep, user: CurrentUser, resources: ResourcesDep
) -> ArticleResponse:
    record = await service.set_favorite(session, user, slug, favorite=False)
    await resources.cache.invalidate(article_key(record.slug), COUNTS_KEY)
    return _one(record)
