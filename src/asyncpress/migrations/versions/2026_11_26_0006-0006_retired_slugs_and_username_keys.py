"""Retired slugs, and usernames unique under Unicode case folding.

- ``article_slugs``: the slugs articles had before a title change, so old
  links keep working (and are never given to another article).
- ``users.username_key``: the case-folded username (computed in Python, see
  ``asyncpress.users.models.fold``) under a unique index, replacing the
  ``lower(username)`` index whose meaning differed between SQLite (ASCII
  only) and PostgreSQL.

On SQLite, NOT NULL means rebuilding ``users`` (batch mode). Migrations
run with SQLite's foreign keys off (the default of a plain connection), so
dropping the old table cascades to nothing.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fold(username: str) -> str:
    # The rule of asyncpress.users.models.fold, frozen here as of this revision.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def _mysql_family() -> bool:
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "article_slugs",
        sa.Column("slug", sa.String(length=255), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name="fk_article_slugs_article_id_articles",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("slug", name="pk_article_slugs"),
    )
    op.create_index("ix_article_slugs_article_id", "article_slugs", ["article_id"])

    op.add_column("users", sa.Column("username_key", sa.String(length=192), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, username FROM users")).all()
    keys: dict[str, str] = {}
    clashes: list[str] = []
    for _id, username in rows:
        key = _fold(username)
        if key in keys:
            clashes.append(f"{keys[key]!r} and {username!r}")
        keys[key] = username
    if clashes:
        raise RuntimeError(
            "these usernames differ only by case; rename one of each pair, then upgrade again: "
            + "; ".join(clashes[:20])
        )
    if rows:
        bind.execute(
            sa.text("UPDATE users SET username_key = :key WHERE id = :id"),
            [{"key": _fold(username), "id": user_id} for user_id, username in rows],
        )
    if not _mysql_family():  # never made there (0001)
        op.drop_index("uq_users_username_lower", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.alter_column("username_key", existing_type=sa.String(192), nullable=False)
        batch.create_index("uq_users_username_key", ["username_key"], unique=True)


def downgrade() -> None:
    # The expression index after the rebuild: batch mode cannot carry it over.
    with op.batch_alter_table("users") as batch:
        batch.drop_index("uq_users_username_key")
        batch.drop_column("username_key")
    if not _mysql_family():
        op.create_index(
            "uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True
        )
    # The table's indexes go with it (MySQL refuses to drop the one its
    # foreign key uses on its own).
    op.drop_table("article_slugs")
