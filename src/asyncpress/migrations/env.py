"""Alembic environment: runs migrations through the async engine."""

from __future__ import annotations

import asyncio
import logging
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from asyncpress.app.models import Base
from asyncpress.core.db.base import compared_on

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from asyncpress.core.config import get_settings  # noqa: PLC0415

    return get_settings().database_url


class _NamedPrimaryKeyNote(logging.Filter):
    """Drops MySQL's note that a primary key's name is ignored (there it is always PRIMARY).

    The naming convention names every constraint for PostgreSQL and SQLite;
    asyncmy logs the server's note once per table, which says nothing to act on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "ignored for PRIMARY key" not in record.getMessage()


logging.getLogger("asyncmy").addFilter(_NamedPrimaryKeyNote())


def _binary_text_by_default(connection: Connection) -> None:
    """MySQL/MariaDB: new tables compare text byte for byte, as PostgreSQL does.

    Uniqueness "regardless of case" is the application's own rule
    (``users.username_key``, lower-cased e-mails), the same on every backend;
    a server's default collation (case- and accent-insensitive) would make
    "José" and "jose", or two slugs differing by case, collide here only.
    """
    if connection.dialect.name in ("mysql", "mariadb"):
        connection.exec_driver_sql("ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")


def _configure(connection: Connection) -> None:
    _binary_text_by_default(connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=compared_on(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
