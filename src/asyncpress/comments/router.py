from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Body, Path, Query, Response, status

from asyncpress.comments import service
from asyncpress.comments.schemas import CommentResponse, CommentsResponse, NewCommentRequest
from asyncpress.deps import CurrentUser, ResourcesDep, SessionDep, ViewerId
from asyncpress.pagination import Offset
from asyncpress.schemas import MAX_INT32

router = APIRouter(prefix="/articles/{slug}/comments", tags=["Comments"])

MAX_COMMENTS_PAGE = 500


@router.get("", response_model=CommentsResponse)
async def list_comments(
    slug: str,
    session: SessionDep,
    viewer_id: ViewerId,
    limit: Annotated[int, Query(ge=1, le=MAX_COMMENTS_PAGE)] = MAX_COMMENTS_PAGE,
    offset: Offset = 0,
) -> CommentsResponse:
    comments = await service.list_for_article(session, slug, viewer_id, limit, offset)
    return CommentsResponse(comments=comments)


@router.post("", response_model=CommentResponse)
async def add_comment(
    slug: str,
    body: Annotated[NewCommentRequest, Body()],
    session: SessionDep,
    user: CurrentUser,
    resources: ResourcesDep,
    background: BackgroundTasks,
) -> CommentResponse:
    comment = await service.add(session, user, slug, body.comment)
    background.add_task(resources.outbox.kick)
    return CommentResponse(comment=comment)


@router.delete("/{id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_comment(
    slug: str,
    comment_id: Annotated[int, Path(alias="id", ge=1, le=MAX_INT32)],
    session: SessionDep,
    user: CurrentUser,
) -> Response:
    await service.delete(session, user.id, slug, comment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
