from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.factories import register
from tests.support.app import row_count


class TestGetProfile:
    async def test_anonymous_view(self, client: httpx.AsyncClient) -> None:
        await register(client, "alice")
        response = await client.get("/api/profiles/alice")
        assert response.status_code == 200
        assert response.json() == {
            "profile": {"username": "alice", "bio": "", "image": None, "following": False}
        }

    async def test_unknown_user_is_404(self, client: httpx.AsyncClient) -> None:
        response = await client.get("/api/profiles/nobody")
        assert response.status_code == 404
        assert response.json() == {"errors": {"profile": ["not found"]}}

    async def test_bad_token_on_optional_auth_is_401(self, client: httpx.AsyncClient) -> None:
        await register(client, "alice")
        response = await client.get("/api/profiles/alice", headers={"Authorization": "Token nope"})
        assert response.status_code == 401


class TestFollow:
    async def test_follow_and_unfollow_are_idempotent(
        self, client: httpx.AsyncClient, app: FastAPI
    ) -> None:
        await register(client, "alice")
        bob = await register(client, "bob")
        for _ in range(2):
            response = await client.post("/api/profiles/alice/follow", headers=bob.headers)
            assert response.status_code == 200
            assert response.json()["profile"]["following"] is True
        assert await row_count(app, "follows") == 1
        seen = await client.get("/api/profiles/alice", headers=bob.headers)
        assert seen.json()["profile"]["following"] is True
        for _ in range(2):
            response = await client.delete("/api/profiles/alice/follow", headers=bob.headers)
            assert response.status_code == 200
            assert response.json()["profile"]["following"] is False
        assert await row_count(app, "follows") == 0

    async def test_following_is_per_viewer(self, client: httpx.AsyncClient) -> None:
        await register(client, "alice")
        bob = await register(client, "bob")
        carol = await register(client, "carol")
        await client.post("/api/profiles/alice/follow", headers=bob.headers)
        seen = await client.get("/api/profiles/alice", headers=carol.headers)
        assert seen.json()["profile"]["following"] is False

    async def test_cannot_follow_oneself(self, client: httpx.AsyncClient, app: FastAPI) -> None:
        alice = await register(client, "alice")
        response = await client.post("/api/profiles/alice/follow", headers=alice.headers)
        assert response.status_code == 422
        assert "username" in response.json()["errors"]
        assert await row_count(app, "follows") == 0

    async def test_unknown_user_is_404(self, client: httpx.AsyncClient) -> None:
        bob = await register(client, "bob")
        for method in ("POST", "DELETE"):
            response = await client.request(
                method, "/api/profiles/nobody/follow", headers=bob.headers
            )
            assert response.status_code == 404

    async def test_needs_a_token(self, client: httpx.AsyncClient) -> None:
        await register(client, "alice")
        for method in ("POST", "DELETE"):
            response = await client.request(method, "/api/profiles/alice/follow")
            assert response.status_code == 401
