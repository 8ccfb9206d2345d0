"""Who opens a stream: single-use tickets, so a browser never puts its JWT in a URL.

Tickets live in the database, so any worker on any machine can redeem one
that another issued, with or without Redis. Only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from asyncpress.db import begin_write, utcnow
from asyncpress.events.channels import Viewer
from asyncpress.events.models import EventTicket
from asyncpress.users import repository as users


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


async def issue(session: AsyncSession, user_id: int, ttl_s: float) -> str:
    ticket = secrets.token_urlsafe(32)
    now = utcnow()
    await begin_write(session)
    await session.execute(delete(EventTicket).where(EventTicket.expires_at <= now))
    session.add(
        EventTicket(
            digest=_digest(ticket), user_id=user_id, expires_at=now + timedelta(seconds=ttl_s)
        )
    )
    await session.commit()
    return ticket


async def redeem(session: AsyncSession, ticket: str) -> int | None:
    """The user id the ticket was issued to, once; None if unknown, used or expired."""
    if not ticket or len(ticket) > 128:
        return None
    await begin_write(session)
    user_id = await session.scalar(
        delete(EventTicket)
        .where(EventTicket.digest == _digest(ticket), EventTicket.expires_at > utcnow())
        .returning(EventTicket.user_id)
    )
    await session.commit()
    return user_id


async def viewer(session: AsyncSession, user_id: int) -> Viewer | None:
    """The stream's caller (id and username), or None if the account is gone."""
    user = await users.by_id(session, user_id)
    return None if user is None else Viewer(id=user.id, username=user.username)
