"""Throw-away servers on 127.0.0.1 for the tests and the benchmarks.

PostgreSQL (initdb/pg_ctl), Redis, an SMTP sink and an HTTP upstream, and
the process handling they share. Neither tests/ nor bench/ owns them, so
neither imports the other's helpers.
"""
