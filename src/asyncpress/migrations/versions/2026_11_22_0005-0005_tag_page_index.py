"""Tag pages newest first from one index.

Each article-tag link gets its article's creation time, and the tag index
becomes (tag_id, article_created_at, article_id): a tag's page is then the
first rows of one index scan, whether the tag is on 1 % or 40 % of the
articles, and its count an index-only scan.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

from asyncpress.core.db.base import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


@contextmanager
def _batch() -> Iterator[BatchOperations]:
    """``batch_alter_table`` (SQLite rebuilds the table), quiet about what it cannot reflect.

    SQLite's reflection skips the expression index on ``lower(username)`` with
    a warning; the rebuilt table is ``article_tags``, which has none.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        with op.batch_alter_table("article_tags") as batch:
            yield batch


def upgrade() -> None:
    with _batch() as batch:
        batch.add_column(sa.Column("article_created_at", UTCDateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE article_tags SET article_created_at = "
        "(SELECT created_at FROM articles WHERE articles.id = article_tags.article_id)"
    )
    with _batch() as batch:
        batch.alter_column(
            "article_created_at", existing_type=UTCDateTime(timezone=True), nullable=False
        )
        # The new index first: MySQL refuses to drop the only index its
        # foreign key on tag_id can use.
        batch.create_index(
            "ix_article_tags_tag_id_article_created_at_article_id",
            ["tag_id", "article_created_at", "article_id"],
        )
        batch.drop_index("ix_article_tags_tag_id_article_id")


def downgrade() -> None:
    with _batch() as batch:
        batch.create_index("ix_article_tags_tag_id_article_id", ["tag_id", "article_id"])
        batch.drop_index("ix_article_tags_tag_id_article_created_at_article_id")
        batch.drop_column("article_created_at")
