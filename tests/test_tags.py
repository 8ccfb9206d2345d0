from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from asyncpress.core.uow import Database
from tests.factories import create_article, register
from tests.support.app import wired


class TestTags:
    async def test_empty(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/tags")
        assert response.status_code == 200
        assert response.json() == {"tags": []}

    async def test_most_used_first_and_only_tags_in_use(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        await create_article(client, alice, tagList=["rare", "common"])
        await create_article(client, alice, tagList=["common", "mid"])
        await create_article(client, alice, tagList=["common", "mid"])
        doomed = await create_article(client, alice, tagList=["gone"])
        await client.delete(f"/api/articles/{doomed['slug']}", headers=alice.headers)
        assert (await client.get("/api/tags")).json() == {"tags": ["common", "mid", "rare"]}


async def _uses_against_links(app: FastAPI) -> tuple[dict[str, int], dict[str, int]]:
    """Each tag's kept use count, and the count of its links, read from the database."""
    counted_sql = (
        "SELECT t.name, count(x.article_id) FROM tags t "
        "LEFT JOIN article_tags x ON x.tag_id = t.id GROUP BY t.name"
    )
    async with wired(app, Database).sessionmaker() as session:
        kept = {r[0]: int(r[1]) for r in await session.execute(text("SELECT name, uses FROM tags"))}
        counted = {r[0]: int(r[1]) for r in await session.execute(text(counted_sql))}
    return kept, counted


class TestUseCounts:
    async def test_every_write_keeps_the_counts_equal_to_the_links(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        first = await create_article(client, alice, tagList=["a", "b"])
        second = await create_article(client, alice, tagList=["b", "c"])
        await create_article(client, alice, tagList=["c"])
        edited = await client.put(
            f"/api/articles/{first['slug']}",
            json={"article": {"tagList": ["c", "d"]}},
            headers=alice.headers,
        )
        assert edited.status_code == 200, edited.text
        await client.delete(f"/api/articles/{second['slug']}", headers=alice.headers)
        imported = await client.post(
            "/api/articles/import",
            json={
                "articles": [
                    {"title": "In", "description": "d", "body": "b", "tagList": ["d", "e"]}
                ]
            },
            headers=alice.headers,
        )
        assert imported.status_code in (200, 201), imported.text

        kept, counted = await _uses_against_links(app)
        assert kept == counted
        assert kept == {"a": 0, "b": 0, "c": 2, "d": 2, "e": 1}
        # Unused tags are not listed; ties by name.
        assert (await client.get("/api/tags")).json() == {"tags": ["c", "d", "e"]}

    async def test_concurrent_creates_with_one_tag_count_each(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        authors = [await register(client) for _ in range(20)]
        responses = await asyncio.gather(
            *(
                client.post(
                    "/api/articles",
                    json={
                        "article": {
                            "title": f"Hot {n}",
                            "description": "d",
                            "body": "b",
                            "tagList": ["hot", f"own{n}"],
                        }
                    },
                    headers=author.headers,
                )
                for n, author in enumerate(authors)
            )
        )
        assert [r.status_code for r in responses] == [201] * 20
        kept, counted = await _uses_against_links(app)
        assert kept == counted
        assert kept["hot"] == 20
