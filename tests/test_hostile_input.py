"""What real clients and hostile ones send: a clear 4xx in the envelope, nothing changed.

Every case runs on SQLite and PostgreSQL; each was a 500, a redirect, a
stored NUL or a silently different rule before it was fixed.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from servers.processes import TEST_SECRET
from sqlalchemy import delete

from asyncpress.core.uow import Database
from asyncpress.users.models import User
from tests.factories import Account, add_comment, create_article, register
from tests.support.app import row_count, wired

NUL = "\x00"


def _token_for(sub: str) -> dict[str, str]:
    now = datetime.now(UTC)
    claims = {"sub": sub, "iat": now, "exp": now + timedelta(hours=1)}
    return {"Authorization": f"Token {jwt.encode(claims, TEST_SECRET, algorithm='HS256')}"}


class TestRealFrontEnds:
    async def test_settings_form_with_an_empty_password_keeps_the_password(
        self, client: httpx.AsyncClient
    ) -> None:
        alice = await register(client, password="the old password")
        form = {
            "user": {
                "username": alice.username,
                "email": alice.email,
                "bio": "new bio",
                "image": "",
                "password": "",
            }
        }
        response = await client.put("/api/user", json=form, headers=alice.headers)
        assert response.status_code == 200, response.text
        assert response.json()["user"]["bio"] == "new bio"
        login = {"user": {"email": alice.email, "password": "the old password"}}
        assert (await client.post("/api/users/login", json=login)).status_code == 200

    @pytest.mark.parametrize("field", ["username", "email"])
    async def test_a_blank_username_or_email_is_still_refused(
        self, client: httpx.AsyncClient, field: str
    ) -> None:
        alice = await register(client)
        response = await client.put(
            "/api/user", json={"user": {field: "", "password": ""}}, headers=alice.headers
        )
        assert response.status_code == 422
        assert response.json() == {"errors": {field: ["can't be blank"]}}

    async def test_every_route_answers_with_a_trailing_slash_without_redirecting(
        self, client: httpx.AsyncClient
    ) -> None:
        alice = await register(client)
        article = {"article": {"title": "Slash", "description": "d", "body": "b"}}
        created = await client.post("/api/articles/", json=article, headers=alice.headers)
        assert created.status_code == 201, created.text
        slug = created.json()["article"]["slug"]
        for method, path in [
            ("GET", "/api/articles/"),
            ("GET", f"/api/articles/{slug}/"),
            ("GET", f"/api/articles/{slug}/comments/"),
            ("GET", "/api/tags/"),
            ("GET", "/api/user/"),
            ("GET", f"/api/profiles/{alice.username}/"),
            ("POST", f"/api/articles/{slug}/favorite/"),
        ]:
            response = await client.request(method, path, headers=alice.headers)
            assert response.status_code == 200, (method, path, response.status_code)
        deleted = await client.delete(f"/api/articles/{slug}/", headers=alice.headers)
        assert deleted.status_code == 204

    async def test_an_unknown_route_with_a_slash_is_a_404_in_the_envelope(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.get("/api/nowhere/")
        assert response.status_code == 404
        assert "errors" in response.json()


class TestUnicodeSlugs:
    async def test_a_title_in_another_script_is_served_under_its_own_slug(
        self, client: httpx.AsyncClient
    ) -> None:
        alice = await register(client)
        created = await create_article(client, alice, title="Новости дня")
        assert created["slug"] == "новости-дня"
        # httpx percent-encodes the path, as a browser does.
        response = await client.get(f"/api/articles/{created['slug']}")
        assert response.status_code == 200
        assert response.json()["article"]["title"] == "Новости дня"

    async def test_an_old_slug_keeps_answering_after_a_title_edit(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice, bob = await register(client), await register(client)
        old = (await create_article(client, alice, title="First name"))["slug"]
        renamed = await client.put(
            f"/api/articles/{old}",
            json={"article": {"title": "Second name"}},
            headers=alice.headers,
        )
        new = renamed.json()["article"]["slug"]
        assert new == "second-name"
        # Reads, comments, favorites and edits through the old slug reach the article.
        got = await client.get(f"/api/articles/{old}")
        assert got.status_code == 200
        assert got.json()["article"]["slug"] == new
        await add_comment(client, bob, old, "still here")
        comments = await client.get(f"/api/articles/{old}/comments")
        assert [c["body"] for c in comments.json()["comments"]] == ["still here"]
        favorited = await client.post(f"/api/articles/{old}/favorite", headers=bob.headers)
        assert favorited.json()["article"]["favoritesCount"] == 1
        edited = await client.put(
            f"/api/articles/{old}", json={"article": {"body": "edited"}}, headers=alice.headers
        )
        assert edited.json()["article"]["slug"] == new
        # The anonymous read through the old slug is not cached past the edit.
        assert (await client.get(f"/api/articles/{old}")).json()["article"]["body"] == "edited"
        # A new article with the old title never takes the retired slug.
        again = await create_article(client, bob, title="First name")
        assert again["slug"] != old
        assert (await client.get(f"/api/articles/{old}")).json()["article"]["slug"] == new
        # Deleting through the old slug deletes the article; both slugs are then gone.
        assert (
            await client.delete(f"/api/articles/{old}", headers=alice.headers)
        ).status_code == 204
        assert (await client.get(f"/api/articles/{old}")).status_code == 404
        assert (await client.get(f"/api/articles/{new}")).status_code == 404
        assert await row_count(app, "article_slugs") == 0

    async def test_an_article_can_take_back_its_own_old_title(
        self, client: httpx.AsyncClient
    ) -> None:
        alice = await register(client)
        slug = (await create_article(client, alice, title="Back and forth"))["slug"]
        for title, expected in [("Elsewhere", "elsewhere"), ("Back and forth", slug)]:
            response = await client.put(
                f"/api/articles/{slug}", json={"article": {"title": title}}, headers=alice.headers
            )
            assert response.json()["article"]["slug"] == expected


class TestNulCharacters:
    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            (
                "/api/articles",
                {"article": {"title": f"a{NUL}b", "description": "d", "body": "b"}},
                "title",
            ),
            ("/api/articles", {"article": {"title": "t", "description": "d", "body": NUL}}, "body"),
            (
                "/api/articles",
                {
                    "article": {
                        "title": "t",
                        "description": "d",
                        "body": "b",
                        "tagList": [f"x{NUL}"],
                    }
                },
                "tagList",
            ),
        ],
    )
    async def test_nul_in_an_article_is_refused_and_nothing_is_stored(
        self, client: httpx.AsyncClient, app: FastAPI, path: str, body: dict[str, Any], field: str
    ) -> None:
        alice = await register(client)
        response = await client.post(path, json=body, headers=alice.headers)
        assert response.status_code == 422
        assert response.json() == {"errors": {field: ["must not contain NUL characters"]}}
        assert await row_count(app, "articles") == 0

    async def test_nul_in_a_comment_bio_email_or_render_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        slug = (await create_article(client, alice))["slug"]
        cases = [
            ("POST", f"/api/articles/{slug}/comments", {"comment": {"body": NUL}}, "body"),
            ("PUT", "/api/user", {"user": {"bio": f"hi{NUL}"}}, "bio"),
            ("PUT", "/api/user", {"user": {"email": f"a{NUL}@example.com"}}, "email"),
            ("POST", "/api/render", {"markdown": NUL}, "markdown"),
        ]
        for method, path, body, field in cases:
            response = await client.request(method, path, json=body, headers=alice.headers)
            assert response.status_code == 422, (path, response.text)
            assert response.json() == {"errors": {field: ["must not contain NUL characters"]}}
        register_body = {"user": {"username": "x", "email": f"x{NUL}@e.com", "password": "p" * 8}}
        refused = await client.post("/api/users", json=register_body)
        assert refused.status_code == 422
        assert await row_count(app, "comments") == 0
        assert await row_count(app, "users") == 1

    @pytest.mark.parametrize(
        ("url", "field"),
        [
            ("/api/articles?tag=%00", "query"),
            ("/api/articles?author=a%00b", "query"),
            ("/api/articles/a%00b", "path"),
            ("/api/profiles/%00", "path"),
            ("/api/link-preview?url=http://a%00.example/", "query"),
        ],
    )
    async def test_nul_in_a_query_or_path_is_refused(
        self, client: httpx.AsyncClient, url: str, field: str
    ) -> None:
        response = await client.get(url)
        assert response.status_code == 422
        assert response.json() == {"errors": {field: ["must not contain NUL characters"]}}


class TestIntegerRanges:
    @pytest.mark.parametrize(
        "query",
        ["offset=2147483648", f"offset={2**63}", f"offset={2**64}", "limit=2147483648"],
    )
    async def test_paging_past_any_column_is_422(
        self, client: httpx.AsyncClient, query: str
    ) -> None:
        response = await client.get(f"/api/articles?{query}")
        assert response.status_code == 422
        assert set(response.json()["errors"]) <= {"offset", "limit"}

    async def test_the_largest_offset_is_an_empty_page(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/articles?offset=2147483647")
        assert response.status_code == 200
        assert response.json()["articles"] == []

    @pytest.mark.parametrize("comment_id", ["2147483648", str(2**63), "0", "-1"])
    async def test_a_comment_id_past_the_column_is_422(
        self, client: httpx.AsyncClient, comment_id: str
    ) -> None:
        alice = await register(client)
        slug = (await create_article(client, alice))["slug"]
        response = await client.delete(
            f"/api/articles/{slug}/comments/{comment_id}", headers=alice.headers
        )
        assert response.status_code == 422
        assert list(response.json()["errors"]) == ["id"]

    @pytest.mark.parametrize("sub", ["2147483648", str(2**63), "0", "-5", "1e3", "abc"])
    async def test_a_token_naming_an_impossible_id_is_401(
        self, client: httpx.AsyncClient, sub: str
    ) -> None:
        for path in ("/api/user", "/api/articles"):
            response = await client.get(path, headers=_token_for(sub))
            assert response.status_code == 401, (path, response.text)
            assert response.json() == {"errors": {"token": ["is invalid or expired"]}}

    @pytest.mark.parametrize("value", [str(2**63), "9" * 5000, "²", "١٢"])
    async def test_a_last_event_id_past_the_column_is_422(
        self, client: httpx.AsyncClient, value: str
    ) -> None:
        response = await client.get(
            "/api/events?channels=global", headers={b"Last-Event-ID": value.encode()}
        )
        assert response.status_code == 422
        assert list(response.json()["errors"]) == ["Last-Event-ID"]
        query = await client.get(f"/api/events?channels=global&lastEventId={2**63}")
        assert query.status_code == 422


class TestTokensOfMissingAccounts:
    async def test_a_token_of_an_account_that_does_not_exist_is_401_everywhere(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        alice = await register(client)
        slug = (await create_article(client, alice))["slug"]
        ghost = _token_for("4242")
        for method, path in [
            ("GET", "/api/user"),
            ("GET", "/api/articles"),
            ("GET", f"/api/articles/{slug}"),
            ("GET", f"/api/articles/{slug}/comments"),
            ("GET", f"/api/profiles/{alice.username}"),
            ("GET", "/api/articles/feed"),
            ("POST", "/api/events/ticket"),
            ("POST", f"/api/articles/{slug}/favorite"),
        ]:
            response = await client.request(method, path, headers=ghost)
            assert response.status_code == 401, (method, path, response.text)
            assert response.json() == {
                "errors": {"token": ["names an account that does not exist"]}
            }
        assert await row_count(app, "event_tickets") == 0

    async def test_a_write_by_an_account_removed_by_hand_is_401(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        """The process remembers accounts it has seen (the API never deletes
        one); a favorite, a comment, a follow or a new article reads its caller
        with what it writes, and a row removed behind its back is refused, not
        a 500."""
        alice, bob = await register(client), await register(client)
        slug = (await create_article(client, alice))["slug"]
        favorite = f"/api/articles/{slug}/favorite"
        assert (await client.post(favorite, headers=bob.headers)).status_code == 200
        async with wired(app, Database).engine.begin() as connection:
            await connection.execute(delete(User).where(User.username == bob.username))
        comment = {"json": {"comment": {"body": "from a ghost"}}}
        article = {"json": {"article": {"title": "t", "description": "d", "body": "b"}}}
        for method, path, extra in [
            ("POST", favorite, {}),
            ("DELETE", favorite, {}),
            ("POST", f"/api/articles/{slug}/comments", comment),
            ("POST", "/api/articles", article),
            ("POST", f"/api/profiles/{alice.username}/follow", {}),
            ("DELETE", f"/api/profiles/{alice.username}/follow", {}),
        ]:
            response = await client.request(method, path, headers=bob.headers, **extra)  # type: ignore[arg-type]
            assert response.status_code == 401, (method, path, response.text)
            assert response.json() == {
                "errors": {"token": ["names an account that does not exist"]}
            }


class TestImportBodies:
    @pytest.mark.parametrize(
        ("body", "content_type"),
        [
            (b'{"articles": [{"title": "\xff\xfe"}]}', "application/json"),
            (gzip.compress(json.dumps({"articles": []}).encode(), mtime=0), "application/json"),
            (gzip.compress(b'{"title": "t"}\n', mtime=0), "application/x-ndjson"),
            (b"[" * 100_000, "application/json"),
            (b'{"articles": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "application/json"),
            (b"[" * 100_000 + b"\n", "application/x-ndjson"),
        ],
        ids=["invalid-utf8", "gzip-json", "gzip-ndjson", "deep", "deep-closed", "deep-ndjson"],
    )
    async def test_an_unreadable_import_is_400_and_imports_nothing(
        self, client: httpx.AsyncClient, app: FastAPI, body: bytes, content_type: str
    ) -> None:
        alice = await register(client)
        response = await client.post(
            "/api/articles/import",
            content=body,
            headers={**alice.headers, "Content-Type": content_type},
        )
        assert response.status_code == 400, response.text
        assert list(response.json()["errors"]) in (["body"], ["articles[0]"])
        assert await row_count(app, "articles") == 0

    @pytest.mark.parametrize(
        "body",
        [b'{"user": "\xff"}', gzip.compress(b'{"user": {}}', mtime=0), b"[" * 100_000],
        ids=["invalid-utf8", "gzip", "deep"],
    )
    async def test_an_unreadable_json_body_elsewhere_is_a_4xx(
        self, client: httpx.AsyncClient, body: bytes
    ) -> None:
        response = await client.post(
            "/api/users", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code in (400, 422)
        assert "errors" in response.json()

    @pytest.mark.parametrize(
        ("path", "body"),
        [
            ("/api/users", b'{"user": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
            ("/api/users/login", b"{" * 50_000),
            ("/api/articles", b'{"article": {"tagList": ' + b"[" * 5_000),
        ],
        ids=["register", "login", "article"],
    )
    async def test_a_deeply_nested_body_is_refused_before_it_is_parsed(
        self, client: httpx.AsyncClient, app: FastAPI, path: str, body: bytes
    ) -> None:
        alice = await register(client)
        headers = {**alice.headers, "Content-Type": "application/json"}
        response = await client.post(path, content=body, headers=headers)
        assert response.status_code == 400
        assert response.json() == {"errors": {"body": ["is nested too deeply"]}}
        assert await row_count(app, "users") == 1
        assert await row_count(app, "articles") == 0

    async def test_a_deep_body_without_a_json_type_is_not_parsed_at_all(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        # FastAPI reads only JSON-typed bodies as JSON; the gate checks those.
        response = await client.post("/api/users", content=b"[" * 100_000)
        assert response.status_code == 422, response.text
        assert "errors" in response.json()
        assert await row_count(app, "users") == 0


class TestUsernamesAcrossScripts:
    @pytest.mark.parametrize(
        ("first", "second"),
        [("Éxabc", "éXABC"), ("Straße", "STRASSE"), ("ΣΊΣΥΦΟΣ", "σίσυφος"), ("Jake", "jake")],
    )
    async def test_names_that_differ_only_by_case_clash_on_every_backend(
        self, client: httpx.AsyncClient, app: FastAPI, first: str, second: str
    ) -> None:
        await register(client, username=first)
        response = await client.post(
            "/api/users",
            json={"user": {"username": second, "email": "other@example.com", "password": "p" * 8}},
        )
        assert response.status_code == 422
        assert response.json() == {"errors": {"username": ["has already been taken"]}}
        assert await row_count(app, "users") == 1

    async def test_renaming_to_a_folded_twin_is_refused(self, client: httpx.AsyncClient) -> None:
        await register(client, username="Éxabc")
        bob: Account = await register(client)
        response = await client.put(
            "/api/user", json={"user": {"username": "éXABC"}}, headers=bob.headers
        )
        assert response.status_code == 422
        assert response.json() == {"errors": {"username": ["has already been taken"]}}
