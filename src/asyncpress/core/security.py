"""Tokens and passwords.

JWTs are HS256 with an expiry, decoded against a fixed algorithm list.
Password hashing (argon2id) is CPU work: it runs in a pool of its own worker
threads (``HASH_CONCURRENCY`` of them), never on the event loop. Those threads
run at the lowest CPU priority (``HASH_NICE``, 19, and Linux's ``SCHED_IDLE``
policy, ``HASH_SCHED_IDLE``), so that on a busy CPU the event loop, which
answers every other request, runs first and logins use the CPU it leaves
(docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import jwt
from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from asyncpress.core.config import Settings
from asyncpress.core.schemas import MAX_INT32

ALGORITHM = "HS256"
T = TypeVar("T")


def _lower_priority(nice: int, sched_idle: bool) -> None:
    """Lower the calling thread's CPU priority (Linux: niceness and policy are per thread).

    Under ``SCHED_IDLE`` a thread runs when nothing else wants the CPU, and
    a waking thread of any other policy preempts it at once: the event loop
    answers a request at once even while a hash runs on its core. Niceness
    alone lets the hash finish its time slice first (docs/benchmarks.md).
    """
    tid = threading.get_native_id()
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    if sched_idle:
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))


class TokenError(Exception):
    pass


class Tokens:
    """JWTs (HS256) naming a user, valid for ``ttl_s``.

    A token that verified once is remembered with its user and expiry, so a
    client's next requests skip the signature check and JSON parsing (a
    sizeable part of a signed-in read's CPU, docs/benchmarks.md). The same string
    verifies the same way every time, and the expiry is checked on every
    use; the memory is bounded (``REMEMBERED``, oldest forgotten first).
    """

    REMEMBERED = 10_000

    def __init__(self, secret: str, ttl_s: int) -> None:
        self._secret = secret
        self._ttl = timedelta(seconds=ttl_s)
        self._verified: dict[str, tuple[int, float]] = {}
        # Users whose row this process has seen. The API never deletes an
        # account, so once seen a user stays there; a token naming any other
        # id is checked against the database before it is believed.
        self._existing: dict[int, None] = {}

    def seen(self, user_id: int) -> bool:
        return user_id in self._existing

    def saw(self, user_id: int) -> None:
        if len(self._existing) >= self.REMEMBERED:
            del self._existing[next(iter(self._existing))]
        self._existing[user_id] = None

    def issue(self, user_id: int, now: datetime | None = None) -> str:
        issued = now or datetime.now(UTC)
        self.saw(user_id)  # tokens are issued for rows just read or written
        claims = {"sub": str(user_id), "iat": issued, "exp": issued + self._ttl}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def user_id(self, token: str) -> int:
        known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            return known[0]
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
            )
            user_id, expires = int(claims["sub"]), float(claims["exp"])
            if not 1 <= user_id <= MAX_INT32:
                raise ValueError("the subject is not a user id")
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            self._verified.pop(token, None)
            raise TokenError(str(exc)) from exc
        if len(self._verified) >= self.REMEMBERED:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (user_id, expires)
        return user_id


class Passwords:
    """argon2id hashing in a bounded set of worker threads."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = Argon2Hasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self._pool = ThreadPoolExecutor(
            max_workers=settings.hash_concurrency,
            thread_name_prefix="argon2",
            initializer=_lower_priority,
            initargs=(settings.hash_nice, settings.hash_sched_idle),
        )
        # Verified against when the e-mail is unknown, so that a failed login
        # costs the same whether or not the account exists.
        self._decoy: str | None = None

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def prepare(self) -> None:
        """Make the decoy hash (once, at start-up, in a worker thread)."""
        if self._decoy is None:
            self._decoy = await self.hash("decoy password for unknown accounts")

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Check ``password``; with no stored hash, do the same work and say no."""
        if stored_hash is None:
            await self.prepare()
            assert self._decoy is not None
            await self._run(self._check, self._decoy, password)
            return False
        return await self._run(self._check, stored_hash, password)

    def outdated(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with other parameters than today's.

        Parsing the hash's header only: cheap enough for the event loop.
        """
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    async def _run(self, work: Callable[..., T], *args: str) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    def close(self) -> None:
        """Stop the hashing threads once they finish what they are doing."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _check(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
