from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text

from asyncpress.articles.schemas import NewArticle
from asyncpress.articles.service import Articles
from asyncpress.core.config import Settings
from asyncpress.core.uow import Database
from asyncpress.users.models import User
from tests.factories import create_article, register
from tests.support.app import failing_at_commit, refused_at_last_write, row_count, wired


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


@pytest.mark.postgres_only
async def test_a_delete_chosen_as_a_deadlock_victim_runs_again(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A delete waits for a tag's row while holding its article's, which the
    other transaction then waits for: PostgreSQL rolls the delete back (it
    waited first), and the delete runs again instead of answering 503."""
    alice = await register(client)
    article = await create_article(client, alice, tagList=["held"])
    db = wired(app, Database)
    async with db.engine.connect() as other, db.engine.connect() as watcher:
        await other.execute(text("SELECT 1 FROM tags WHERE name = 'held' FOR UPDATE"))
        deleting = asyncio.create_task(
            client.delete(f"/api/articles/{article['slug']}", headers=alice.headers)
        )
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE tags%'"
        )
        async with asyncio.timeout(10):
            while not (await watcher.execute(waiting)).scalar_one():
                await watcher.rollback()  # a fresh snapshot of the activity view
                await asyncio.sleep(0.02)
        # Wait for the article the delete holds: a cycle the database breaks.
        await other.execute(
            text("UPDATE articles SET title = title WHERE slug = :slug"), {"slug": article["slug"]}
        )
        await other.rollback()
        response = await deleting
    assert response.status_code == 204, response.text
    assert (await client.get(f"/api/articles/{article['slug']}")).status_code == 404
    kept, counted = await _uses_against_links(app)
    assert kept == counted


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

    async def test_concurrent_creates_edits_and_deletes_of_known_tags_all_count(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """Writers of the same tags, named in any order, wait for one another
        and never deadlock (a deadlock's victim is retried once, then answered
        503). The tags are made in reverse name order, so that their ids and
        their names order them differently."""
        alice = await register(client)
        names = ["k1", "k2", "k3", "k4"]
        for name in reversed(names):
            await create_article(client, alice, tagList=[name])
        edited = [await create_article(client, alice, tagList=names) for _ in range(4)]
        deleted = [await create_article(client, alice, tagList=names) for _ in range(2)]
        creates = [
            client.post(
                "/api/articles",
                json={
                    "article": {
                        "title": f"Known {n}",
                        "description": "d",
                        "body": "b",
                        "tagList": names[n % 4 :] + names[: n % 4],
                    }
                },
                headers=alice.headers,
            )
            for n in range(16)
        ]
        edits = [
            client.put(
                f"/api/articles/{article['slug']}",
                json={"article": {"tagList": list(reversed(names[n:]))}},
                headers=alice.headers,
            )
            for n, article in enumerate(edited)
        ]
        deletes = [
            client.delete(f"/api/articles/{article['slug']}", headers=alice.headers)
            for article in deleted
        ]
        responses = await asyncio.gather(*creates, *edits, *deletes)
        assert [r.status_code for r in responses[:20]] == [201] * 16 + [200] * 4
        assert all(r.is_success for r in responses[20:]), [r.text for r in responses[20:]]
        kept, counted = await _uses_against_links(app)
        assert kept == counted
        # 7 before; 16 creates; the edits drop k1 thrice, k2 twice, k3 once; 2 deletes.
        assert kept == {"k1": 18, "k2": 19, "k3": 20, "k4": 21}

    async def test_a_create_refused_at_its_last_write_leaves_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, backend: str
    ) -> None:
        """An article, its tag links, its tags' counts, the tags it made and its
        event are written together or not at all: in a unit of work whose
        commit fails, or, on PostgreSQL, in the one statement that writes
        them all (articles.creating), when its event is refused."""
        alice = await register(client)
        await create_article(client, alice, tagList=["known"])
        db = wired(app, Database)
        failing, followed = failing_at_commit(db)
        check = "data NOT LIKE '%never-written%'"  # the event, the statement's last write
        refused = await refused_at_last_write(db, backend, "events", check)
        articles = Articles(failing, wired(app, Articles).cache, wired(app, Settings))
        new = NewArticle(
            title="never-written", description="d", body="b", tag_list=["known", "fresh"]
        )
        async with db.session() as session:
            author_id = (
                await session.execute(select(User.id).where(User.username == alice.username))
            ).scalar_one()
        with pytest.raises(refused):
            await articles.create(author_id, new)
        assert followed == []  # nothing committed: no wake-up, no cache retired
        assert await row_count(app, "articles") == 1
        kept, counted = await _uses_against_links(app)
        assert kept == counted == {"known": 1}
