from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from asyncpress.core.db.base import Base, LongText


def url_key_of(url: str) -> str:
    """The key a URL's preview is stored under."""
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


class LinkPreview(Base):
    """The last good preview of a URL, shared by every process."""

    __tablename__ = "link_previews"

    # The SHA-256 of the URL, in hex (url_key_of): a URL may be longer than
    # a MySQL key can be, and a short key is a smaller index everywhere.
    url_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    title: Mapped[str | None] = mapped_column(LongText)
    description: Mapped[str | None] = mapped_column(LongText)
    image: Mapped[str | None] = mapped_column(String(2048))
    site_name: Mapped[str | None] = mapped_column(String(200))
    fetched_at: Mapped[datetime]
