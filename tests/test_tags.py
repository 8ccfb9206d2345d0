from __future__ import annotations

import httpx

from tests.factories import create_article, register


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
