"""Link previews keyed by the SHA-256 of their URL, not the URL itself.

A URL may be 2,048 characters, longer than MySQL's InnoDB allows in a key
(3,072 bytes; up to 8,192 for 2,048 characters of UTF-8), and a long key
costs every backend index space. The table is a cache of pages fetched on
demand, so it is made again empty rather than rewritten: previews are
fetched again when next asked for.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from asyncpress.core.db.base import LongText, UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _mysql_family() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("title", LongText, nullable=True),
        sa.Column("description", LongText, nullable=True),
        sa.Column("image", sa.String(length=2048), nullable=True),
        sa.Column("site_name", sa.String(length=200), nullable=True),
        sa.Column("fetched_at", UTCDateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    if _mysql_family():  # made in this shape by 0003 already
        return
    op.drop_table("link_previews")
    op.create_table(
        "link_previews",
        sa.Column("url_key", sa.String(length=64), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("url_key", name="pk_link_previews"),
    )


def downgrade() -> None:
    if _mysql_family():
        return
    op.drop_table("link_previews")
    op.create_table(
        "link_previews", *_columns(), sa.PrimaryKeyConstraint("url", name="pk_link_previews")
    )
