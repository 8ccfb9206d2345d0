"""The id of the request that wrote each outbox message and event.

So that a message or an event can be tied to the request (and its log
lines) that caused it. Rows written outside a request (the CLI, imports run
by hand) have none.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("outbox", "events"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    for table in ("outbox", "events"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("request_id")
