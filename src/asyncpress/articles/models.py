from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from asyncpress.core.db.base import Base, LongText, only_on, utcnow
from asyncpress.tags.models import Tag, article_tags
from asyncpress.users.models import User


def pattern_index(name: str, column: str) -> Index:
    """An index for ``column LIKE 'prefix%'`` on PostgreSQL (migration 0011).

    Under a linguistic collation PostgreSQL's ordinary btree cannot serve a
    prefix match; SQLite asks for a range instead (``slugs_like``) and
    MySQL's own index serves it.
    """
    return only_on("postgresql", Index(name, column, postgresql_ops={column: "text_pattern_ops"}))


class Article(Base):
    __tablename__ = "articles"
    __table_args__ = (
        Index("ix_articles_created_at_id", "created_at", "id"),
        Index("ix_articles_author_id_created_at", "author_id", "created_at"),
        pattern_index("ix_articles_slug_pattern", "slug"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(255), unique=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(LongText)
    body: Mapped[str] = mapped_column(LongText)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Kept in step with ``favorites`` by the same statement that adds or
    # removes a favorite row, so list pages read one column instead of counting.
    favorites_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User] = relationship(lazy="raise")
    tags: Mapped[list[Tag]] = relationship(secondary=article_tags, lazy="raise")


class RetiredSlug(Base):
    """A slug an article had before its title changed: links to it keep working.

    A retired slug is never given to another article (see ``slugs_like``).
    """

    __tablename__ = "article_slugs"
    __table_args__ = (pattern_index("ix_article_slugs_slug_pattern", "slug"),)

    slug: Mapped[str] = mapped_column(String(255), primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )


class Favorite(Base):
    __tablename__ = "favorites"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
