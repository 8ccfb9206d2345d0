"""Tokens and passwords.

JWTs are HS256 with an expiry, decoded against a fixed algorithm list.
Password hashing (argon2id) is CPU work: it runs in worker threads behind a
capacity limiter sized from settings, never on the event loop.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import jwt
from anyio.to_thread import run_sync
from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from asyncpress.config import Settings

ALGORITHM = "HS256"


class TokenError(Exception):
    pass


class Tokens:
    def __init__(self, secret: str, ttl_s: int) -> None:
        self._secret = secret
        self._ttl = timedelta(seconds=ttl_s)

    def issue(self, user_id: int, now: datetime | None = None) -> str:
        issued = now or datetime.now(UTC)
        claims = {"sub": str(user_id), "iat": issued, "exp": issued + self._ttl}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def user_id(self, token: str) -> int:
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
            )
            return int(claims["sub"])
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise TokenError(str(exc)) from exc


class Passwords:
    """argon2id hashing in a bounded set of worker threads."""

    def __init__(self, settings: Settings) -> None:
        self._hasher = Argon2Hasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self._limiter = anyio.CapacityLimiter(settings.hash_concurrency)
        # Verified against when the e-mail is unknown, so that a failed login
        # costs the same whether or not the account exists.
        self._decoy: str | None = None

    async def hash(self, password: str) -> str:
        return await run_sync(self._hasher.hash, password, limiter=self._limiter)

    async def prepare(self) -> None:
        """Make the decoy hash (once, at start-up, in a worker thread)."""
        if self._decoy is None:
            self._decoy = await self.hash("decoy password for unknown accounts")

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Check ``password``; with no stored hash, do the same work and say no."""
        if stored_hash is None:
            await self.prepare()
            assert self._decoy is not None
            await run_sync(self._check, self._decoy, password, limiter=self._limiter)
            return False
        return await run_sync(self._check, stored_hash, password, limiter=self._limiter)

    def _check(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
