from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from asyncpress.articles.models import Article
from asyncpress.articles.service import Articles
from asyncpress.core.config import Settings
from asyncpress.core.db.base import utcnow
from asyncpress.core.uow import Database
from asyncpress.stats import repository, service
from tests.factories import add_comment, create_article, register
from tests.support.app import count_statements, make_settings, wired


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, stats_cache_s=0)


async def _known_site(client: httpx.AsyncClient, app: FastAPI) -> None:
    alice = await register(client)
    bob = await register(client)
    await register(client)
    old = await create_article(client, alice, tagList=["python", "async"])
    await create_article(client, bob, tagList=["python"])
    await create_article(client, bob, tagList=["python", "rust"])
    await create_article(client, alice)
    for n in range(5):
        await add_comment(client, bob, old["slug"], f"c{n}")
    async with wired(app, Database).sessionmaker() as session:  # one article is two days old
        await session.execute(
            update(Article)
            .where(Article.slug == old["slug"])
            .values(created_at=utcnow() - timedelta(days=2))
        )
        await session.commit()


class TestStats:
    async def test_figures_equal_counts_by_hand(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await _known_site(client, app)
        response = await client.get("/api/stats")
        assert response.status_code == 200
        assert response.json() == {
            "stats": {
                "users": 3,
                "articles": 4,
                "comments": 5,
                "tags": 3,
                "articlesLast24h": 3,
                "topTags": [
                    {"tag": "python", "count": 3},
                    {"tag": "async", "count": 1},
                    {"tag": "rust", "count": 1},
                ],
            }
        }

    async def test_parts_run_on_separate_connections_and_agree_with_the_sequential_path(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await _known_site(client, app)
        sessionmaker = wired(app, Database).sessionmaker
        with count_statements(app) as counter:
            concurrent = await service.gather_concurrently(sessionmaker)
        assert counter.count == len(repository.parts())
        assert concurrent == await service.gather_sequentially(sessionmaker)


class TestCaching:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return make_settings(database_url, stats_cache_s=60)

    async def test_cached_within_the_ttl(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        first = (await client.get("/api/stats")).json()
        await register(client)
        with count_statements(app) as counter:
            again = (await client.get("/api/stats")).json()
        assert again == first  # up to STATS_CACHE_S old, by design
        assert counter.count == 0
        await wired(app, Articles).cache.invalidate("stats")
        assert (await client.get("/api/stats")).json()["stats"]["users"] == 1
