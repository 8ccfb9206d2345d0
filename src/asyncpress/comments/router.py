from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, status

from asyncpress.comments.schemas import CommentResponse, CommentsResponse, NewCommentRequest
from asyncpress.comments.service import Comments
from asyncpress.core.pagination import Offset
from asyncpress.core.schemas import MAX_INT32
from asyncpress.core.web import provided
from asyncpress.users.auth import AuthUserId, CurrentUser, ViewerId

router = APIRouter(prefix="/api/articles/{slug}/comments", tags=["Comments"])

MAX_COMMENTS_PAGE = 500

CommentsDep = Annotated[Comments, provided(Comments)]


@router.get("", response_model=CommentsResponse)
async def list_comments(
    slug: str,
    comments: CommentsDep,
    viewer_id: ViewerId,
    limit: Annotated[int, Query(ge=1, le=MAX_COMMENTS_PAGE)] = MAX_COMMENTS_PAGE,
    offset: Offset = 0,
) -> CommentsResponse:
    return CommentsResponse(
        comments=await comments.list_for_article(slug, viewer_id, limit, offset)
    )


@router.post("", response_model=CommentResponse)
async def add_comment(
    slug: str,
    body: Annotated[NewCommentRequest, Body()],
    comments: CommentsDep,
    user_id: AuthUserId,
) -> CommentResponse:
    # The caller's id only: the service reads the caller with the article.
    return CommentResponse(comment=await comments.add(user_id, slug, body.comment))


@router.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_comment(
    slug: str,
    comment_id: Annotated[int, Path(alias="id", ge=1, le=MAX_INT32)],
    comments: CommentsDep,
    user: CurrentUser,
) -> Response:
    await comments.delete(user.id, slug, comment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
