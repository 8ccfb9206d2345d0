from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from asyncpress.articles import bulk
from asyncpress.articles.repository import ArticleRecord, Filters
from asyncpress.articles.schemas import (
    ArticleListItem,
    ArticleOut,
    ArticleResponse,
    ArticlesResponse,
    ImportResponse,
    NewArticleRequest,
    UpdateArticleRequest,
)
from asyncpress.articles.service import Articles
from asyncpress.core.pagination import Limit, Offset
from asyncpress.core.web import provided
from asyncpress.users.auth import AuthUserId, CurrentUser, ViewerId

router = APIRouter(prefix="/api/articles")

ArticlesDep = Annotated[Articles, provided(Articles)]


def _one(record: ArticleRecord) -> ArticleResponse:
    return ArticleResponse(article=ArticleOut.model_validate(record))


def _page(page: tuple[list[ArticleRecord], int]) -> ArticlesResponse:
    records, total = page
    return ArticlesResponse(
        articles=[ArticleListItem.model_validate(r) for r in records], articles_count=total
    )


# Declared before "/{slug}" so that "feed" is never taken for a slug.
@router.get("/feed", response_model=ArticlesResponse, tags=["Articles"])
async def feed(
    articles: ArticlesDep, user_id: AuthUserId, limit: Limit = 20, offset: Offset = 0
) -> ArticlesResponse:
    return _page(await articles.page(Filters(feed_of=user_id), user_id, limit, offset))


@router.get("/export", tags=["Articles"], response_class=StreamingResponse)
async def export_articles(
    articles: ArticlesDep,
    export_format: Annotated[Literal["ndjson", "csv"], Query(alias="format")] = "ndjson",
    tag: Annotated[str | None, Query(max_length=64)] = None,
    author: Annotated[str | None, Query(max_length=64)] = None,
    favorited: Annotated[str | None, Query(max_length=64)] = None,
) -> StreamingResponse:
    """Every matching article, with body and tags, streamed in chunks (newest first)."""
    filters = Filters(tag=tag, author=author, favorited=favorited)
    media = "text/csv; charset=utf-8" if export_format == "csv" else "application/x-ndjson"
    return StreamingResponse(
        articles.export(filters, export_format),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="articles.{export_format}"'},
    )


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
    request: Request, articles: ArticlesDep, user: CurrentUser
) -> ImportResponse:
    """Up to 10,000 articles as ``{"articles": [...]}``, or as NDJSON
    (``Content-Type: application/x-ndjson``, one article per line); all or nothing."""
    ndjson = request.headers.get("content-type", "").startswith("application/x-ndjson")
    body = await request.body()  # bounded by MAX_IMPORT_BODY_BYTES
    slugs = await articles.import_(user.id, body, ndjson=ndjson)
    return ImportResponse(imported=len(slugs), slugs=slugs)


@router.get("", response_model=ArticlesResponse, tags=["Articles"])
async def list_articles(
    articles: ArticlesDep,
    viewer_id: ViewerId,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    author: Annotated[str | None, Query(max_length=64)] = None,
    favorited: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> ArticlesResponse:
    filters = Filters(tag=tag, author=author, favorited=favorited)
    return _page(await articles.page(filters, viewer_id, limit, offset))


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ArticleResponse, tags=["Articles"]
)
async def create_article(
    body: Annotated[NewArticleRequest, Body()], articles: ArticlesDep, user_id: AuthUserId
) -> ArticleResponse:
    return _one(await articles.create(user_id, body.article))


@router.get("/{slug}", response_model=ArticleResponse, tags=["Articles"])
async def get_article(slug: str, articles: ArticlesDep, viewer_id: ViewerId) -> ArticleResponse:
    return await articles.read(slug, viewer_id)


@router.put("/{slug}", response_model=ArticleResponse, tags=["Articles"])
async def update_article(
    slug: str,
    body: Annotated[UpdateArticleRequest, Body()],
    articles: ArticlesDep,
    user: CurrentUser,
) -> ArticleResponse:
    return _one(await articles.update(user.id, slug, body.article))


@router.delete("/{slug}", status_code=status.HTTP_204_NO_CONTENT, tags=["Articles"])
async def delete_article(slug: str, articles: ArticlesDep, user: CurrentUser) -> Response:
    await articles.delete(user.id, slug)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{slug}/favorite", response_model=ArticleResponse, tags=["Favorites"])
async def favorite(slug: str, articles: ArticlesDep, user_id: AuthUserId) -> ArticleResponse:
    # The caller's id only: the service reads the caller with the article.
    return _one(await articles.set_favorite(user_id, slug, favorite=True))


@router.delete("/{slug}/favorite", response_model=ArticleResponse, tags=["Favorites"])
async def unfavorite(slug: str, articles: ArticlesDep, user_id: AuthUserId) -> ArticleResponse:
    return _one(await articles.set_favorite(user_id, slug, favorite=False))
