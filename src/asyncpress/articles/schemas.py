from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from asyncpress.core.schemas import NON_BLANK, Input, Schema, Timestamp
from asyncpress.profiles.schemas import ProfileOut

MAX_TAGS = 20

Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NON_BLANK)
]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000, pattern=NON_BLANK)
]
Body = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100_000, pattern=NON_BLANK),
]
TagName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=NON_BLANK)
]


def _dedupe(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


TagList = Annotated[list[TagName], Field(max_length=MAX_TAGS), AfterValidator(_dedupe)]


class NewArticle(Input):
    title: Title
    description: Description
    body: Body
    tag_list: TagList = Field(default_factory=list)


class ArticleUpdate(Input):
    title: Title | None = None
    description: Description | None = None
    body: Body | None = None
    # Not in the contract's UpdateArticle, but front ends send it when editing.
    tag_list: TagList | None = None


class NewArticleRequest(Input):
    article: NewArticle


class UpdateArticleRequest(Input):
    article: ArticleUpdate


class ArticleListItem(Schema):
    slug: str
    title: str
    description: str
    tag_list: list[str]
    created_at: Timestamp
    updated_at: Timestamp
    favorited: bool
    favorites_count: int
    author: ProfileOut


class ArticleOut(ArticleListItem):
    body: str


class ArticleResponse(Schema):
    article: ArticleOut


class ArticlesResponse(Schema):
    articles: list[ArticleListItem]
    articles_count: int


class ImportResponse(Schema):
    imported: int
    slugs: list[str]
