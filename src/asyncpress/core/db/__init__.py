"""Database plumbing, in three parts.

- :mod:`.base`: the declarative base, its naming convention and UTC timestamps;
- :mod:`.engine`: engines and sessions for SQLite (aiosqlite) and PostgreSQL
  (asyncpg), the SQLite connection hooks, write transactions;
- :mod:`.bulk`: dialect-aware multi-row inserts and upserts for seeding,
  import and previews.

Both backends get the same models and migrations.
"""
