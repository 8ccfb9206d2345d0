"""Stored link previews.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from asyncpress.core.db.base import LongText, UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    key: list[sa.Column[object]] = []
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        # A 2,048-character key is longer than InnoDB's 3,072 bytes: a new
        # MySQL database gets the table as revision 0010 leaves it.
        key = [sa.Column("url_key", sa.String(length=64), nullable=False)]
    op.create_table(
        "link_previews",
        *key,
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("title", LongText, nullable=True),
        sa.Column("description", LongText, nullable=True),
        sa.Column("image", sa.String(length=2048), nullable=True),
        sa.Column("site_name", sa.String(length=200), nullable=True),
        sa.Column("fetched_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("url_key" if key else "url", name="pk_link_previews"),
    )


def downgrade() -> None:
    op.drop_table("link_previews")
