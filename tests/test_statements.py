"""Statements per request: every list endpoint runs as many whatever the page
size, every endpoint keeps to its budget, and the event pump reads nothing
while no stream is open."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from asyncpress.core.uow import Database
from asyncpress.events import journal
from asyncpress.events.hub import BACKGROUND, Hub
from tests.factories import Account, add_comment, create_article, register
from tests.support.app import count_statements, wired

# Enough that the large page holds many of everything (authors, tags, favorites).
ARTICLES = 25


@pytest.fixture
async def crowd(client: httpx.AsyncClient) -> dict[str, object]:
    authors = [await register(client) for _ in range(4)]
    reader = await register(client)
    for author in authors:
        await client.post(f"/api/profiles/{author.username}/follow", headers=reader.headers)
    slugs = []
    for n in range(ARTICLES):
        author = authors[n % len(authors)]
        created = await create_article(client, author, tagList=[f"t{n % 7}", f"u{n % 3}"])
        slugs.append(created["slug"])
        if n % 2:
            await client.post(f"/api/articles/{created['slug']}/favorite", headers=reader.headers)
    for n in range(ARTICLES):
        await add_comment(client, authors[n % len(authors)], slugs[0], f"comment {n}")
    return {"reader": reader, "slug": slugs[0]}


async def _statements(app: FastAPI, client: httpx.AsyncClient, url: str, account: Account) -> int:
    with count_statements(app) as counter:
        response = await client.get(url, headers=account.headers)
    assert response.status_code == 200
    return counter.count


@pytest.mark.parametrize(
    ("path", "size_key"),
    [
        ("/api/articles", "articles"),
        ("/api/articles?tag=t1", "articles"),
        ("/api/articles/feed", "articles"),
        ("/api/articles/{slug}/comments", "comments"),
    ],
)
async def test_constant_statements_for_limit_1_and_100(
    app: FastAPI, client: httpx.AsyncClient, crowd: dict[str, object], path: str, size_key: str
) -> None:
    reader = crowd["reader"]
    assert isinstance(reader, Account)
    url = path.format(slug=crowd["slug"])
    sep = "&" if "?" in url else "?"
    small = await _statements(app, client, f"{url}{sep}limit=1", reader)
    large_url = f"{url}{sep}limit=100"
    large = await _statements(app, client, large_url, reader)
    body = (await client.get(large_url, headers=reader.headers)).json()
    assert len(body[size_key]) > 1  # the large page really is large
    assert small == large
    assert large <= 2


# Statements per request, authentication included (BEGIN/COMMIT not counted).
# Writes read the caller's account (1): in a short session of their own, or
# (a favorite, a comment) in the write's unit, or with the article on PostgreSQL.
# Writes that log a live event insert it (1); on PostgreSQL the same
# statement takes the event log's advisory lock (events.journal).
BUDGET = {
    "POST /users": 2,
    "POST /users/login": 1,
    "GET /user": 1,
    "PUT /user": 3,
    "GET /profiles/{username}": 1,
    # The caller, the followee (the response is built from it), the row;
    # a follow also its mail and its event (POSTGRESQL: at once).
    "POST /profiles/{username}/follow": 5,
    "DELETE /profiles/{username}/follow": 3,
    # Its tags: known ones read (1); new ones added and read back (2 more);
    # their use counts, one UPDATE (executemany). Here all three are new.
    "POST /articles": 9,
    "GET /articles": 1,
    "GET /articles/feed": 1,
    "GET /articles/{slug}": 1,
    # A new title retires the old slug (one INSERT); new tags: links removed
    # (DELETE … RETURNING), added, use counts changed (one UPDATE, executemany).
    "PUT /articles/{slug}": 13,
    # The article read once, before the write (the response is built from it
    # and the new count); then the row, the count, the author's row (whom a
    # notification goes to) and the event (POSTGRESQL: all of it at once).
    "POST /articles/{slug}/favorite": 6,
    "DELETE /articles/{slug}/favorite": 6,
    "POST /articles/{slug}/comments": 5,
    # The article by its slug and its page of comments in one statement.
    "GET /articles/{slug}/comments": 1,
    "DELETE /articles/{slug}/comments/{id}": 5,
    "GET /tags": 1,
    # Tag links removed first (DELETE … RETURNING), then their use counts (UPDATE).
    "DELETE /articles/{slug}": 7,
}
# Where PostgreSQL needs fewer (CTEs that write): a favorite's row, count,
# event and notification are one statement, sent outside a transaction
# block (articles.favorites), so not even BEGIN and COMMIT go with it; so
# are a follow's row, event and mail, an unfollow (profiles.following), a
# comment with its event and mail (comments.posting) and a new article with
# its tags and event (articles.creating).
POSTGRESQL = {
    # The article with the caller beside it, then the write.
    "POST /articles/{slug}/favorite": 2,
    "DELETE /articles/{slug}/favorite": 2,
    # The followee with the caller beside it, then the write (profiles.following).
    "POST /profiles/{username}/follow": 2,
    "DELETE /profiles/{username}/follow": 2,
    "POST /articles/{slug}/comments": 2,  # the article, its author and the caller; the write
    # The slugs taken and the caller, then the article, its tags and their
    # counts, and its event (articles.creating).
    "POST /articles": 2,
}
# Where MySQL/MariaDB need more: every write that logs an event takes the
# event order's row lock first (one upsert, events.journal); a favorite moves
# the count before the row (the article's lock first: no deadlock with the
# row's foreign-key check) and reads the count back (no UPDATE … RETURNING).
MYSQL = {
    "POST /profiles/{username}/follow": 6,
    "POST /articles": 9,  # every tag upserted, known or not (set_tags)
    # Tags whose counts move are locked by name first (articles.repository.
    # _lock_by_name): the names of those an edit or a delete drops, read (1),
    # are upserted with the new ones, and a delete upserts its own (1).
    "PUT /articles/{slug}": 14,
    "POST /articles/{slug}/favorite": 8,
    "DELETE /articles/{slug}/favorite": 8,
    "POST /articles/{slug}/comments": 6,
    "DELETE /articles/{slug}/comments/{id}": 6,
    "DELETE /articles/{slug}": 10,
}
EXTRA = {"postgresql": POSTGRESQL, "mariadb": MYSQL}


async def test_statement_budget_per_endpoint(
    app: FastAPI, client: httpx.AsyncClient, backend: str
) -> None:
    measured: dict[str, int] = {}

    async def call(name: str, path: str, **kwargs: object) -> httpx.Response:
        method = name.split(maxsplit=1)[0]
        with count_statements(app) as counter:
            response = await client.request(method, f"/api{path}", **kwargs)  # type: ignore[arg-type]
        assert response.status_code < 300, (name, response.text)
        measured[name] = counter.count
        return response

    user = {"username": "ann", "email": "ann@example.com", "password": "password1"}
    token = (await call("POST /users", "/users", json={"user": user})).json()["user"]["token"]
    ann = {"Authorization": f"Token {token}"}
    ben = (await register(client, "ben")).headers
    await call("POST /users/login", "/users/login", json={"user": user})
    await call("GET /user", "/user", headers=ann)
    await call("PUT /user", "/user", json={"user": {"bio": "hello"}}, headers=ann)
    await call("GET /profiles/{username}", "/profiles/ann", headers=ben)
    await call("DELETE /profiles/{username}/follow", "/profiles/ann/follow", headers=ben)
    await call("POST /profiles/{username}/follow", "/profiles/ann/follow", headers=ben)
    article = {"title": "T", "description": "d", "body": "b", "tagList": ["x", "y", "z"]}
    await call("POST /articles", "/articles", json={"article": article}, headers=ann)
    await call("POST /articles/{slug}/favorite", "/articles/t/favorite", headers=ben)
    await call("GET /articles", "/articles?tag=x&author=ann&favorited=ben", headers=ben)
    await call("GET /articles/feed", "/articles/feed", headers=ben)
    await call("GET /articles/{slug}", "/articles/t", headers=ben)
    edit = {"article": {"title": "T2", "tagList": ["q"]}}
    await call("PUT /articles/{slug}", "/articles/t", json=edit, headers=ann)
    await call("DELETE /articles/{slug}/favorite", "/articles/t2/favorite", headers=ben)
    comment = await call(
        "POST /articles/{slug}/comments",
        "/articles/t2/comments",
        json={"comment": {"body": "c"}},
        headers=ben,
    )
    await call("GET /articles/{slug}/comments", "/articles/t2/comments", headers=ann)
    comment_id = comment.json()["comment"]["id"]
    await call(
        "DELETE /articles/{slug}/comments/{id}", f"/articles/t2/comments/{comment_id}", headers=ben
    )
    await call("GET /tags", "/tags")
    await call("DELETE /articles/{slug}", "/articles/t2", headers=ann)
    assert measured == {**BUDGET, **EXTRA.get(backend, {})}


async def test_with_no_stream_open_the_event_pump_reads_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """Every commit wakes the pump; with nobody to deliver to, its pass costs no query."""
    hub = wired(app, Hub)
    assert not hub.connections
    ann = await register(client, "ann")
    await create_article(client, ann, title="t")
    engine = wired(app, Database).engine.sync_engine
    background: list[str] = []

    def record(_c: Any, _k: Any, statement: str, _p: Any, context: Any, _m: bool) -> None:
        if context.execution_options.get(BACKGROUND):
            background.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        passes = hub.passes
        favorited = await client.post("/api/articles/t/favorite", headers=ann.headers)
        assert favorited.status_code == 200
        async with asyncio.timeout(5):
            while hub.passes == passes:  # noqa: ASYNC110 - the pump's own pace
                await asyncio.sleep(0.01)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert background == []
    # A subscription waits for a pass that brings the cursor to the log's head.
    await hub.catch_up()
    async with wired(app, Database).sessionmaker() as session:
        _, head = await journal.bounds(session)
    assert head > 0
    assert hub.cursor == head
