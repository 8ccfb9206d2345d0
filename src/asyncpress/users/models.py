from __future__ import annotations

import unicodedata
from datetime import datetime

from sqlalchemy import Index, String, false, true
from sqlalchemy.orm import Mapped, mapped_column, validates

from asyncpress.core.db.base import Base, LongText, utcnow


def fold(username: str) -> str:
    """The form two usernames share when they differ only by case (any script).

    Unicode case folding after compatibility normalisation, computed here
    rather than by the database: SQLite's ``lower()`` folds ASCII only and
    PostgreSQL's keeps ``ß``, so either would make the rule depend on the backend.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


# Folding can lengthen a name (``ß`` -> ``ss``): room for three times 64.
USERNAME_KEY_LENGTH = 192


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_username_key", "username_key", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    # fold(username), kept by the validator below: unique regardless of case.
    username_key: Mapped[str] = mapped_column(String(USERNAME_KEY_LENGTH))
    # Stored lower-cased, so the unique constraint is case-insensitive.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    bio: Mapped[str] = mapped_column(LongText, default="")
    image: Mapped[str | None] = mapped_column(String(2048), default=None)
    # Which e-mails the user wants (see notifications/).
    notify_comment: Mapped[bool] = mapped_column(default=True, server_default=true())
    notify_follower: Mapped[bool] = mapped_column(default=True, server_default=true())
    notify_favorite: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @validates("username")
    def _keep_key(self, _key: str, username: str) -> str:
        self.username_key = fold(username)
        return username
