"""Helpers that create data through the API, as a client would."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

_serial = itertools.count(1)


def wrapped(wrapper: str, base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """``{wrapper: base}`` with fields changed; a change to None drops the field."""
    fields = {**base, **changes}
    return {wrapper: {key: value for key, value in fields.items() if value is not None}}


@dataclass
class Account:
    username: str
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


async def register(
    client: httpx.AsyncClient, username: str | None = None, password: str = "correct horse"
) -> Account:
    username = username or f"user{next(_serial)}"
    email = f"{username.lower()}@example.com"
    response = await client.post(
        "/api/users", json={"user": {"username": username, "email": email, "password": password}}
    )
    assert response.status_code == 201, response.text
    return Account(username, email, password, response.json()["user"]["token"])


async def create_article(
    client: httpx.AsyncClient, author: Account, **fields: Any
) -> dict[str, Any]:
    n = next(_serial)
    article = {
        "title": f"Article {n}",
        "description": f"About article {n}",
        "body": f"The body of article {n}.",
        "tagList": [],
    }
    article.update(fields)
    response = await client.post("/api/articles", json={"article": article}, headers=author.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()["article"]
    return created


async def add_comment(
    client: httpx.AsyncClient, author: Account, slug: str, body: str = "Nice."
) -> dict[str, Any]:
    response = await client.post(
        f"/api/articles/{slug}/comments", json={"comment": {"body": body}}, headers=author.headers
    )
    assert response.status_code == 200, response.text
    comment: dict[str, Any] = response.json()["comment"]
    return comment
