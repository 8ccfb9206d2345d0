from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from asyncpress.core.db.base import Base, UTCDateTime


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Articles carrying the tag: changed by the writes that link or unlink it
    # (asyncpress.tags.uses), never counted on read.
    uses: Mapped[int] = mapped_column(default=0, server_default="0")


# Each link carries its article's creation time (which never changes), so a
# tag's page is read newest first straight from one index, however rare or
# common the tag (docs/benchmarks.md).
article_tags = Table(
    "article_tags",
    Base.metadata,
    Column("article_id", ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Column("article_created_at", UTCDateTime(), nullable=False),
    Index(
        "ix_article_tags_tag_id_article_created_at_article_id",
        "tag_id",
        "article_created_at",
        "article_id",
    ),
)
