"""What the lifespan creates and disposes, reachable from every request."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from asyncpress.cache import Cached
from asyncpress.config import Settings
from asyncpress.events.hub import Hub
from asyncpress.notifications.delivery import Outbox
from asyncpress.previews.service import Previews
from asyncpress.ratelimit import RateLimits
from asyncpress.rendering.pool import Renderer
from asyncpress.security import Passwords, Tokens


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    tokens: Tokens
    passwords: Passwords
    outbox: Outbox
    cache: Cached
    previews: Previews
    events: Hub
    limits: RateLimits
    renderer: Renderer
