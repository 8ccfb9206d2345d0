from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

from asyncpress.core.schemas import NON_BLANK, Input, Schema, Timestamp
from asyncpress.profiles.schemas import ProfileOut

CommentBody = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000, pattern=NON_BLANK),
]


class NewComment(Input):
    body: CommentBody


class NewCommentRequest(Input):
    comment: NewComment


class CommentOut(Schema):
    id: int
    created_at: Timestamp
    updated_at: Timestamp
    body: str
    author: ProfileOut


class CommentResponse(Schema):
    comment: CommentOut


class CommentsResponse(Schema):
    comments: list[CommentOut]
