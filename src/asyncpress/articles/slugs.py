"""Slugs: derived from the title in its own script, unique.

Letters, digits and combining marks of every script are kept, lower-cased
(``Straße`` → ``straße``, ``Привет мир`` → ``привет-мир``); everything else
becomes one ``-``. On the wire a slug is percent-encoded like any other
non-ASCII path. A collision gets ``-2``, ``-3``…; a writer that loses a
race for a slug takes a random suffix instead, so concurrent writers of one
title never contend for the same next number.
"""

from __future__ import annotations

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


async def retrying_slug(attempt: Callable[[bool], Awaitable[T]]) -> T:
    """Run ``attempt`` (a whole unit of work), again if its slug was taken.

    ``attempt`` is told whether its last pick was lost to a concurrent
    writer. A transaction the database chose as a deadlock victim is run
    again once: these writes upsert tags by their unique name, where
    InnoDB's duplicate-key checks take next-key locks that two creates with
    overlapping new tags can hold against each other (the victim's whole
    transaction is rolled back, so running it again is safe).
    """
    lost = 0
    victim_again = True
    while True:
        try:
            return await attempt(lost > 0)
        except FAULTS as exc:
            if slug_taken(exc):
                lost += 1
                if lost == SLUG_ATTEMPTS:
                    raise
            elif victim_again and deadlocked(exc):
                victim_again = False
            else:
                raise


async def write_retrying_slug(db: Database, write: Callable[[UnitOfWork, bool], Awaitable[T]]) -> T:
    """``retrying_slug`` for a write in a unit of work; ``write`` commits."""

    async def attempt(contended: bool) -> T:
        async with db.write() as uow:
            return await write(uow, contended)

    return await retrying_slug(attempt)
