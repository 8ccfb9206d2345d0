"""Indexes that let PostgreSQL find the slugs a new title collides with.

A new or renamed article's slug is checked against ``slug = base OR slug
LIKE 'base-%'`` in ``articles`` and ``article_slugs``. Under a linguistic
collation (any but ``C``) PostgreSQL's btree on ``slug`` cannot serve the
``LIKE``, so every create read the whole table; ``text_pattern_ops``
indexes can. SQLite asks for a range of its own index instead, and
MySQL/MariaDB serve the prefix from the unique index.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_articles_slug_pattern", "articles"),
    ("ix_article_slugs_slug_pattern", "article_slugs"),
)


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if not _postgresql():
        return
    for name, table in INDEXES:
        op.create_index(
            name,
            table,
            ["slug"],
            postgresql_ops={"slug": "text_pattern_ops"},
            if_not_exists=True,  # built beforehand, CONCURRENTLY (docs/deployment.md)
        )


def downgrade() -> None:
    if not _postgresql():
        return
    for name, table in INDEXES:
        op.drop_index(name, table_name=table)
