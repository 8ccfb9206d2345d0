from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from asyncpress.articles.repository import slugs_like_statement
from asyncpress.core.db.engine import dialect_of
from asyncpress.core.uow import Database
from tests.factories import Account, add_comment, create_article, register, wrapped
from tests.support.app import row_count, wired

ISO_MILLIS_Z = "%Y-%m-%dT%H:%M:%S.%fZ"

DRAGON = {
    "title": "How to train your dragon",
    "description": "Ever wonder how?",
    "body": "You have to believe",
    "tagList": ["reactjs", "angularjs", "dragons"],
}


def _article(**changes: Any) -> dict[str, Any]:
    return wrapped("article", DRAGON, **changes)


class TestCreateArticle:
    async def test_creates_with_slug_sorted_tags_and_utc_millisecond_times(
        self, client: httpx.AsyncClient
    ) -> None:
        alice = await register(client, "alice")
        response = await client.post("/api/articles", json=_article(), headers=alice.headers)
        assert response.status_code == 201
        article = response.json()["article"]
        assert article["slug"] == "how-to-train-your-dragon"
        assert article["tagList"] == ["angularjs", "dragons", "reactjs"]
        assert article["favorited"] is False
        assert article["favoritesCount"] == 0
        assert article["author"] == {
            "username": "alice",
            "bio": "",
            "image": None,
            "following": False,
        }
        for stamp in (article["createdAt"], article["updatedAt"]):
            assert len(stamp) == len("2016-02-18T03:22:56.637Z")
            datetime.strptime(stamp, ISO_MILLIS_Z)
        fetched = await client.get("/api/articles/how-to-train-your-dragon")
        assert fetched.json()["article"] == article

    async def test_same_title_gets_a_distinct_slug(self, client: httpx.AsyncClient) -> None:
        alice = await register(client, "alice")
        slugs = [
            (await create_article(client, alice, title="Same Title"))["slug"] for _ in range(3)
        ]
        assert slugs == ["same-title", "same-title-2", "same-title-3"]

    @pytest.mark.parametrize(
        ("title", "slug"),
        [
            ("Crème Brûlée: a How-To!", "crème-brûlée-a-how-to"),
            ("  spaces   and---dashes  ", "spaces-and-dashes"),
            ("日本語の記事", "日本語の記事"),
            ("Привет, мир", "привет-мир"),
            ("Καλημέρα Κόσμε", "καλημέρα-κόσμε"),
            ("Straße", "straße"),
            ("नमस्ते दुनिया", "नमस्ते-दुनिया"),
            ("100% _real_ #news", "100-real-news"),
            ("!!!", "article"),
        ],
    )
    async def test_slug_keeps_the_title_in_its_own_script(
        self, client: httpx.AsyncClient, title: str, slug: str
    ) -> None:
        alice = await register(client)
        assert (await create_article(client, alice, title=title))["slug"] == slug

    async def test_duplicate_tags_are_kept_once(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        created = await create_article(client, alice, tagList=["b", "a", "b", " a "])
        assert created["tagList"] == ["a", "b"]

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"title": None}, "title"),
            ({"description": None}, "description"),
            ({"body": None}, "body"),
            ({"title": "   "}, "title"),
            ({"body": ""}, "body"),
            ({"title": "t" * 201}, "title"),
            ({"tagList": "dragons"}, "tagList"),
            ({"tagList": [f"t{i}" for i in range(21)]}, "tagList"),
            ({"tagList": [""]}, "tagList.0"),
        ],
    )
    async def test_bad_fields_are_refused_and_nothing_is_written(
        self, client: httpx.AsyncClient, app: FastAPI, changes: dict[str, Any], field: str
    ) -> None:
        alice = await register(client)
        response = await client.post(
            "/api/articles", json=_article(**changes), headers=alice.headers
        )
        assert response.status_code == 422
        assert field in response.json()["errors"], response.json()
        assert await row_count(app, "articles") == 0
        assert await row_count(app, "tags") == 0

    async def test_needs_a_token(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        response = await client.post("/api/articles", json=_article())
        assert response.status_code == 401
        assert await row_count(app, "articles") == 0


async def test_every_field_at_its_longest_in_four_byte_characters_is_kept_whole(
    client: httpx.AsyncClient,
) -> None:
    """The longest values the API accepts fit every backend's columns.

    Four-byte characters (utf8mb4 on MySQL) at each limit: MySQL's TEXT
    holds 65,535 bytes, a quarter of the longest body.
    """
    alice = await register(client)
    longest = {
        "title": "🐉" * 200,
        "description": "🐉" * 1000,
        "body": "🐉" * 100_000,
        "tagList": ["🐉" * 64],
    }
    created = await create_article(client, alice, **longest)
    article = (await client.get(f"/api/articles/{created['slug']}")).json()["article"]
    assert {key: article[key] for key in longest} == longest
    comment = await add_comment(client, alice, created["slug"], "🐉" * 10_000)
    listed = (await client.get(f"/api/articles/{created['slug']}/comments")).json()
    assert listed["comments"][0]["body"] == comment["body"] == "🐉" * 10_000
    bio = {"user": {"bio": "🐉" * 2000}}
    assert (await client.put("/api/user", json=bio, headers=alice.headers)).status_code == 200
    profile = (await client.get(f"/api/profiles/{alice.username}")).json()["profile"]
    assert profile["bio"] == "🐉" * 2000


class TestGetArticle:
    async def test_unknown_slug_is_404(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/articles/nope")
        assert response.status_code == 404
        assert response.json() == {"errors": {"article": ["not found"]}}

    async def test_shows_the_viewers_favorite_and_follow(self, client: httpx.AsyncClient) -> None:
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        slug = (await create_article(client, alice))["slug"]
        await client.post(f"/api/articles/{slug}/favorite", headers=bob.headers)
        await client.post("/api/profiles/alice/follow", headers=bob.headers)
        as_bob = (await client.get(f"/api/articles/{slug}", headers=bob.headers)).json()["article"]
        assert as_bob["favorited"] is True
        assert as_bob["favoritesCount"] == 1
        assert as_bob["author"]["following"] is True
        anon = (await client.get(f"/api/articles/{slug}")).json()["article"]
        assert anon["favorited"] is False
        assert anon["author"]["following"] is False


class TestUpdateArticle:
    async def test_new_title_changes_the_slug(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        slug = (await create_article(client, alice, title="Old title"))["slug"]
        response = await client.put(
            f"/api/articles/{slug}",
            json={"article": {"title": "Did you train your dragon?"}},
            headers=alice.headers,
        )
        assert response.status_code == 200
        article = response.json()["article"]
        assert article["slug"] == "did-you-train-your-dragon"
        assert article["updatedAt"] >= article["createdAt"]
        assert (await client.get("/api/articles/did-you-train-your-dragon")).status_code == 200

    async def test_other_fields_and_tags(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        slug = (await create_article(client, alice, tagList=["old"]))["slug"]
        response = await client.put(
            f"/api/articles/{slug}",
            json={"article": {"body": "New body", "description": "New", "tagList": ["z", "new"]}},
            headers=alice.headers,
        )
        article = response.json()["article"]
        assert article["slug"] == slug
        assert (article["body"], article["description"]) == ("New body", "New")
        assert article["tagList"] == ["new", "z"]
        tags = (await client.get("/api/tags")).json()["tags"]
        assert sorted(tags) == ["new", "z"]

    async def test_someone_elses_article_is_403_and_unchanged(
        self, client: httpx.AsyncClient
    ) -> None:
        alice = await register(client)
        mallory = await register(client)
        created = await create_article(client, alice)
        response = await client.put(
            f"/api/articles/{created['slug']}",
            json={"article": {"title": "Mine now"}},
            headers=mallory.headers,
        )
        assert response.status_code == 403
        assert response.json() == {"errors": {"article": ["belongs to another author"]}}
        again = (await client.get(f"/api/articles/{created['slug']}")).json()["article"]
        assert again == created

    async def test_unknown_slug_is_404(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        response = await client.put(
            "/api/articles/nope", json={"article": {"title": "x"}}, headers=alice.headers
        )
        assert response.status_code == 404

    async def test_blank_title_is_refused(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        created = await create_article(client, alice)
        response = await client.put(
            f"/api/articles/{created['slug']}",
            json={"article": {"title": " "}},
            headers=alice.headers,
        )
        assert response.status_code == 422
        assert response.json() == {"errors": {"title": ["can't be blank"]}}


class TestDeleteArticle:
    async def test_deletes_with_its_comments_and_favorites(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        bob = await register(client)
        slug = (await create_article(client, alice, tagList=["t"]))["slug"]
        await add_comment(client, bob, slug)
        await client.post(f"/api/articles/{slug}/favorite", headers=bob.headers)
        response = await client.delete(f"/api/articles/{slug}", headers=alice.headers)
        assert response.status_code == 204
        assert (await client.get(f"/api/articles/{slug}")).status_code == 404
        for table in ("articles", "comments", "favorites", "article_tags"):
            assert await row_count(app, table) == 0, table

    async def test_someone_elses_article_is_403(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        mallory = await register(client)
        slug = (await create_article(client, alice))["slug"]
        response = await client.delete(f"/api/articles/{slug}", headers=mallory.headers)
        assert response.status_code == 403
        assert await row_count(app, "articles") == 1

    async def test_unknown_slug_is_404_and_needs_token(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        assert (await client.delete("/api/articles/nope", headers=alice.headers)).status_code == 404
        assert (await client.delete("/api/articles/nope")).status_code == 401


class TestFavorite:
    async def test_favorite_and_unfavorite_are_idempotent(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        bob = await register(client)
        slug = (await create_article(client, alice))["slug"]
        for _ in range(2):
            response = await client.post(f"/api/articles/{slug}/favorite", headers=bob.headers)
            assert response.status_code == 200
            article = response.json()["article"]
            assert (article["favorited"], article["favoritesCount"]) == (True, 1)
        assert await row_count(app, "favorites") == 1
        for _ in range(2):
            response = await client.delete(f"/api/articles/{slug}/favorite", headers=bob.headers)
            article = response.json()["article"]
            assert (article["favorited"], article["favoritesCount"]) == (False, 0)
        assert await row_count(app, "favorites") == 0

    async def test_unknown_slug_is_404_and_needs_token(self, client: httpx.AsyncClient) -> None:
        bob = await register(client)
        for method in ("POST", "DELETE"):
            response = await client.request(
                method, "/api/articles/nope/favorite", headers=bob.headers
            )
            assert response.status_code == 404
            response = await client.request(method, "/api/articles/nope/favorite")
            assert response.status_code == 401


@pytest.fixture
async def library(client: httpx.AsyncClient) -> dict[str, Any]:
    """A known data set: three authors, tagged articles, favorites, follows.

    Articles are created in the order listed, so the newest is last.
    """
    alice = await register(client, "alice")
    bob = await register(client, "bob")
    carol = await register(client, "carol")
    plan = [
        (alice, "A1", ["python"]),
        (bob, "B1", ["python", "async"]),
        (alice, "A2", ["async"]),
        (carol, "C1", ["python"]),
        (bob, "B2", []),
        (alice, "A3", ["python", "async"]),
    ]
    slugs = {}
    for author, title, tags in plan:
        slugs[title] = (await create_article(client, author, title=title, tagList=tags))["slug"]
    for title in ("A1", "B1", "A3"):
        await client.post(f"/api/articles/{slugs[title]}/favorite", headers=carol.headers)
    await client.post(f"/api/articles/{slugs['A3']}/favorite", headers=bob.headers)
    await client.post("/api/profiles/alice/follow", headers=carol.headers)
    await client.post("/api/profiles/bob/follow", headers=carol.headers)
    return {"alice": alice, "bob": bob, "carol": carol, "slugs": slugs}


def _titles(body: dict[str, Any]) -> list[str]:
    return [a["title"] for a in body["articles"]]


class TestListArticles:
    @pytest.mark.parametrize(
        ("query", "titles"),
        [
            ("", ["A3", "B2", "C1", "A2", "B1", "A1"]),
            ("?tag=python", ["A3", "C1", "B1", "A1"]),
            ("?author=alice", ["A3", "A2", "A1"]),
            ("?favorited=carol", ["A3", "B1", "A1"]),
            ("?tag=async&author=alice", ["A3", "A2"]),
            ("?tag=python&favorited=carol", ["A3", "B1", "A1"]),
            ("?author=bob&favorited=carol", ["B1"]),
            ("?tag=async&author=alice&favorited=bob", ["A3"]),
            ("?tag=nope", []),
            ("?author=nobody", []),
            ("?favorited=alice", []),
        ],
    )
    async def test_filters_combine(
        self, client: httpx.AsyncClient, library: dict[str, Any], query: str, titles: list[str]
    ) -> None:
        response = await client.get(f"/api/articles{query}")
        assert response.status_code == 200
        body = response.json()
        assert _titles(body) == titles
        assert body["articlesCount"] == len(titles)

    async def test_count_is_the_total_not_the_page(
        self, client: httpx.AsyncClient, library: dict[str, Any]
    ) -> None:
        page = (await client.get("/api/articles?limit=2&offset=1")).json()
        assert _titles(page) == ["B2", "C1"]
        assert page["articlesCount"] == 6
        past_end = (await client.get("/api/articles?offset=10")).json()
        assert past_end == {"articles": [], "articlesCount": 6}

    async def test_list_items_have_no_body(
        self, client: httpx.AsyncClient, library: dict[str, Any]
    ) -> None:
        articles = (await client.get("/api/articles")).json()["articles"]
        assert all("body" not in a for a in articles)

    async def test_viewer_flags(self, client: httpx.AsyncClient, library: dict[str, Any]) -> None:
        carol: Account = library["carol"]
        articles = (await client.get("/api/articles", headers=carol.headers)).json()["articles"]
        flags = {a["title"]: (a["favorited"], a["author"]["following"]) for a in articles}
        assert flags["A3"] == (True, True)
        assert flags["A2"] == (False, True)
        assert flags["C1"] == (False, False)
        counts = {a["title"]: a["favoritesCount"] for a in articles}
        assert counts == {"A3": 2, "B2": 0, "C1": 0, "A2": 0, "B1": 1, "A1": 1}

    async def test_default_limit_is_20(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        for n in range(21):
            await create_article(client, alice, title=f"n{n}")
        body = (await client.get("/api/articles")).json()
        assert len(body["articles"]) == 20
        assert body["articlesCount"] == 21

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=-1", "limit"),
            ("limit=abc", "limit"),
            ("offset=-1", "offset"),
            ("offset=1.5", "offset"),
        ],
    )
    async def test_bad_paging_is_422(
        self, client: httpx.AsyncClient, query: str, field: str
    ) -> None:
        for path in ("/api/articles",):
            response = await client.get(f"{path}?{query}")
            assert response.status_code == 422
            assert list(response.json()["errors"]) == [field]


class TestFeed:
    async def test_articles_of_followed_authors_newest_first(
        self, client: httpx.AsyncClient, library: dict[str, Any]
    ) -> None:
        carol: Account = library["carol"]
        body = (await client.get("/api/articles/feed", headers=carol.headers)).json()
        assert _titles(body) == ["A3", "B2", "A2", "B1", "A1"]
        assert body["articlesCount"] == 5
        page = (
            await client.get("/api/articles/feed?limit=2&offset=2", headers=carol.headers)
        ).json()
        assert _titles(page) == ["A2", "B1"]
        assert page["articlesCount"] == 5
        assert all(a["author"]["following"] for a in body["articles"])

    async def test_empty_when_following_nobody(
        self, client: httpx.AsyncClient, library: dict[str, Any]
    ) -> None:
        alice: Account = library["alice"]
        body = (await client.get("/api/articles/feed", headers=alice.headers)).json()
        assert body == {"articles": [], "articlesCount": 0}

    async def test_needs_a_token(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/api/articles/feed")).status_code == 401

    async def test_bad_paging_is_422(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        response = await client.get("/api/articles/feed?limit=500", headers=alice.headers)
        assert response.status_code == 422


async def test_finding_the_slugs_a_title_collides_with_reads_indexes_not_tables(
    app: FastAPI, backend: str
) -> None:
    """A new article's slug is checked against those in use and retired.

    That lookup walked every article on PostgreSQL (``LIKE`` cannot use a
    btree index under a linguistic collation) and on SQLite (its ``LIKE``
    ignores case, so it never uses one): a create cost a scan of the whole
    table. Table scans are priced out here, so a plan that still has one
    has no index to take instead. MariaDB's ``LIKE 'prefix%'`` reads a range
    of the unique index.
    """
    db = wired(app, Database)
    async with db.session() as session:
        statement = slugs_like_statement(dialect_of(session), "hello-world", exclude_id=7)
        if backend == "postgresql":
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = await _plan(session, "EXPLAIN", statement)
            assert "Seq Scan" not in plan, plan
        elif backend == "sqlite":
            plan = await _plan(session, "EXPLAIN QUERY PLAN", statement)
            assert " SCAN " not in plan, plan  # a walk of a table or of a whole index
        else:
            rows = (await session.execute(text(f"EXPLAIN {_literal(session, statement)}"))).all()
            assert all(row._mapping["type"] not in {"ALL", "index"} for row in rows), rows


def _literal(session: Any, statement: Any) -> str:
    compiled = statement.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
    )
    return str(compiled)


async def _plan(session: Any, explain: str, statement: Any) -> str:
    rows = (await session.execute(text(f"{explain} {_literal(session, statement)}"))).all()
    return "\n".join(" ".join(str(value) for value in row) for row in rows)
