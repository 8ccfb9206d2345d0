"""Caching: invalidation on writes, shared entries through Redis, and Redis outages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from anyio.to_thread import run_sync
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from servers.postgres import free_port
from servers.processes import RedisServer
from sqlalchemy import select

from asyncpress.app.main import create_app
from asyncpress.articles.models import Article
from asyncpress.core.cache import Cache, MemoryCache, NoCache, RedisCache, backend_for
from asyncpress.core.config import Settings
from asyncpress.core.db.base import utcnow
from asyncpress.core.uow import Database
from asyncpress.users.models import User
from tests.factories import Account, create_article, register
from tests.support import contract
from tests.support.app import count_statements, make_settings, wired
from tests.support.http import TLS
from tests.support.live import Served


async def _statements_for(app: FastAPI, client: httpx.AsyncClient, url: str) -> int:
    with count_statements(app) as counter:
        response = await client.get(url)
    assert response.status_code == 200
    return counter.count


class TestInvalidation:
    async def test_tags_are_cached_until_an_article_changes_them(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        await create_article(client, alice, tagList=["first"])
        assert await _statements_for(app, client, "/api/tags") == 1
        assert await _statements_for(app, client, "/api/tags") == 0  # from the cache
        await create_article(client, alice, tagList=["second"])
        assert sorted((await client.get("/api/tags")).json()["tags"]) == ["first", "second"]

    async def test_anonymous_article_reads_are_cached_and_favorites_refresh_them(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        bob = await register(client)
        slug = (await create_article(client, alice))["slug"]
        assert await _statements_for(app, client, f"/api/articles/{slug}") == 1
        assert await _statements_for(app, client, f"/api/articles/{slug}") == 0
        await client.post(f"/api/articles/{slug}/favorite", headers=bob.headers)
        anon = (await client.get(f"/api/articles/{slug}")).json()["article"]
        assert anon["favoritesCount"] == 1
        assert anon["favorited"] is False
        mine = (await client.get(f"/api/articles/{slug}", headers=bob.headers)).json()["article"]
        assert mine["favorited"] is True  # a viewer's read is never served from the cache

    async def test_an_edit_and_a_delete_are_seen_at_once(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        slug = (await create_article(client, alice, title="Before"))["slug"]
        await client.get(f"/api/articles/{slug}")
        await client.put(
            f"/api/articles/{slug}", json={"article": {"body": "After"}}, headers=alice.headers
        )
        assert (await client.get(f"/api/articles/{slug}")).json()["article"]["body"] == "After"
        await client.delete(f"/api/articles/{slug}", headers=alice.headers)
        assert (await client.get(f"/api/articles/{slug}")).status_code == 404


async def _total(client: httpx.AsyncClient, url: str, account: Account | None = None) -> int:
    response = await client.get(url, headers=account.headers if account else None)
    assert response.status_code == 200
    count: int = response.json()["articlesCount"]
    return count


async def _insert_behind_the_api(app: FastAPI, author: str) -> None:
    """An article written straight into the database, as a script by hand would."""
    async with wired(app, Database).sessionmaker() as session:
        author_id = (await session.execute(select(User.id).where(User.username == author))).scalar()
        now = utcnow()
        session.add(
            Article(
                slug=f"by-hand-{now.timestamp()}",
                title="By hand",
                description="d",
                body="b",
                author_id=author_id,
                favorites_count=0,
                created_at=now,
                updated_at=now,
            )
        )
        await session.commit()


class TestCounts:
    """``articlesCount`` is kept in the cache; every API write that can change it retires it."""

    async def test_a_kept_count_is_served_until_a_write_through_the_api(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        await create_article(client, alice)
        assert await _total(client, "/api/articles") == 1
        # The rows are always read; the count is the kept one (docs/operations.md).
        await _insert_behind_the_api(app, alice.username)
        page = (await client.get("/api/articles")).json()
        assert (len(page["articles"]), page["articlesCount"]) == (2, 1)
        await create_article(client, alice)
        assert await _total(client, "/api/articles") == 3

    async def test_every_kind_of_write_refreshes_the_counts_it_changes(
        self, client: httpx.AsyncClient
    ) -> None:
        alice = await register(client)
        bob = await register(client)
        slug = (await create_article(client, alice, tagList=["old"]))["slug"]
        by_tag = "/api/articles?tag=new"
        assert await _total(client, by_tag) == 0
        edit = {"article": {"tagList": ["new"]}}
        await client.put(f"/api/articles/{slug}", json=edit, headers=alice.headers)
        assert await _total(client, by_tag) == 1

        fans = f"/api/articles?favorited={bob.username}"
        assert await _total(client, fans) == 0
        await client.post(f"/api/articles/{slug}/favorite", headers=bob.headers)
        assert await _total(client, fans) == 1
        await client.delete(f"/api/articles/{slug}/favorite", headers=bob.headers)
        assert await _total(client, fans) == 0

        assert await _total(client, "/api/articles/feed", bob) == 0
        await client.post(f"/api/profiles/{alice.username}/follow", headers=bob.headers)
        assert await _total(client, "/api/articles/feed", bob) == 1
        await client.delete(f"/api/profiles/{alice.username}/follow", headers=bob.headers)
        assert await _total(client, "/api/articles/feed", bob) == 0

        renamed = "/api/articles?author=alice-renamed"
        assert await _total(client, renamed) == 0
        rename = {"user": {"username": "alice-renamed"}}
        assert (await client.put("/api/user", json=rename, headers=alice.headers)).is_success
        assert await _total(client, renamed) == 1

        items = {"articles": [{"title": "Imported", "description": "d", "body": "b"}]}
        await client.post("/api/articles/import", json=items, headers=alice.headers)
        assert await _total(client, "/api/articles") == 2
        await client.delete(f"/api/articles/{slug}", headers=alice.headers)
        assert await _total(client, "/api/articles") == 1
        assert await _total(client, by_tag) == 0


async def test_memory_entries_expire() -> None:
    cache = MemoryCache()
    await cache.set("k", {"v": 1}, ttl_s=0.05)
    assert await cache.get("k") == {"v": 1}
    await cache.set("gone", 1, ttl_s=0)
    assert await cache.get("gone") is None
    await asyncio.sleep(0.06)
    assert await cache.get("k") is None


@pytest.fixture
def redis_settings(database_url: str, redis_server: RedisServer) -> Settings:
    return make_settings(database_url, redis_url=redis_server.url)


@pytest.fixture
async def two_apps(
    redis_settings: Settings, app: FastAPI
) -> AsyncIterator[list[tuple[FastAPI, httpx.AsyncClient]]]:
    """Two app instances (as two workers would be) sharing the database and Redis.

    (Requesting ``app`` empties the database first and turns on the loop guard.)
    """
    pairs = []
    managers = []
    for _ in range(2):
        instance = create_app(redis_settings)
        manager = LifespanManager(instance)
        await manager.__aenter__()
        managers.append(manager)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=instance),
            base_url="http://asyncpress.test",
            event_hooks={"response": [contract.hook]},
        )
        pairs.append((instance, client))
    yield pairs
    for (_, client), manager in zip(pairs, managers, strict=True):
        await client.aclose()
        await manager.__aexit__(None, None, None)


class TestRedis:
    async def test_entries_are_shared_between_workers(
        self, two_apps: list[tuple[FastAPI, httpx.AsyncClient]]
    ) -> None:
        (app_a, client_a), (app_b, client_b) = two_apps
        alice = await register(client_a)
        await create_article(client_a, alice, tagList=["shared"])
        assert await _statements_for(app_a, client_a, "/api/tags") == 1
        assert await _statements_for(app_b, client_b, "/api/tags") == 0  # cached by A
        await create_article(client_b, alice, tagList=["fresh"])  # B's write invalidates for A
        assert sorted((await client_a.get("/api/tags")).json()["tags"]) == ["fresh", "shared"]

    async def test_a_write_through_one_worker_refreshes_counts_kept_by_another(
        self, two_apps: list[tuple[FastAPI, httpx.AsyncClient]]
    ) -> None:
        (_, client_a), (_, client_b) = two_apps
        alice = await register(client_a)
        await create_article(client_a, alice)
        assert await _total(client_a, "/api/articles") == 1
        assert await _total(client_b, "/api/articles") == 1
        await create_article(client_b, alice)
        assert await _total(client_a, "/api/articles") == 2

    async def test_a_redis_outage_degrades_to_the_database(
        self, two_apps: list[tuple[FastAPI, httpx.AsyncClient]], redis_server: RedisServer
    ) -> None:
        (app_a, client_a), _ = two_apps
        alice = await register(client_a)
        slug = (await create_article(client_a, alice, tagList=["t"]))["slug"]
        await run_sync(redis_server.kill)
        for _ in range(3):
            assert await _statements_for(app_a, client_a, "/api/tags") == 1  # straight to the DB
            assert await _statements_for(app_a, client_a, f"/api/articles/{slug}") == 1
        await run_sync(redis_server.start)
        await client_a.get("/api/tags")
        assert await _statements_for(app_a, client_a, "/api/tags") == 0  # caching again


class SlowRead:
    """A database read stand-in that takes ``seconds`` and counts its calls."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        await asyncio.sleep(self.seconds)
        return 42


async def test_a_cold_key_is_computed_once_and_nothing_outlives_the_work() -> None:
    cached = Cache(MemoryCache())
    compute = SlowRead(0.01)
    results = await asyncio.gather(*(cached.get_or_compute("k", 60, compute) for _ in range(10)))
    assert results == [42] * 10
    assert compute.calls == 1
    for n in range(100):  # many different keys, as article slugs are
        await cached.get_or_compute(f"article:{n}", 60, compute)
    assert cached._computing == {}


async def test_the_first_asker_giving_up_leaves_the_others_their_value() -> None:
    cached = Cache(MemoryCache())
    release = asyncio.Event()

    async def compute() -> int:
        await release.wait()
        return 7

    first = asyncio.create_task(cached.get_or_compute("k", 60, compute))
    second = asyncio.create_task(cached.get_or_compute("k", 60, compute))
    await asyncio.sleep(0.01)
    first.cancel()  # its client went away, or its deadline passed
    release.set()
    assert await second == 7
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await cached.get("k") == 7
    assert cached._computing == {}


async def test_with_caching_off_reads_run_side_by_side_not_one_at_a_time() -> None:
    """No cache, no queue: each request computes, and they overlap.

    Waiting for one another's results would serve a value computed before a
    request arrived, and queueing behind a lock made every request for the
    key (the tag list, article counts) wait for all the others.
    """
    cached = Cache(NoCache())
    running = 0
    all_in = asyncio.Event()

    async def compute() -> int:
        nonlocal running
        running += 1
        if running == 5:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), 2)  # only if all five run at once
        return running

    results = await asyncio.gather(*(cached.get_or_compute("tags", 30, compute) for _ in range(5)))
    assert results == [5] * 5


async def test_while_redis_is_down_a_cold_key_is_computed_once_for_all_waiting(
    tmp_path: Path,
) -> None:
    """Requests that arrive while one computes share its result, even when the
    backend (Redis down) cannot keep it: each recomputing in turn behind
    the lock made them wait for one another."""
    down = RedisCache(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    cached = Cache(down)
    compute = SlowRead(0.2)
    try:
        results = await asyncio.gather(
            *(cached.get_or_compute("tags", 30, compute) for _ in range(5))
        )
    finally:
        await cached.close()
    assert results == [42] * 5
    assert compute.calls == 1
    assert cached._computing == {}


class TestSeveralProcessesWithoutRedis:
    @pytest.mark.parametrize(
        ("url", "workers", "local_cache", "expected"),
        [
            ("sqlite+aiosqlite:///./x.db", 1, "auto", True),
            ("sqlite+aiosqlite:///./x.db", 2, "auto", False),
            ("postgresql+asyncpg://u:p@h/db", 1, "auto", False),
            ("postgresql+asyncpg://u:p@h/db", 4, "on", True),
            ("sqlite+aiosqlite:///./x.db", 1, "off", False),
        ],
    )
    def test_only_a_lone_process_caches_in_its_own_memory(
        self, url: str, workers: int, local_cache: str, expected: bool
    ) -> None:
        settings = make_settings(url, serve_workers=workers, local_cache=local_cache)
        assert settings.process_cache is expected
        assert isinstance(backend_for(settings), MemoryCache) is expected

    def test_two_workers_never_serve_an_edited_or_deleted_article(
        self, database_url: str, tmp_path: Path
    ) -> None:
        served = Served(database_url, tmp_path, "two-workers", workers="2", LOG_LEVEL="WARNING")
        try:
            with (
                httpx.Client(base_url=served.base, verify=TLS, timeout=10) as http,
                # A connection per request, so reads land on both workers and fill any cache.
                httpx.Client(
                    base_url=served.base,
                    verify=TLS,
                    timeout=10,
                    limits=httpx.Limits(max_keepalive_connections=0),
                ) as fresh,
            ):
                user = {"username": "w", "email": "w@example.com", "password": "p" * 8}
                token = http.post("/api/users", json={"user": user}).json()["user"]["token"]
                auth = {"Authorization": f"Token {token}"}
                article = {"title": "Twice", "description": "d", "body": "old text"}
                slug = http.post("/api/articles", json={"article": article}, headers=auth).json()[
                    "article"
                ]["slug"]
                for _ in range(20):
                    assert fresh.get(f"/api/articles/{slug}").status_code == 200
                edited = {"article": {"body": "new text"}}
                http.put(f"/api/articles/{slug}", json=edited, headers=auth)
                bodies = {
                    fresh.get(f"/api/articles/{slug}").json()["article"]["body"] for _ in range(20)
                }
                assert bodies == {"new text"}
                http.delete(f"/api/articles/{slug}", headers=auth)
                statuses = {fresh.get(f"/api/articles/{slug}").status_code for _ in range(20)}
                assert statuses == {404}
            assert "caching is off" in served.process.output()
        finally:
            served.process.stop(timeout=15)
