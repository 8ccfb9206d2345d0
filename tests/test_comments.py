from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.factories import add_comment, create_article, register
from tests.support.app import row_count


class TestAddComment:
    async def test_adds_a_comment(self, client: httpx.AsyncClient) -> None:
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        slug = (await create_article(client, alice))["slug"]
        response = await client.post(
            f"/api/articles/{slug}/comments",
            json={"comment": {"body": "His name was my name too."}},
            headers=bob.headers,
        )
        assert response.status_code == 200
        comment = response.json()["comment"]
        assert comment["body"] == "His name was my name too."
        assert comment["author"]["username"] == "bob"
        assert isinstance(comment["id"], int)

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"comment": {"body": "  "}}, "body"),
            ({"comment": {}}, "body"),
            ({"comment": {"body": "x" * 10_001}}, "body"),
            ({"body": "unwrapped"}, "comment"),
        ],
    )
    async def test_bad_body_is_refused_and_nothing_is_written(
        self, client: httpx.AsyncClient, app: FastAPI, payload: object, field: str
    ) -> None:
        alice = await register(client)
        slug = (await create_article(client, alice))["slug"]
        response = await client.post(
            f"/api/articles/{slug}/comments", json=payload, headers=alice.headers
        )
        assert response.status_code == 422
        assert field in response.json()["errors"]
        assert await row_count(app, "comments") == 0

    async def test_unknown_article_is_404_and_needs_token(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        body = {"comment": {"body": "hi"}}
        missing = await client.post("/api/articles/nope/comments", json=body, headers=alice.headers)
        assert missing.status_code == 404
        slug = (await create_article(client, alice))["slug"]
        anon = await client.post(f"/api/articles/{slug}/comments", json=body)
        assert anon.status_code == 401


class TestListComments:
    async def test_newest_first_with_viewer_following(self, client: httpx.AsyncClient) -> None:
        alice = await register(client, "alice")
        bob = await register(client, "bob")
        slug = (await create_article(client, alice))["slug"]
        for text in ("first", "second", "third"):
            await add_comment(client, bob, slug, text)
        await client.post("/api/profiles/bob/follow", headers=alice.headers)
        comments = (
            await client.get(f"/api/articles/{slug}/comments", headers=alice.headers)
        ).json()["comments"]
        assert [c["body"] for c in comments] == ["third", "second", "first"]
        assert all(c["author"]["following"] for c in comments)
        anon = (await client.get(f"/api/articles/{slug}/comments")).json()["comments"]
        assert not any(c["author"]["following"] for c in anon)

    async def test_unknown_article_is_404(self, client: httpx.AsyncClient) -> None:
        assert (await client.get("/api/articles/nope/comments")).status_code == 404

    async def test_an_article_without_comments_has_an_empty_list(
        self, client: httpx.AsyncClient
    ) -> None:
        alice = await register(client, "alice")
        slug = (await create_article(client, alice))["slug"]
        response = await client.get(f"/api/articles/{slug}/comments", headers=alice.headers)
        assert response.status_code == 200
        assert response.json() == {"comments": []}

    async def test_pages_and_a_page_past_the_last_comment(self, client: httpx.AsyncClient) -> None:
        alice = await register(client, "alice")
        slug = (await create_article(client, alice))["slug"]
        for text in ("first", "second", "third"):
            await add_comment(client, alice, slug, text)

        async def page(query: str) -> list[str]:
            response = await client.get(f"/api/articles/{slug}/comments?{query}")
            assert response.status_code == 200, response.text
            return [c["body"] for c in response.json()["comments"]]

        assert await page("limit=2") == ["third", "second"]
        assert await page("limit=2&offset=2") == ["first"]
        assert await page("offset=3") == []
        assert await page("offset=50") == []

    async def test_a_retired_slug_still_lists_the_comments(self, client: httpx.AsyncClient) -> None:
        alice = await register(client, "alice")
        old = (await create_article(client, alice))["slug"]
        await add_comment(client, alice, old, "still here")
        renamed = await client.put(
            f"/api/articles/{old}",
            json={"article": {"title": "A brand new title"}},
            headers=alice.headers,
        )
        assert renamed.json()["article"]["slug"] != old
        response = await client.get(f"/api/articles/{old}/comments")
        assert [c["body"] for c in response.json()["comments"]] == ["still here"]


class TestDeleteComment:
    async def test_author_deletes_their_comment(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        slug = (await create_article(client, alice))["slug"]
        comment = await add_comment(client, alice, slug)
        response = await client.delete(
            f"/api/articles/{slug}/comments/{comment['id']}", headers=alice.headers
        )
        assert response.status_code == 204
        assert await row_count(app, "comments") == 0

    async def test_cannot_delete_someone_elses_comment(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        bob = await register(client)
        slug = (await create_article(client, alice))["slug"]
        comment = await add_comment(client, bob, slug)
        # Not even the article's author may delete another person's comment.
        response = await client.delete(
            f"/api/articles/{slug}/comments/{comment['id']}", headers=alice.headers
        )
        assert response.status_code == 403
        assert response.json() == {"errors": {"comment": ["belongs to another author"]}}
        assert await row_count(app, "comments") == 1

    async def test_unknown_or_misplaced_comment_is_404(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        first = (await create_article(client, alice))["slug"]
        second = (await create_article(client, alice))["slug"]
        comment = await add_comment(client, alice, first)
        for path in (
            f"/api/articles/{first}/comments/999999",
            f"/api/articles/{second}/comments/{comment['id']}",
            f"/api/articles/nope/comments/{comment['id']}",
        ):
            response = await client.delete(path, headers=alice.headers)
            assert response.status_code == 404, path

    async def test_non_integer_id_is_422_and_needs_token(self, client: httpx.AsyncClient) -> None:
        alice = await register(client)
        slug = (await create_article(client, alice))["slug"]
        response = await client.delete(f"/api/articles/{slug}/comments/abc", headers=alice.headers)
        assert response.status_code == 422
        assert response.json() == {"errors": {"id": ["must be an integer"]}}
        comment = await add_comment(client, alice, slug)
        anon = await client.delete(f"/api/articles/{slug}/comments/{comment['id']}")
        assert anon.status_code == 401
