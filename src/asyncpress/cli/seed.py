"""Realistic demo data, written with multi-row batch inserts.

Users, tags, articles (1 to 3 tags each), comments, follows and favorites,
all drawn from one seeded random generator so that a given ``--seed`` gives
the same data set. One transaction: a failed seed leaves nothing behind.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.articles.models import Article, Favorite
from asyncpress.articles.slugs import first_free, slugify
from asyncpress.comments.models import Comment
from asyncpress.core.db.base import utcnow
from asyncpress.core.db.bulk import Progress, insert_rows, no_progress, table_of
from asyncpress.core.db.engine import begin_write
from asyncpress.profiles.models import Follow
from asyncpress.tags import uses as tag_uses
from asyncpress.tags.models import Tag, article_tags
from asyncpress.users.models import User, fold

SEED_PASSWORD = "password123"  # noqa: S105 - documented demo credential

FIRST = [
    "ada",
    "alan",
    "barbara",
    "claude",
    "donald",
    "edsger",
    "frances",
    "grace",
    "guido",
    "hedy",
    "ivan",
    "james",
    "jean",
    "john",
    "katherine",
    "ken",
    "leslie",
    "linus",
    "margaret",
    "niklaus",
    "radia",
    "richard",
    "rob",
    "shafi",
    "tim",
    "tony",
    "ward",
    "yukihiro",
]
LAST = [
    "lovelace",
    "turing",
    "liskov",
    "shannon",
    "knuth",
    "dijkstra",
    "allen",
    "hopper",
    "rossum",
    "lamarr",
    "sutherland",
    "gosling",
    "sammet",
    "backus",
    "johnson",
    "thompson",
    "lamport",
    "torvalds",
    "hamilton",
    "wirth",
    "perlman",
    "stallman",
    "pike",
    "goldwasser",
    "berners",
    "hoare",
    "cunningham",
    "matsumoto",
]
WORDS = [
    "async",
    "await",
    "event",
    "loop",
    "python",
    "coroutine",
    "database",
    "query",
    "index",
    "cache",
    "latency",
    "throughput",
    "queue",
    "worker",
    "stream",
    "socket",
    "request",
    "response",
    "schema",
    "migration",
    "transaction",
    "commit",
    "rollback",
    "pool",
    "connection",
    "timeout",
    "deadline",
    "cancel",
    "retry",
    "backoff",
    "batch",
    "cursor",
    "server",
    "client",
    "proxy",
    "thread",
    "process",
    "signal",
    "memory",
    "profile",
    "benchmark",
    "test",
    "deploy",
    "scale",
    "shard",
    "replica",
    "lock",
    "journal",
    "log",
    "metric",
    "trace",
    "span",
    "notify",
    "publish",
    "subscribe",
    "channel",
    "buffer",
]
TAGS = [
    "python",
    "asyncio",
    "fastapi",
    "sqlalchemy",
    "postgresql",
    "sqlite",
    "redis",
    "testing",
    "performance",
    "design",
    "architecture",
    "devops",
    "security",
    "api",
    "web",
    "http",
    "websockets",
    "databases",
    "caching",
    "queues",
    "tutorial",
    "beginners",
    "career",
    "opensource",
    "linux",
    "docker",
    "kubernetes",
    "rust",
    "go",
    "javascript",
    "typescript",
    "react",
    "vue",
    "angular",
    "css",
    "html",
    "cloud",
    "aws",
    "serverless",
    "ml",
    "data",
    "observability",
    "logging",
    "debugging",
    "refactoring",
    "review",
    "productivity",
    "writing",
    "startups",
    "music",
    "books",
    "travel",
]


@dataclass
class SeedReport:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _sentence(rng: random.Random, low: int, high: int) -> str:
    words = rng.choices(WORDS, k=rng.randint(low, high))
    return " ".join(words).capitalize()


def _paragraphs(rng: random.Random, count: int) -> str:
    return "\n\n".join(
        ". ".join(_sentence(rng, 6, 14) for _ in range(rng.randint(2, 4))) + "."
        for _ in range(count)
    )


@dataclass
class _Plan:
    """Sizes and the shared random state of one seeding run."""

    rng: random.Random
    now: datetime
    users: int
    articles: int
    comments: int
    favorites: int
    follows: int
    progress: Progress


async def _seed_users(session: AsyncSession, plan: _Plan, password_hash: str) -> list[int]:
    rng = plan.rng
    existing = {n.lower() for n in (await session.execute(select(User.username))).scalars()}
    rows: list[dict[str, Any]] = []
    serial = 0
    while len(rows) < plan.users:
        serial += 1
        name = f"{rng.choice(FIRST)}_{rng.choice(LAST)}{serial}"
        if name in existing:
            continue
        joined = plan.now - timedelta(days=rng.uniform(30, 730))
        rows.append(
            {
                "username": name,
                "username_key": fold(name),
                "email": f"{name}@example.com",
                "password_hash": password_hash,
                "bio": _sentence(rng, 4, 12) + ".",
                "image": None,
                "created_at": joined,
                "updated_at": joined,
            }
        )
    return await insert_rows(session, table_of(User), rows, plan.progress, returning_ids=True)


async def _seed_tags(session: AsyncSession, plan: _Plan) -> dict[str, int]:
    rows = [{"name": t} for t in TAGS]
    await insert_rows(session, table_of(Tag), rows, plan.progress, ignore_conflicts=True)
    found = await session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(TAGS)))
    return {row[0]: row[1] for row in found.all()}


async def _seed_articles(
    session: AsyncSession, plan: _Plan, user_ids: list[int], fav_counts: Counter[int]
) -> tuple[list[int], list[datetime]]:
    rng = plan.rng
    taken = set((await session.execute(select(Article.slug))).scalars().all())
    rows: list[dict[str, Any]] = []
    created_times: list[datetime] = []
    for idx in range(plan.articles):
        title = _sentence(rng, 3, 8)
        slug = first_free(slugify(title), taken)
        taken.add(slug)
        created = plan.now - timedelta(seconds=rng.uniform(0, 365 * 86400))
        created_times.append(created)
        rows.append(
            {
                "slug": slug,
                "title": title,
                "description": _sentence(rng, 6, 14) + ".",
                "body": _paragraphs(rng, rng.randint(1, 3)),
                "author_id": rng.choice(user_ids),
                "favorites_count": fav_counts.get(idx, 0),
                "created_at": created,
                "updated_at": created,
            }
        )
    ids = await insert_rows(session, table_of(Article), rows, plan.progress, returning_ids=True)
    return ids, created_times


async def _seed_article_tags(
    session: AsyncSession,
    plan: _Plan,
    article_ids: list[int],
    created_times: list[datetime],
    tag_ids: dict[str, int],
) -> int:
    # A few tags are far more popular than the rest, as on a real site.
    weights = [1.0 / (rank + 1) for rank in range(len(TAGS))]
    rows: list[dict[str, Any]] = []
    for article_id, created in zip(article_ids, created_times, strict=True):
        chosen = set(plan.rng.choices(TAGS, weights=weights, k=plan.rng.randint(1, 3)))
        rows.extend(
            {"article_id": article_id, "tag_id": tag_ids[name], "article_created_at": created}
            for name in chosen
        )
    await insert_rows(session, article_tags, rows, plan.progress)
    await tag_uses.add(session, tag_uses.linked(rows))
    return len(rows)


async def _seed_comments(
    session: AsyncSession,
    plan: _Plan,
    user_ids: list[int],
    article_ids: list[int],
    created_times: list[datetime],
) -> int:
    rng = plan.rng
    rows: list[dict[str, Any]] = []
    for _ in range(plan.comments if article_ids else 0):
        idx = rng.randrange(len(article_ids))
        delay = timedelta(seconds=rng.uniform(60, 30 * 86400))
        at = min(plan.now, created_times[idx] + delay)
        rows.append(
            {
                "body": _sentence(rng, 5, 25) + ".",
                "article_id": article_ids[idx],
                "author_id": rng.choice(user_ids),
                "created_at": at,
                "updated_at": at,
            }
        )
    await insert_rows(session, table_of(Comment), rows, plan.progress)
    return len(rows)


async def _seed_follows(session: AsyncSession, plan: _Plan, user_ids: list[int]) -> int:
    pairs: set[tuple[int, int]] = set()
    if len(user_ids) > 1:
        for _ in range(plan.follows):
            a, b = plan.rng.sample(user_ids, 2)
            pairs.add((a, b))
    rows = [{"follower_id": a, "followee_id": b, "created_at": plan.now} for a, b in sorted(pairs)]
    await insert_rows(session, table_of(Follow), rows, plan.progress, ignore_conflicts=True)
    return len(rows)


async def seed(
    session: AsyncSession,
    *,
    password_hash: str,
    users: int,
    articles: int,
    comments: int,
    favorites: int,
    follows: int,
    seed_value: int,
    progress: Progress = no_progress,
) -> SeedReport:
    started = time.perf_counter()
    plan = _Plan(
        random.Random(seed_value), utcnow(), users, articles, comments, favorites, follows, progress
    )
    report = SeedReport()
    await begin_write(session)
    user_ids = await _seed_users(session, plan, password_hash)
    report.counts["users"] = len(user_ids)
    tag_ids = await _seed_tags(session, plan)
    # Favorites are drawn first so each article is written with its count.
    pairs = (
        {(plan.rng.randrange(users), plan.rng.randrange(articles)) for _ in range(favorites)}
        if articles
        else set()
    )
    fav_counts = Counter(article_idx for _, article_idx in pairs)
    article_ids, created = await _seed_articles(session, plan, user_ids, fav_counts)
    report.counts["articles"] = len(article_ids)
    report.counts["article_tags"] = await _seed_article_tags(
        session, plan, article_ids, created, tag_ids
    )
    report.counts["comments"] = await _seed_comments(session, plan, user_ids, article_ids, created)
    favorite_rows = [
        {"user_id": user_ids[u], "article_id": article_ids[a], "created_at": plan.now}
        for u, a in sorted(pairs)
    ]
    await insert_rows(session, table_of(Favorite), favorite_rows, progress)
    report.counts["favorites"] = len(favorite_rows)
    report.counts["follows"] = await _seed_follows(session, plan, user_ids)
    await session.commit()
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        # Fresh statistics after a bulk load; without them the planner guesses
        # and picks plans for an empty table.
        await session.execute(text("ANALYZE"))
        await session.commit()
    report.seconds = time.perf_counter() - started
    return report
