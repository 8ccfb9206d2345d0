"""Every list endpoint runs the same number of statements whatever the page size."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import count_statements
from tests.factories import Account, add_comment, create_article, register

ARTICLES = 100


@pytest.fixture
async def crowd(client: httpx.AsyncClient) -> dict[str, object]:
    authors = [await register(client) for _ in range(4)]
    reader = await register(client)
    for author in authors:
        await client.post(f"/api/profiles/{author.username}/follow", headers=reader.headers)
    slugs = []
    for n in range(ARTICLES):
        author = authors[n % len(authors)]
        created = await create_article(client, author, tagList=[f"t{n % 7}", f"u{n % 3}"])
        slugs.append(created["slug"])
        if n % 2:
            await client.post(f"/api/articles/{created['slug']}/favorite", headers=reader.headers)
    for n in range(ARTICLES):
        await add_comment(client, authors[n % len(authors)], slugs[0], f"comment {n}")
    return {"reader": reader, "slug": slugs[0]}


async def _statements(app: FastAPI, client: httpx.AsyncClient, url: str, account: Account) -> int:
    with count_statements(app) as counter:
        response = await client.get(url, headers=account.headers)
    assert response.status_code == 200
    return counter.count


@pytest.mark.parametrize(
    ("path", "size_key"),
    [
        ("/api/articles", "articles"),
        ("/api/articles?tag=t1", "articles"),
        ("/api/articles/feed", "articles"),
        ("/api/articles/{slug}/comments", "comments"),
    ],
)
async def test_constant_statements_for_limit_1_and_100(
    app: FastAPI, client: httpx.AsyncClient, crowd: dict[str, object], path: str, size_key: str
) -> None:
    reader = crowd["reader"]
    assert isinstance(reader, Account)
    url = path.format(slug=crowd["slug"])
    sep = "&" if "?" in url else "?"
    small = await _statements(app, client, f"{url}{sep}limit=1", reader)
    large_url = f"{url}{sep}limit=100"
    large = await _statements(app, client, large_url, reader)
    body = (await client.get(large_url, headers=reader.headers)).json()
    assert len(body[size_key]) > 1  # the large page really is large
    assert small == large
    assert large <= 3
