from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from anyio.to_thread import run_sync
from fastapi import FastAPI
from servers.mariadb import MariaDBServer

from asyncpress.core.db.bulk import batches
from asyncpress.core.uow import Database
from tests.factories import Account, create_article, register
from tests.support.app import row_count, wired


def _items(count: int, **overrides: Any) -> list[dict[str, Any]]:
    return [
        {"title": f"Imported {n}", "description": "d", "body": f"body {n}", "tagList": ["bulk"]}
        | overrides
        for n in range(count)
    ]


async def _import(client: httpx.AsyncClient, who: Account, payload: object) -> httpx.Response:
    return await client.post("/api/articles/import", json=payload, headers=who.headers)


class TestImport:
    async def test_imports_all_with_slugs_and_tags(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client, "alice")
        await create_article(client, alice, title="Imported 0")  # its slug is taken already
        items = _items(3)
        items[1]["tagList"] = ["bulk", "extra"]
        response = await _import(client, alice, {"articles": items})
        assert response.status_code == 201
        assert response.json() == {
            "imported": 3,
            "slugs": ["imported-0-2", "imported-1", "imported-2"],
        }
        article = (await client.get("/api/articles/imported-1")).json()["article"]
        assert article["tagList"] == ["bulk", "extra"]
        assert article["author"]["username"] == "alice"
        assert await row_count(app, "articles") == 4

    async def test_same_titles_in_one_batch_get_distinct_slugs(
        self, client: httpx.AsyncClient
    ) -> None:
        alice = await register(client)
        response = await _import(client, alice, {"articles": _items(3, title="Same")})
        assert response.json()["slugs"] == ["same", "same-2", "same-3"]

    async def test_ndjson(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        body = "\n".join(json.dumps(item) for item in _items(2)) + "\n"
        response = await client.post(
            "/api/articles/import",
            content=body,
            headers={**alice.headers, "Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 201
        assert response.json()["imported"] == 2

    async def test_one_bad_item_writes_nothing_and_is_named(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        items = _items(5)
        items[3]["title"] = "  "
        items[4].pop("body")
        response = await _import(client, alice, {"articles": items})
        assert response.status_code == 422
        assert response.json() == {
            "errors": {
                "articles[3].title": ["can't be blank"],
                "articles[4].body": ["can't be blank"],
            }
        }
        assert await row_count(app, "articles") == 0
        assert await row_count(app, "tags") == 0

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"articles": []}, "articles"),
            ({"articles": "nope"}, "articles"),
            ({"posts": []}, "articles"),
            ({"articles": [42]}, "articles[0]"),
        ],
    )
    async def test_bad_shapes_are_422(
        self, client: httpx.AsyncClient, payload: object, field: str
    ) -> None:
        alice = await register(client)
        response = await _import(client, alice, payload)
        assert response.status_code == 422
        assert field in response.json()["errors"]

    async def test_too_many_items_is_422(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        alice = await register(client)
        response = await _import(client, alice, {"articles": _items(10_001)})
        assert response.status_code == 422
        assert response.json() == {
            "errors": {"articles": ["has too many items (maximum is 10000)"]}
        }
        assert await row_count(app, "articles") == 0

    async def test_ten_thousand_at_once_and_followers_see_them(
        self, client: httpx.AsyncClient
    ) -> None:
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        await client.post("/api/profiles/alice/follow", headers=bob.headers)
        response = await _import(client, alice, {"articles": _items(10_000)})
        assert response.status_code == 201
        assert response.json()["imported"] == 10_000
        feed = (await client.get("/api/articles/feed?limit=1", headers=bob.headers)).json()
        assert feed["articlesCount"] == 10_000
        stats = (await client.get("/api/stats")).json()["stats"]
        assert stats["articles"] == 10_000

    async def test_needs_a_token(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/articles/import", json={"articles": _items(1)})
        assert response.status_code == 401


@pytest.mark.mariadb_only
async def test_an_import_larger_than_the_servers_packet_is_cut_to_fit(
    client: httpx.AsyncClient, app: FastAPI, mariadb_server: MariaDBServer
) -> None:
    """MySQL refuses a statement over max_allowed_packet: the batches fit it."""
    alice = await register(client)
    # 40 bodies of 50,000 characters (75,000 bytes): 3 MB against a 1 MiB packet.
    body = "é" * 25_000 + "b" * 25_000
    items = _items(40, body=body)
    await run_sync(mariadb_server.sql, "SET GLOBAL max_allowed_packet = 1048576")
    try:
        await wired(app, Database).engine.dispose()  # new connections read the new size
        response = await _import(client, alice, {"articles": items})
    finally:
        await run_sync(mariadb_server.sql, "SET GLOBAL max_allowed_packet = 16777216")
        await wired(app, Database).engine.dispose()
    assert response.status_code == 201, response.text
    assert await row_count(app, "articles") == 40
    article = (await client.get("/api/articles/imported-39")).json()["article"]
    assert article["body"] == body


def test_batches_keep_order_and_bounds() -> None:
    rows = [{"body": "x" * (n % 7) * 100} for n in range(50)]
    cut = batches(rows, 8, 2_000)
    assert [row for batch in cut for row in batch] == rows
    assert all(0 < len(batch) <= 8 for batch in cut)
    for batch in cut:
        size = sum(16 + 4 * len(row["body"]) for row in batch)
        assert size <= 2_000 or len(batch) == 1
    # No byte budget: only the row count cuts.
    assert [len(batch) for batch in batches(rows, 8, None)] == [8] * 6 + [2]
    # A row over the budget alone is a batch of its own.
    assert [len(batch) for batch in batches([{"b": "x" * 900}, {"b": ""}], 8, 100)] == [1, 1]
