"""Channel names as clients spell them, and the routing keys the hub uses.

``global`` and ``article:<slug>`` are public. ``feed`` and ``user`` (also
spelled ``user:<your username>``) need an authenticated caller.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

MAX_CHANNELS = 50
# What an article channel's slug may not hold (the query's pattern says the same).
SEPARATORS = frozenset("\x00\t\n\v\f\r ")
FEED = "feed"
GLOBAL = "global"


def article_channel(slug: str) -> str:
    return f"article:{slug}"


USER_PREFIX = "user:"


def user_channel(user_id: int) -> str:
    return f"{USER_PREFIX}{user_id}"


def feed_channel(author_id: int) -> str:
    """Where an author's writes go; the hub routes them to the author's followers' ``feed``."""
    return f"feed:{author_id}"


@dataclass(frozen=True, slots=True)
class Viewer:
    id: int
    username: str


class ChannelError(Exception):
    """A channel request that is refused; ``status`` is the HTTP code for SSE."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def routing_key(name: str, viewer: Viewer | None) -> str:
    """The hub's key for a channel name, or ChannelError."""
    if name == GLOBAL:
        return GLOBAL
    if name.startswith("article:"):
        slug = name[len("article:") :]
        # No length check: the query's max_length bounds every name, and a
        # slug no article has simply never sees an event.
        if not slug or any(ch in SEPARATORS for ch in slug):
            raise ChannelError(422, f"'{name[:80]}' is not a valid article channel")
        return name
    if name in (FEED, "user") or name.startswith("user:"):
        if viewer is None:
            raise ChannelError(401, f"'{name[:80]}' needs an authenticated connection")
        if name == FEED:
            return FEED
        if name not in ("user", f"user:{viewer.username}"):
            raise ChannelError(403, f"'{name[:80]}' belongs to another user")
        return user_channel(viewer.id)
    raise ChannelError(422, f"'{name[:80]}' is not a channel")


def routing_keys(
    names: list[str], viewer: Viewer | None, held: Collection[str] = ()
) -> dict[str, str]:
    """Channel name → routing key for each name; all or nothing.

    ``held`` are the names the connection already has; they count toward
    the limit.
    """
    unique = list(dict.fromkeys(name.strip() for name in names))
    if not unique or any(not name for name in unique):
        raise ChannelError(422, "name at least one channel, with no empty names")
    keys = {name: routing_key(name, viewer) for name in unique}
    if len(set(held) | keys.keys()) > MAX_CHANNELS:
        raise ChannelError(422, f"at most {MAX_CHANNELS} channels per connection")
    return keys
