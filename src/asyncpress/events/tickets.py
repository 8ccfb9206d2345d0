"""Who opens a stream: single-use tickets, so a browser never puts its JWT in a URL.

Tickets live in the database, so any worker on any machine can redeem one
that another issued, with or without Redis. Only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import delete

from asyncpress.core.db.base import utcnow
from asyncpress.core.errors import Unauthorized
from asyncpress.core.uow import Database
from asyncpress.events.channels import Viewer
from asyncpress.events.models import EventTicket
from asyncpress.users import repository as users


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class StreamAccess:
    """Tickets, and the viewer a stream is opened for."""

    def __init__(self, db: Database, ticket_ttl_s: float) -> None:
        self.db = db
        self.ticket_ttl_s = ticket_ttl_s

    async def issue(self, user_id: int) -> str:
        ticket = secrets.token_urlsafe(32)
        now = utcnow()
        async with self.db.write() as uow:
            await uow.session.execute(delete(EventTicket).where(EventTicket.expires_at <= now))
            uow.session.add(
                EventTicket(
                    digest=_digest(ticket),
                    user_id=user_id,
                    expires_at=now + timedelta(seconds=self.ticket_ttl_s),
                )
            )
            await uow.commit()
        return ticket

    async def _redeem(self, ticket: str) -> int | None:
        """The user id the ticket was issued to, once; None if unknown, used or expired."""
        if not ticket or len(ticket) > 128:
            return None
        async with self.db.write() as uow:
            user_id = await uow.session.scalar(
                delete(EventTicket)
                .where(EventTicket.digest == _digest(ticket), EventTicket.expires_at > utcnow())
                .returning(EventTicket.user_id)
            )
            await uow.commit()
        return user_id

    async def viewer(self, user_id: int) -> Viewer:
        """The stream's caller (id and username); Unauthorized if the account is gone."""
        async with self.db.session() as session:
            user = await users.by_id(session, user_id)
        if user is None:
            raise Unauthorized("token", "names an account that does not exist")
        return Viewer(id=user.id, username=user.username)

    async def viewer_from_ticket(self, ticket: str) -> Viewer:
        user_id = await self._redeem(ticket)
        if user_id is None:
            raise Unauthorized("ticket", "is unknown, used or expired")
        return await self.viewer(user_id)
