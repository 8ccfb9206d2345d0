from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from asyncpress.core.db.base import Base, LongText


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
    channels: Mapped[str] = mapped_column(LongText)
    data: Mapped[str] = mapped_column(LongText)
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


class EventOrder(Base):
    """One row whose lock orders event ids by commit on MySQL/MariaDB.

    An event append upserts row 1 before its insert and holds that row's
    lock until its transaction ends (``events.journal``), the part an
    advisory transaction lock plays on PostgreSQL. The row is made by the
    first append, so emptying the tables loses nothing. Unused elsewhere.
    """

    __tablename__ = "event_order"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    appends: Mapped[int] = mapped_column(BigInteger, default=0)
