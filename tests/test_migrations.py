from __future__ import annotations

import asyncio
import warnings

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from servers.mariadb import MariaDBServer
from sqlalchemy import Connection, insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from asyncpress.app.models import Base
from asyncpress.core.db.base import compared_on
from asyncpress.core.migrate import downgrade, upgrade
from asyncpress.tags.models import Tag


def _diff(connection: Connection) -> list[object]:
    options = {"compare_type": True, "include_object": compared_on(connection.dialect.name)}
    context = MigrationContext.configure(connection, opts=options)
    with warnings.catch_warnings():
        # SQLite cannot reflect expression indexes (lower(username)); alembic says so.
        warnings.filterwarnings("ignore", message=".*expression-based index.*")
        return list(compare_metadata(context, Base.metadata))


async def _schema_diff(database_url: str) -> list[object]:
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_diff)
    finally:
        await engine.dispose()


def test_migrations_match_the_models(database_url: str) -> None:
    assert asyncio.run(_schema_diff(database_url)) == []


def test_downgrade_and_upgrade_round_trip(database_url: str) -> None:
    downgrade(database_url, "base")
    upgrade(database_url)
    assert asyncio.run(_schema_diff(database_url)) == []


@pytest.mark.mariadb_only
def test_mariadb_text_compares_byte_for_byte_whatever_the_database_default(
    mariadb_server: MariaDBServer, backend: str
) -> None:
    """A database made with the server's case- and accent-insensitive default.

    The migrations set utf8mb4_bin first, so tags, slugs and usernames that
    differ by case or accent stay distinct, as on PostgreSQL.
    """
    mariadb_server.sql(
        "CREATE DATABASE asyncpress_ci CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
    )
    url = mariadb_server.url("asyncpress_ci")
    upgrade(url)
    assert backend == "mariadb"

    async def insert_tags() -> list[str]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                names = ["python", "Python", "pythön"]
                await connection.execute(insert(Tag), [{"name": n} for n in names])
                found = await connection.execute(select(Tag.name).order_by(Tag.id))
                return list(found.scalars())
        finally:
            await engine.dispose()

    assert asyncio.run(insert_tags()) == ["python", "Python", "pythön"]
    collation = mariadb_server.sql(
        "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA"
        " WHERE SCHEMA_NAME = 'asyncpress_ci'"
    )
    assert collation.strip() == "utf8mb4_bin"
