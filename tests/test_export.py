from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import time

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from asyncpress.cli.seed import seed
from asyncpress.core.db.engine import create_sessionmaker
from asyncpress.core.uow import Database
from tests.factories import create_article, register
from tests.support.app import wired
from tests.support.http import TLS

SEEDED = 1_000


async def _seed(sessionmaker_source: object, articles: int) -> None:
    """``articles`` articles: ``SEEDED`` seeded as ``asyncpress seed`` writes them,
    the rest copied from those in SQL with their tags and times.

    Copying is what keeps a 50,000-article test cheap; it also gives fifty
    articles each creation time, so the export's chunks must continue by id.
    """
    assert callable(sessionmaker_source)
    async with sessionmaker_source() as session:
        await seed(
            session,
            password_hash="x",
            users=20,
            articles=SEEDED,
            comments=0,
            favorites=0,
            follows=0,
            seed_value=5,
        )
        on_mysql = session.bind.dialect.name in ("mysql", "mariadb")
        # MySQL's || is OR; its CONCAT is what the others' || is.
        concat = "CONCAT({}, :suffix)" if on_mysql else "{} || :suffix"
        for copy in range(1, articles // SEEDED):
            suffix = f"-copy{copy}"
            await session.execute(
                text(
                    "INSERT INTO articles (slug, title, description, body, author_id,"  # noqa: S608
                    " favorites_count, created_at, updated_at)"
                    f" SELECT {concat.format('slug')}, title, description, body, author_id,"
                    " favorites_count, created_at, updated_at"
                    " FROM articles WHERE id <= :seeded"
                ),
                {"suffix": suffix, "seeded": SEEDED},
            )
            await session.execute(
                text(
                    "INSERT INTO article_tags (article_id, tag_id, article_created_at)"  # noqa: S608
                    " SELECT copied.id, tagged.tag_id, tagged.article_created_at"
                    " FROM article_tags tagged"
                    " JOIN articles seeded ON seeded.id = tagged.article_id"
                    f" JOIN articles copied ON copied.slug = {concat.format('seeded.slug')}"
                    " WHERE seeded.id <= :seeded"
                ),
                {"suffix": suffix, "seeded": SEEDED},
            )
        await session.commit()


class TestExport:
    async def test_ndjson_has_every_article_with_body_tags_and_author(
        self, client: httpx.AsyncClient
    ) -> None:
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        await create_article(client, alice, title="First", body="B1", tagList=["x", "a"])
        await create_article(client, bob, title="Second", body="B2")
        response = await client.get("/api/articles/export")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        rows = [json.loads(line) for line in response.text.splitlines()]
        assert [(r["title"], r["body"], r["author"], r["tagList"]) for r in rows] == [
            ("Second", "B2", "bob", []),
            ("First", "B1", "alice", ["a", "x"]),
        ]

    async def test_csv_parses_back(self, client: httpx.AsyncClient) -> None:
        alice = await register(client, "alice")
        await create_article(
            client, alice, title='Quotes "and", commas', body="line1\nline2", tagList=["t1", "t2"]
        )
        response = await client.get("/api/articles/export?format=csv")
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        (row,) = list(csv.DictReader(io.StringIO(response.text)))
        assert row["title"] == 'Quotes "and", commas'
        assert row["body"] == "line1\nline2"
        assert row["tagList"] == "t1;t2"
        assert row["author"] == "alice"

    async def test_filters_apply(self, client: httpx.AsyncClient) -> None:
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        await create_article(client, alice, title="A", tagList=["keep"])
        await create_article(client, bob, title="B", tagList=["keep"])
        await create_article(client, alice, title="C")
        body = (await client.get("/api/articles/export?tag=keep&author=alice")).text
        assert [json.loads(line)["title"] for line in body.splitlines()] == ["A"]

    async def test_bad_format_is_422(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/articles/export?format=xml")
        assert response.status_code == 422
        assert "format" in response.json()["errors"]

    async def test_articles_with_one_timestamp_page_by_id_across_chunks(
        self, client: httpx.AsyncClient
    ) -> None:
        # Bulk import gives every article the same created_at: the chunks
        # (500 each) must then continue by id, skipping and repeating nothing.
        alice = await register(client)
        items = [{"title": f"t{n}", "description": "d", "body": "b"} for n in range(1200)]
        imported = await client.post(
            "/api/articles/import", json={"articles": items}, headers=alice.headers
        )
        assert imported.status_code == 201
        lines = (await client.get("/api/articles/export")).text.splitlines()
        slugs = [json.loads(line)["slug"] for line in lines]
        assert sorted(slugs) == sorted(imported.json()["slugs"])

    async def test_fifty_thousand_articles_parse_back_completely(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await _seed(wired(app, Database).sessionmaker, 50_000)
        response = await client.get("/api/articles/export")
        slugs = [json.loads(line)["slug"] for line in response.text.splitlines()]
        assert len(slugs) == 50_000
        assert len(set(slugs)) == 50_000


@pytest.mark.postgres_only
def test_a_client_that_disconnects_stops_the_export(server: str, database_url: str) -> None:
    engine = create_async_engine(database_url)

    async def fill() -> None:
        await _seed(create_sessionmaker(engine), 20_000)
        await engine.dispose()

    asyncio.run(fill())

    def exported() -> int:
        metrics = httpx.get(f"{server}/metrics", verify=TLS, timeout=10).text
        found = re.search(r"^asyncpress_export_rows_total ([\d.e+]+)$", metrics, re.M)
        return int(float(found.group(1)))  # type: ignore[union-attr]

    with httpx.stream("GET", f"{server}/api/articles/export", verify=TLS, timeout=10) as response:
        first = next(response.iter_bytes())
        assert first
    time.sleep(1.0)
    stopped_at = exported()
    time.sleep(1.0)
    assert exported() == stopped_at  # nothing more was read after the client left
    assert stopped_at < 20_000
    # The export's connection went back to the pool. The server's own
    # background readers (event pump, outbox) hold one now and then, so one
    # scrape can catch them; a leaked connection would never read 0.
    deadline = time.monotonic() + 5
    while "asyncpress_db_pool_checked_out 0.0" not in (
        metrics := httpx.get(f"{server}/metrics", verify=TLS, timeout=10).text
    ):
        assert time.monotonic() < deadline, re.findall(r"^asyncpress_db_pool.*$", metrics, re.M)
        time.sleep(0.05)
