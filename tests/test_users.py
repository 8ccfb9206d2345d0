from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from argon2 import PasswordHasher as Argon2Hasher
from argon2 import extract_parameters
from fastapi import FastAPI
from servers.processes import TEST_SECRET
from sqlalchemy import select, update

from asyncpress.core.config import Settings
from asyncpress.core.security import Passwords, TokenError, Tokens
from asyncpress.core.uow import Database
from asyncpress.users.models import User
from asyncpress.users.service import Accounts
from tests.factories import Account, register, wrapped
from tests.support.app import row_count, wired

NEW_USER = {"username": "jake", "email": "jake@jake.jake", "password": "jakejake"}


def _with(**changes: Any) -> dict[str, Any]:
    return wrapped("user", NEW_USER, **changes)


class TestRegister:
    async def test_registers_and_returns_a_usable_token(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/users", json=_with())
        assert response.status_code == 201
        user = response.json()["user"]
        assert user["username"] == "jake"
        assert user["email"] == "jake@jake.jake"
        assert user["bio"] == ""
        assert user["image"] is None
        me = await client.get("/api/user", headers={"Authorization": f"Token {user['token']}"})
        assert me.json()["user"]["username"] == "jake"

    async def test_email_is_stored_lower_case(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/users", json=_with(email="Jake@Jake.JAKE"))
        assert response.json()["user"]["email"] == "jake@jake.jake"

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"username": "JAKE", "email": "other@x.io"}, "username"),
            ({"username": "jacob", "email": "JAKE@jake.jake"}, "email"),
        ],
    )
    async def test_taken_username_or_email_is_refused(
        self, client: httpx.AsyncClient, app: FastAPI, changes: dict[str, str], field: str
    ) -> None:
        await client.post("/api/users", json=_with())
        response = await client.post("/api/users", json=_with(**changes))
        assert response.status_code == 422
        assert response.json() == {"errors": {field: ["has already been taken"]}}
        assert await row_count(app, "users") == 1

    @pytest.mark.parametrize(
        ("changes", "field", "message"),
        [
            ({"username": None}, "username", "can't be blank"),
            ({"email": None}, "email", "can't be blank"),
            ({"password": None}, "password", "can't be blank"),
            ({"username": "   "}, "username", "can't be blank"),
            ({"email": ""}, "email", "can't be blank"),
            ({"username": "x" * 65}, "username", "is too long (maximum is 64 characters)"),
            ({"username": "has space"}, "username", "is invalid"),
            ({"email": "not-an-email"}, "email", "is invalid"),
            ({"password": "short"}, "password", "is too short (minimum is 8 characters)"),
            ({"password": "p" * 257}, "password", "is too long (maximum is 256 characters)"),
            ({"username": 42}, "username", "must be a string"),
        ],
    )
    async def test_bad_fields_are_refused_and_nothing_is_written(
        self,
        client: httpx.AsyncClient,
        app: FastAPI,
        changes: dict[str, Any],
        field: str,
        message: str,
    ) -> None:
        response = await client.post("/api/users", json=_with(**changes))
        assert response.status_code == 422
        assert response.json()["errors"][field] == [message]
        assert await row_count(app, "users") == 0

    async def test_missing_wrapper_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/users", json=NEW_USER)
        assert response.status_code == 422
        assert response.json() == {"errors": {"user": ["can't be blank"]}}

    async def test_invalid_json_is_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post(
            "/api/users", content=b'{"user": ', headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422
        assert response.json() == {"errors": {"body": ["is not valid JSON"]}}


class TestLogin:
    async def test_logs_in_with_the_right_password(self, client: httpx.AsyncClient) -> None:
        account = await register(client, "alice")
        response = await client.post(
            "/api/users/login",
            json={"user": {"email": account.email.upper(), "password": account.password}},
        )
        assert response.status_code == 200
        assert response.json()["user"]["username"] == "alice"

    async def test_wrong_password_and_unknown_email_look_the_same(
        self, client: httpx.AsyncClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        account = await register(client, "alice")
        passwords = wired(app, Accounts).passwords
        checked: list[str] = []
        original = passwords._check

        def counting_check(stored_hash: str, password: str) -> bool:
            checked.append(stored_hash)
            return original(stored_hash, password)

        monkeypatch.setattr(passwords, "_check", counting_check)
        wrong = await client.post(
            "/api/users/login", json={"user": {"email": account.email, "password": "nope-nope"}}
        )
        unknown = await client.post(
            "/api/users/login", json={"user": {"email": "ghost@example.com", "password": "x"}}
        )
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json() == unknown.json() == {"errors": {"email or password": ["is invalid"]}}
        # Both paths ran one full argon2 verification, so both cost the same.
        assert len(checked) == 2
        assert all(h.startswith("$argon2id$") for h in checked)

    async def test_a_hash_made_with_other_parameters_is_made_again_at_login(
        self, client: httpx.AsyncClient, app: FastAPI, settings: Settings
    ) -> None:
        account = await register(client, "alice")
        # As an older release (or other ARGON2_* settings) stored it.
        older = Argon2Hasher(time_cost=3, memory_cost=128, parallelism=2).hash(account.password)
        await _set_hash(app, account.username, older)

        def login(password: str) -> Any:
            body = {"user": {"email": account.email, "password": password}}
            return client.post("/api/users/login", json=body)

        # A wrong password changes nothing.
        assert (await login("not the password")).status_code == 401
        assert await _stored_hash(app, account.username) == older

        assert (await login(account.password)).status_code == 200
        renewed = await _stored_hash(app, account.username)
        assert renewed != older
        assert extract_parameters(renewed) == extract_parameters(
            Argon2Hasher(
                time_cost=settings.argon2_time_cost,
                memory_cost=settings.argon2_memory_kib,
                parallelism=settings.argon2_parallelism,
            ).hash("x")
        )
        # The new hash verifies, and is not made again.
        assert (await login(account.password)).status_code == 200
        assert await _stored_hash(app, account.username) == renewed

    def test_the_default_parameters_are_owasps_minimum(self) -> None:
        defaults = Settings(environment="development")
        assert (
            defaults.argon2_memory_kib,
            defaults.argon2_time_cost,
            defaults.argon2_parallelism,
        ) == (19 * 1024, 2, 1)

    async def test_missing_fields_are_refused(self, client: httpx.AsyncClient) -> None:
        response = await client.post("/api/users/login", json={"user": {"email": ""}})
        assert response.status_code == 422
        assert set(response.json()["errors"]) == {"email", "password"}


async def _set_hash(app: FastAPI, username: str, password_hash: str) -> None:
    async with wired(app, Database).sessionmaker() as session:
        await session.execute(
            update(User).where(User.username == username).values(password_hash=password_hash)
        )
        await session.commit()


async def _stored_hash(app: FastAPI, username: str) -> str:
    async with wired(app, Database).sessionmaker() as session:
        stored = await session.scalar(select(User.password_hash).where(User.username == username))
        assert stored is not None
        return stored


def _token(claims: dict[str, Any], secret: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


class TestCurrentUser:
    async def test_returns_the_caller(self, client: httpx.AsyncClient) -> None:
        account = await register(client, "alice")
        response = await client.get("/api/user", headers=account.headers)
        assert response.status_code == 200
        assert response.json()["user"] == {
            "email": account.email,
            "token": account.token,
            "username": "alice",
            "bio": "",
            "image": None,
        }

    async def test_bearer_scheme_is_accepted_too(self, client: httpx.AsyncClient) -> None:
        account = await register(client)
        response = await client.get(
            "/api/user", headers={"Authorization": f"Bearer {account.token}"}
        )
        assert response.status_code == 200

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "Token",
            "Token ",
            "Basic dXNlcjpwYXNz",
            "Token not.a.jwt",
            "Token " + _token({"sub": "1", "exp": datetime.now(UTC) - timedelta(seconds=5)}),
            "Token "
            + _token({"sub": "1", "exp": datetime.now(UTC) + timedelta(hours=1)}, "wrong" * 8),
            "Token "
            + _token({"sub": "1", "exp": datetime.now(UTC) + timedelta(hours=1)}, "", "none"),
            "Token " + _token({"sub": "1"}),
            "Token " + _token({"sub": "999999", "exp": datetime.now(UTC) + timedelta(hours=1)}),
        ],
        ids=[
            "missing",
            "scheme-only",
            "empty",
            "basic",
            "garbage",
            "expired",
            "wrong-signature",
            "alg-none",
            "no-expiry",
            "unknown-user",
        ],
    )
    async def test_bad_tokens_get_401(self, client: httpx.AsyncClient, header: str | None) -> None:
        await register(client)  # user 1 exists, so only the token itself is at fault
        headers = {"Authorization": header} if header is not None else {}
        response = await client.get("/api/user", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Token"
        assert "token" in response.json()["errors"]


class TestUpdateUser:
    async def test_updates_profile_fields(self, client: httpx.AsyncClient) -> None:
        account = await register(client, "alice")
        response = await client.put(
            "/api/user",
            json={"user": {"bio": "I like to skateboard", "image": "https://img.example/a.png"}},
            headers=account.headers,
        )
        assert response.status_code == 200
        user = response.json()["user"]
        assert user["bio"] == "I like to skateboard"
        assert user["image"] == "https://img.example/a.png"
        profile = await client.get("/api/profiles/alice")
        assert profile.json()["profile"]["bio"] == "I like to skateboard"

    async def test_changes_username_email_and_password(self, client: httpx.AsyncClient) -> None:
        account = await register(client, "alice")
        response = await client.put(
            "/api/user",
            json={
                "user": {"username": "alicia", "email": "New@Example.com", "password": "new pass 1"}
            },
            headers=account.headers,
        )
        assert response.status_code == 200
        assert response.json()["user"]["username"] == "alicia"
        assert response.json()["user"]["email"] == "new@example.com"
        login = await client.post(
            "/api/users/login",
            json={"user": {"email": "new@example.com", "password": "new pass 1"}},
        )
        assert login.status_code == 200
        old = await client.post(
            "/api/users/login",
            json={"user": {"email": "new@example.com", "password": account.password}},
        )
        assert old.status_code == 401

    async def test_image_can_be_cleared(self, client: httpx.AsyncClient) -> None:
        account = await register(client)
        await client.put(
            "/api/user",
            json={"user": {"image": "https://i.example/x.png"}},
            headers=account.headers,
        )
        response = await client.put(
            "/api/user", json={"user": {"image": ""}}, headers=account.headers
        )
        assert response.json()["user"]["image"] is None

    async def test_taken_username_is_refused_and_nothing_changes(
        self, client: httpx.AsyncClient
    ) -> None:
        await register(client, "alice")
        bob = await register(client, "bob")
        response = await client.put(
            "/api/user", json={"user": {"username": "Alice", "bio": "new"}}, headers=bob.headers
        )
        assert response.status_code == 422
        assert response.json() == {"errors": {"username": ["has already been taken"]}}
        me = await client.get("/api/user", headers=bob.headers)
        assert me.json()["user"]["username"] == "bob"
        assert me.json()["user"]["bio"] == ""

    @pytest.mark.parametrize(
        ("user", "field"),
        [
            ({"image": "javascript:alert(1)"}, "image"),
            ({"email": "nope"}, "email"),
            ({"password": "short"}, "password"),
            ({"bio": "b" * 2001}, "bio"),
            ({"username": ""}, "username"),
        ],
    )
    async def test_bad_fields_are_refused(
        self, client: httpx.AsyncClient, user: dict[str, str], field: str
    ) -> None:
        account = await register(client)
        response = await client.put("/api/user", json={"user": user}, headers=account.headers)
        assert response.status_code == 422
        assert field in response.json()["errors"]

    async def test_needs_a_token(self, client: httpx.AsyncClient) -> None:
        response = await client.put("/api/user", json={"user": {"bio": "x"}})
        assert response.status_code == 401

    async def test_keeping_ones_own_username_is_not_a_conflict(
        self, client: httpx.AsyncClient
    ) -> None:
        account: Account = await register(client, "alice")
        response = await client.put(
            "/api/user",
            json={"user": {"username": "alice", "email": account.email}},
            headers=account.headers,
        )
        assert response.status_code == 200


@pytest.mark.parametrize("sched_idle", [True, False])
async def test_passwords_are_hashed_in_their_own_low_priority_threads(sched_idle: bool) -> None:
    settings = Settings(
        environment="development",
        argon2_time_cost=1,
        argon2_memory_kib=64,
        hash_concurrency=2,
        hash_nice=7,
        hash_sched_idle=sched_idle,
    )
    before = set(threading.enumerate())  # other apps' pools may still be winding down
    passwords = Passwords(settings)
    try:
        stored = await asyncio.gather(*(passwords.hash(f"secret {n}") for n in range(4)))
        assert await passwords.verify(stored[0], "secret 0")
        assert not await passwords.verify(stored[0], "secret 1")
        hashing = [t for t in set(threading.enumerate()) - before if t.name.startswith("argon2")]
        assert 1 <= len(hashing) <= 2
        for thread in hashing:
            assert thread.native_id is not None
            assert os.getpriority(os.PRIO_PROCESS, thread.native_id) == 7
            policy = os.SCHED_IDLE if sched_idle else os.SCHED_OTHER
            assert os.sched_getscheduler(thread.native_id) == policy
        # The event loop's own thread keeps its priority.
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == 0
        assert os.sched_getscheduler(threading.get_native_id()) == os.SCHED_OTHER
    finally:
        passwords.close()


class TestRememberedTokens:
    def test_a_remembered_token_still_expires(self) -> None:
        tokens = Tokens(TEST_SECRET, ttl_s=60)
        expires = int(time.time()) + 2  # JWT expiries are whole seconds
        token = tokens.issue(7, now=datetime.fromtimestamp(expires - 60, UTC))
        assert tokens.user_id(token) == 7  # verified, then remembered
        assert tokens.user_id(token) == 7
        time.sleep(expires - time.time() + 0.05)
        with pytest.raises(TokenError):
            tokens.user_id(token)

    def test_a_bad_token_is_never_remembered_and_memory_is_bounded(self) -> None:
        tokens = Tokens(TEST_SECRET, ttl_s=60)
        tokens.REMEMBERED = 3
        issued = [tokens.issue(n) for n in range(1, 6)]
        assert [tokens.user_id(t) for t in issued] == [1, 2, 3, 4, 5]
        assert len(tokens._verified) == 3
        forged = Tokens("another secret " + "x" * 32, ttl_s=60).issue(1)
        for _ in range(2):
            with pytest.raises(TokenError):
                tokens.user_id(forged)
        assert forged not in tokens._verified
