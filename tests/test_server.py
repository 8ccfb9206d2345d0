"""A front end's whole journey against a real ``asyncpress serve`` process over TCP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from servers.postgres import free_port

from tests.support import contract, live
from tests.support.http import TLS, preflight
from tests.support.live import Served


async def test_front_end_journey(server: str) -> None:
    async with httpx.AsyncClient(
        base_url=f"{server}/api", event_hooks={"response": [contract.hook]}, verify=TLS, timeout=10
    ) as api:
        asked = await preflight(api, "/users", "POST", "content-type")
        assert asked.headers["access-control-allow-origin"] == "http://localhost:4200"

        jake = {"username": "jake", "email": "jake@jake.jake", "password": "jakejake"}
        assert (await api.post("/users", json={"user": jake})).status_code == 201
        login = await api.post(
            "/users/login", json={"user": {"email": jake["email"], "password": jake["password"]}}
        )
        auth = {"Authorization": f"Token {login.json()['user']['token']}"}
        assert (await api.get("/user", headers=auth)).json()["user"]["username"] == "jake"
        updated = await api.put(
            "/user", json={"user": {"bio": "I like to skateboard"}}, headers=auth
        )
        assert updated.json()["user"]["bio"] == "I like to skateboard"

        reader = {"username": "reader", "email": "reader@example.com", "password": "readerpass"}
        reader_token = (await api.post("/users", json={"user": reader})).json()["user"]["token"]
        reader_auth = {"Authorization": f"Token {reader_token}"}
        followed = await api.post("/profiles/jake/follow", headers=reader_auth)
        assert followed.json()["profile"]["following"] is True

        article = {
            "title": "How to train your dragon",
            "description": "Ever wonder how?",
            "body": "Very carefully.",
            "tagList": ["training", "dragons"],
        }
        created = await api.post("/articles", json={"article": article}, headers=auth)
        assert created.status_code == 201
        slug = created.json()["article"]["slug"]

        feed = (await api.get("/articles/feed", headers=reader_auth)).json()
        assert [a["slug"] for a in feed["articles"]] == [slug]
        for query in ("", "?author=jake", "?tag=dragons"):
            listed = (await api.get(f"/articles{query}", headers=reader_auth)).json()
            assert listed["articlesCount"] == 1
        favorited = await api.post(f"/articles/{slug}/favorite", headers=reader_auth)
        assert favorited.json()["article"]["favoritesCount"] == 1
        assert (await api.get("/articles?favorited=reader")).json()["articlesCount"] == 1

        comment = await api.post(
            f"/articles/{slug}/comments",
            json={"comment": {"body": "Thank you so much!"}},
            headers=reader_auth,
        )
        comment_id = comment.json()["comment"]["id"]
        comments = (await api.get(f"/articles/{slug}/comments")).json()["comments"]
        assert [c["id"] for c in comments] == [comment_id]
        assert (
            await api.delete(f"/articles/{slug}/comments/{comment_id}", headers=auth)
        ).status_code == 403
        assert (
            await api.delete(f"/articles/{slug}/comments/{comment_id}", headers=reader_auth)
        ).status_code == 204

        edited = await api.put(
            f"/articles/{slug}",
            json={"article": {"title": "Did you train your dragon?"}},
            headers=auth,
        )
        new_slug = edited.json()["article"]["slug"]
        assert new_slug == "did-you-train-your-dragon"
        assert (await api.delete(f"/articles/{new_slug}/favorite", headers=reader_auth)).json()[
            "article"
        ]["favoritesCount"] == 0
        assert (await api.get("/tags")).json()["tags"] == ["dragons", "training"]
        assert (await api.delete(f"/articles/{new_slug}", headers=auth)).status_code == 204
        assert (await api.get(f"/articles/{new_slug}")).status_code == 404
        assert (await api.delete("/profiles/jake/follow", headers=reader_auth)).json()["profile"][
            "following"
        ] is False


def test_a_server_is_ready_only_when_its_own_process_listens(
    migrated_sqlite: str, tmp_path: Path
) -> None:
    # Two test workers can be handed the same free port. The second server then
    # fails to bind, and the first one's health check must not pass for it.
    url = migrated_sqlite
    first = Served(url, tmp_path, "first")
    try:
        with pytest.raises(RuntimeError, match="not listening"):
            Served(url, tmp_path, "second", port=str(first.port))
    finally:
        first.process.stop(timeout=15)


def test_a_server_handed_a_taken_port_moves_to_another(
    migrated_sqlite: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = migrated_sqlite
    first = Served(url, tmp_path, "first")
    try:
        ports = iter([first.port])  # the collision: the first port offered is taken
        monkeypatch.setattr(live, "free_port", lambda: next(ports, None) or free_port())
        second = Served(url, tmp_path, "second")
        try:
            assert second.port != first.port
            assert httpx.get(f"{second.base}/api/health", verify=TLS, timeout=5).is_success
        finally:
            second.process.stop(timeout=15)
    finally:
        first.process.stop(timeout=15)
