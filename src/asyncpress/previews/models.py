from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from asyncpress.core.db.base import Base


class LinkPreview(Base):
    """The last good preview of a URL, shared by every process."""

    __tablename__ = "link_previews"

    url: Mapped[str] = mapped_column(String(2048), primary_key=True)
    title: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(String(2048))
    site_name: Mapped[str | None] = mapped_column(String(200))
    fetched_at: Mapped[datetime]
