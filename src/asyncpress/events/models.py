from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from asyncpress.core.db.base import Base


class Event(Base):
    """One entry of the live-event log, written in its cause's transaction.

    The id is the event id clients see and resume from. ``channels`` is a
    space-separated list of routing keys (``global``, ``article:<slug>``,
    ``user:<id>``, ``feed:<author id>``); ``data`` is the JSON payload as sent.
    """

    __tablename__ = "events"
    # AUTOINCREMENT on SQLite: ids are never reused, even after pruning.
    __table_args__ = (Index("ix_events_created_at", "created_at"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    type: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    channels: Mapped[str] = mapped_column(Text)
    data: Mapped[str] = mapped_column(Text)
    # The request that wrote it (X-Request-ID), to find its log lines.
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)


class EventTicket(Base):
    """A single-use credential for opening an event stream from a browser.

    Only the SHA-256 of the ticket is stored.
    """

    __tablename__ = "event_tickets"

    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(index=True)
