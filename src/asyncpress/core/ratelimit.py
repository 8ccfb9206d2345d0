"""Attempts per client: failed logins and registrations (429 + ``Retry-After``).

Counts live in process memory in embedded mode and in Redis when
``REDIS_URL`` is set, so every worker and machine shares them. The windows
are moving windows (the ``limits`` library). A Redis outage never refuses
anyone: a failed check is logged and the attempt allowed, as with the cache.

Failed logins are limited twice, both checked before any password is hashed:

- per account and client address: one address guessing one account;
- per account, from anywhere: guessing spread over many addresses.

There is deliberately no limit on failures per address alone: people behind
one NAT share it, and a correct password is never refused because of
others' failures on the same address.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from asyncpress.core.config import Settings
from asyncpress.core.errors import AppError

log = logging.getLogger(__name__)

# Counters a Redis outage may not turn into errors (the library wraps none by default).
_STORAGE_ERRORS = (RedisError, OSError, TimeoutError)


class TooManyRequests(AppError):
    status_code = 429

    def __init__(self, field: str, message: str, retry_after_s: int) -> None:
        super().__init__(field, message)
        self.headers = {"Retry-After": str(retry_after_s)}


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    item: RateLimitItem
    field: str
    message: str


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits
        storage: Storage
        if settings.redis_url:
            storage = RedisStorage(
                "async+" + settings.redis_url,
                implementation="redispy",
                key_prefix="asyncpress:limits",
                socket_timeout=0.25,
                socket_connect_timeout=0.25,
            )
        else:
            storage = MemoryStorage()
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(storage)
        self.login_per_account_address = Rule(
            "login-pair",
            parse(settings.login_failures_per_account_address),
            "email or password",
            "too many failed attempts from this address; try again later",
        )
        self.login_per_account = Rule(
            "login-account",
            parse(settings.login_failures_per_account),
            "email or password",
            "too many failed attempts for this account; try again later",
        )
        self.registrations = Rule(
            "register",
            parse(settings.registrations_per_address),
            "user",
            "too many registrations from this address; try again later",
        )
        self._failures = 0

    async def before_login(self, email: str, address: str) -> None:
        """Refuse (429) an account that has failed too often, before hashing."""
        await self._refuse_if_spent(self.login_per_account_address, email, address)
        await self._refuse_if_spent(self.login_per_account, email)

    async def login_failed(self, email: str, address: str) -> None:
        await self._hit(self.login_per_account_address, email, address)
        await self._hit(self.login_per_account, email)

    async def registration(self, address: str) -> None:
        """Count a registration attempt from ``address``; 429 once over the limit."""
        if not self.enabled:
            return
        try:
            allowed = await self._limiter.hit(
                self.registrations.item, self.registrations.name, address
            )
        except _STORAGE_ERRORS as exc:
            self._failed(exc)
            return
        if not allowed:
            await self._refuse(self.registrations, address)

    async def _refuse_if_spent(self, rule: Rule, *keys: str) -> None:
        if not self.enabled:
            return
        try:
            allowed = await self._limiter.test(rule.item, rule.name, *keys)
        except _STORAGE_ERRORS as exc:
            self._failed(exc)
            return
        if not allowed:
            await self._refuse(rule, *keys)

    async def _refuse(self, rule: Rule, *keys: str) -> None:
        try:
            stats = await self._limiter.get_window_stats(rule.item, rule.name, *keys)
            wait = max(1, math.ceil(stats.reset_time - time.time()))
        except _STORAGE_ERRORS:
            wait = rule.item.get_expiry()
        raise TooManyRequests(rule.field, rule.message, wait)

    async def _hit(self, rule: Rule, *keys: str) -> None:
        if not self.enabled:
            return
        try:
            await self._limiter.hit(rule.item, rule.name, *keys)
        except _STORAGE_ERRORS as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        self._failures += 1
        if self._failures == 1 or self._failures % 100 == 0:
            log.warning("rate-limit store failed (%s failures so far): %s", self._failures, exc)

    async def close(self) -> None:
        if isinstance(self.storage, MemoryStorage):
            # The memory store prunes in a task of its own; not past the lifespan.
            timer = self.storage.timer
            if timer is not None and not timer.done():
                timer.cancel()
        else:
            client = getattr(getattr(self.storage, "bridge", None), "storage", None)
            if client is not None:
                await client.aclose()
