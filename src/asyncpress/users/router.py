from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, status

from asyncpress.articles import counts
from asyncpress.deps import CurrentUser, ResourcesDep, SessionDep
from asyncpress.errors import Unauthorized
from asyncpress.users import service
from asyncpress.users.models import User
from asyncpress.users.schemas import (
    LoginRequest,
    NewUserRequest,
    UpdateUserRequest,
    UserOut,
    UserResponse,
)

router = APIRouter(tags=["User and Authentication"])


def user_response(user: User, token: str) -> UserResponse:
    return UserResponse(
        user=UserOut(
            email=user.email, token=token, username=user.username, bio=user.bio, image=user.image
        )
    )


def _presented_token(request: Request) -> str:
    # Only reached after authentication succeeded, so the header is well-formed.
    return request.headers["authorization"].strip().partition(" ")[2].strip()


def _address(request: Request) -> str:
    # The peer, or the client a trusted proxy names (--forwarded-allow-ips).
    return request.client.host if request.client else "unknown"


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserResponse)
async def register(
    body: Annotated[NewUserRequest, Body()],
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> UserResponse:
    await resources.limits.registration(_address(request))
    user = await service.register(session, resources.passwords, body.user)
    return user_response(user, resources.tokens.issue(user.id))


@router.post("/users/login", response_model=UserResponse)
async def login(
    body: Annotated[LoginRequest, Body()],
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> UserResponse:
    email, address = body.user.email.lower(), _address(request)
    await resources.limits.before_login(email, address)
    try:
        user = await service.login(session, resources.passwords, body.user)
    except Unauthorized:
        await resources.limits.login_failed(email, address)
        raise
    return user_response(user, resources.tokens.issue(user.id))


@router.get("/user", response_model=UserResponse)
async def current(user: CurrentUser, request: Request) -> UserResponse:
    return user_response(user, _presented_token(request))


@router.put("/user", response_model=UserResponse)
async def update(
    body: Annotated[UpdateUserRequest, Body()],
    user: CurrentUser,
    session: SessionDep,
    resources: ResourcesDep,
    request: Request,
) -> UserResponse:
    updated = await service.update(session, resources.passwords, user.id, body.user)
    if updated.username != user.username:  # counts by ?author= and ?favorited=
        await counts.changed(resources.cache)
    return user_response(updated, _presented_token(request))
