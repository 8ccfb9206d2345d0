"""The row whose lock orders event ids by commit on MySQL/MariaDB.

PostgreSQL orders them with an advisory transaction lock and SQLite has one
writer; MySQL has no lock that a commit releases except a row's, so event
appends take this table's one row (events.journal).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_order",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("appends", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_event_order"),
    )


def downgrade() -> None:
    op.drop_table("event_order")
