from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, Text, false, text, true
from sqlalchemy.orm import Mapped, mapped_column

from asyncpress.db import Base, utcnow


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_username_lower", text("lower(username)"), unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # Stored lower-cased, so the unique constraint is case-insensitive.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    bio: Mapped[str] = mapped_column(Text, default="")
    image: Mapped[str | None] = mapped_column(String(2048), default=None)
    # Which e-mails the user wants (see notifications/).
    notify_comment: Mapped[bool] = mapped_column(default=True, server_default=true())
    notify_follower: Mapped[bool] = mapped_column(default=True, server_default=true())
    notify_favorite: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
