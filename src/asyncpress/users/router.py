from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, status

from asyncpress.core.errors import Unauthorized
from asyncpress.core.ratelimit import RateLimits
from asyncpress.core.web import provided
from asyncpress.users.auth import CurrentUser, presented_token
from asyncpress.users.models import User
from asyncpress.users.schemas import (
    LoginRequest,
    NewUserRequest,
    UpdateUserRequest,
    UserOut,
    UserResponse,
)
from asyncpress.users.service import Accounts

router = APIRouter(prefix="/api", tags=["User and Authentication"])

AccountsDep = Annotated[Accounts, provided(Accounts)]
LimitsDep = Annotated[RateLimits, provided(RateLimits)]


def user_response(user: User, token: str) -> UserResponse:
    return UserResponse(
        user=UserOut(
            email=user.email, token=token, username=user.username, bio=user.bio, image=user.image
        )
    )


def _address(request: Request) -> str:
    # The peer, or the client a trusted proxy names (--forwarded-allow-ips).
    return request.client.host if request.client else "unknown"


@router.post("/users", status_code=status.HTTP_201_CREATED, response_model=UserResponse)
async def register(
    body: Annotated[NewUserRequest, Body()],
    accounts: AccountsDep,
    limits: LimitsDep,
    request: Request,
) -> UserResponse:
    await limits.registration(_address(request))
    user = await accounts.register(body.user)
    return user_response(user, accounts.token_for(user))


@router.post("/users/login", response_model=UserResponse)
async def login(
    body: Annotated[LoginRequest, Body()],
    accounts: AccountsDep,
    limits: LimitsDep,
    request: Request,
) -> UserResponse:
    email, address = body.user.email.lower(), _address(request)
    await limits.before_login(email, address)
    try:
        user = await accounts.login(body.user)
    except Unauthorized:
        await limits.login_failed(email, address)
        raise
    return user_response(user, accounts.token_for(user))


@router.get("/user", response_model=UserResponse)
async def current(user: CurrentUser, request: Request) -> UserResponse:
    return user_response(user, presented_token(request.headers["authorization"]))


@router.put("/user", response_model=UserResponse)
async def update(
    body: Annotated[UpdateUserRequest, Body()],
    user: CurrentUser,
    accounts: AccountsDep,
    request: Request,
) -> UserResponse:
    updated = await accounts.update(user.id, body.user)
    return user_response(updated, presented_token(request.headers["authorization"]))
