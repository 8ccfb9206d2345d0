"""Slugs: derived from the title in its own script, unique.

Letters, digits and combining marks of every script are kept, lower-cased
(``Straße`` → ``straße``, ``Привет мир`` → ``привет-мир``); everything else
becomes one ``-``. On the wire a slug is percent-encoded like any other
non-ASCII path. A collision gets ``-2``, ``-3``…; a writer that loses a
race for a slug takes a random suffix instead, so concurrent writers of one
title never contend for the same next number.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError

from asyncpress.core.db_faults import FAULTS, chain, deadlocked
from asyncpress.core.uow import Database, UnitOfWork

T = TypeVar("T")

MAX_BASE_LENGTH = 200
_KEPT = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd", "Nl", "No", "Mn", "Mc", "Me"})


def slugify(title: str) -> str:
    text = unicodedata.normalize("NFKC", title).lower()
    words: list[str] = []
    word: list[str] = []
    for char in text:
        if unicodedata.category(char) in _KEPT:
            word.append(char)
        elif word:
            words.append("".join(word))
            word = []
    if word:
        words.append("".join(word))
    slug = "-".join(words)[:MAX_BASE_LENGTH].rstrip("-")
    return slug or "article"


def first_free(base: str, taken: set[str], *, contended: bool = False) -> str:
    """``base`` if free, else ``base-N`` with the smallest free N ≥ 2.

    ``contended``: a concurrent writer took what we picked last time; the
    next number would race again, so take a random suffix.
    """
    if base not in taken:
        return base
    if contended:
        while (slug := f"{base}-{secrets.token_hex(4)}") in taken:
            pass
        return slug
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


# A concurrent writer may take the slug we picked between our read and our
# insert; the unique constraint catches it and we pick again, with a random
# suffix (first_free), which a second race is all but sure to miss.
SLUG_ATTEMPTS = 5
_UNIQUE_VIOLATION = "23505"


def slug_taken(exc: BaseException) -> bool:
    """Whether ``exc`` is a unique slug's violation, however the driver was reached."""
    if isinstance(exc, IntegrityError):
        return "slug" in str(exc.orig).lower()
    # A driver-direct statement (fast.rows) raises asyncpg's own error.
    return any(
        getattr(cause, "sqlstate", None) == _UNIQUE_VIOLATION and "slug" in str(cause).lower()
        for cause in chain(exc)
    )


# Runs of a write the database chose as a deadlock victim, the first included.
VICTIM_ATTEMPTS = 3
# The most a victim waits before it runs again (times the runs it lost), so
# that the writers it met do not meet again in the same order.
VICTIM_PAUSE_S = 0.02


async def retrying_slug(attempt: Callable[[bool], Awaitable[T]]) -> T:
    """Run ``attempt`` (a whole unit of work), again if its slug was taken.

    ``attempt`` is told whether its last pick was lost to a concurrent
    writer. A transaction the database chose as a deadlock victim is run
    again, up to ``VICTIM_ATTEMPTS`` runs in all, after a short random
    pause: writers of the same tags can meet in a cycle of waits the
    database breaks by rolling one back whole (InnoDB's next-key locks on
    tag names; on PostgreSQL, the queue of waiters on a hot tag's row,
    which the one-statement create's own foreign-key check can join), so
    running it again is safe. Then the client gets 503 with Retry-After.
    """
    lost = 0
    victims = 0
    while True:
        try:
            return await attempt(lost > 0)
        except FAULTS as exc:
            if slug_taken(exc):
                lost += 1
                if lost == SLUG_ATTEMPTS:
                    raise
            elif deadlocked(exc) and victims + 1 < VICTIM_ATTEMPTS:
                victims += 1
                # Not a secret: only spreads the runs out.
                await asyncio.sleep(random.random() * VICTIM_PAUSE_S * victims)  # noqa: S311
            else:
                raise


async def write_retrying_slug(db: Database, write: Callable[[UnitOfWork, bool], Awaitable[T]]) -> T:
    """``retrying_slug`` for a write in a unit of work; ``write`` commits."""

    async def attempt(contended: bool) -> T:
        async with db.write() as uow:
            return await write(uow, contended)

    return await retrying_slug(attempt)


async def write_again_if_victim(db: Database, write: Callable[[UnitOfWork], Awaitable[T]]) -> T:
    """A unit of work that picks no slug, run again if it was a deadlock's victim."""
    return await write_retrying_slug(db, lambda uow, _contended: write(uow))
