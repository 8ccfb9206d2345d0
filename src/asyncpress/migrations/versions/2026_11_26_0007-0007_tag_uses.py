"""Tag use counts kept on write.

``tags.uses``: how many articles carry the tag, kept up to date by the
writes that link and unlink tags (increments and decrements under the row's
lock), so ``GET /api/tags`` sorts the tags table (one row per tag) instead
of counting every link on every request. Filled here from the links that
exist.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tags") as batch:
        batch.add_column(sa.Column("uses", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE tags SET uses = "
        "(SELECT count(*) FROM article_tags WHERE article_tags.tag_id = tags.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("tags") as batch:
        batch.drop_column("uses")
