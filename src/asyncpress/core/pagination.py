"""Query parameters shared by list endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from asyncpress.core.schemas import MAX_INT32

MAX_LIMIT = 100

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (1 to 100).")]
Offset = Annotated[int, Query(ge=0, le=MAX_INT32, description="Items to skip.")]
