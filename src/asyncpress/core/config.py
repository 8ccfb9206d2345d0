"""The one place that reads the environment.

Every setting is an environment variable (or a line in an optional ``.env``
file). Nothing else in the package looks at ``os.environ``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_JWT_SECRET = "asyncpress-development-secret-do-not-use-in-production"  # noqa: S105

Environment = Literal["development", "test", "production"]


# The database backends and the driver each is reached through.
ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    # MariaDB 10.6+ (MySQL's protocol and SQL), through asyncmy (docs/operations.md says why
    # asyncmy rather than aiomysql); "mariadb" turns on SQLAlchemy's
    # MariaDB-only mode.
    "mysql": "mysql+asyncmy",
    "mariadb": "mariadb+asyncmy",
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    environment: Environment = "production"
    database_url: str = "sqlite+aiosqlite:///./asyncpress.db"
    jwt_secret: str = DEV_JWT_SECRET
    jwt_ttl_s: int = Field(default=7 * 24 * 3600, gt=0)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ("*",)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # json: one JSON object per line (for a log collector); text: for people.
    # Unset: json in production, text otherwise.
    log_format: Literal["json", "text"] | None = None

    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    # PostgreSQL: connections of the one-statement reads (fast.direct); 0
    # sends them through the pool above.
    db_direct_pool_size: int = Field(default=10, ge=0)
    db_pool_timeout_s: float = Field(default=10.0, gt=0)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    db_echo: bool = False

    request_timeout_s: float = Field(default=15.0, gt=0)
    export_timeout_s: float = Field(default=600.0, gt=0)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_import_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)

    stats_cache_s: float = Field(default=5.0, ge=0)
    redis_url: str | None = None
    tags_cache_s: float = Field(default=30.0, ge=0)
    article_cache_s: float = Field(default=60.0, ge=0)
    articles_count_cache_s: float = Field(default=30.0, ge=0)

    preview_timeout_s: float = Field(default=5.0, gt=0)
    preview_deadline_s: float = Field(default=8.0, gt=0)
    preview_max_age_s: float = Field(default=24 * 3600.0, ge=0)
    preview_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = ()
    preview_max_connections: int = Field(default=50, ge=1)

    hash_concurrency: int = Field(default=2, ge=1)
    # Niceness of the hashing threads. 19: the event loop (every other request)
    # runs first and logins get the CPU it leaves; 0: they compete as equals.
    # Measured trade-off in docs/benchmarks.md.
    hash_nice: int = Field(default=19, ge=0, le=19)
    # Linux's SCHED_IDLE policy for the hashing threads, on top of the
    # niceness: the event loop, when a request wakes it, takes the CPU from a
    # hash at once rather than at the end of the hash's time slice.
    hash_sched_idle: bool = True
    # argon2id at OWASP's minimum (Password Storage Cheat Sheet: 19 MiB, two
    # passes, one lane). Hashes made with other parameters still verify and
    # are made again with these at the next successful login.
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19_456, ge=8)
    argon2_parallelism: int = Field(default=1, ge=1)

    # Notifications: SMTP when SMTP_URL is set, else .eml files in MAILBOX_DIR.
    smtp_url: str | None = None
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = Field(default=15.0, gt=0)
    mail_from: str = "asyncpress <no-reply@asyncpress.localhost>"
    mailbox_dir: str = "./mailbox"
    public_url: str = "http://127.0.0.1:8000"
    mail_concurrency: int = Field(default=4, ge=1, le=64)
    notify_max_attempts: int = Field(default=8, ge=1)
    notify_backoff_base_s: float = Field(default=2.0, gt=0)
    notify_backoff_max_s: float = Field(default=900.0, gt=0)
    outbox_in_process: bool = True
    outbox_sweep_s: float = Field(default=5.0, gt=0)
    outbox_kick_delay_s: float = Field(default=0.05, ge=0)
    outbox_lease_s: float = Field(default=120.0, gt=0)
    outbox_batch: int = Field(default=100, ge=1, le=1000)

    # Live events (docs/realtime.md).
    events_queue_size: int = Field(default=256, ge=1)
    events_send_timeout_s: float = Field(default=5.0, gt=0)
    events_heartbeat_s: float = Field(default=15.0, gt=0)
    events_max_lifetime_s: float = Field(default=1800.0, gt=0)
    events_poll_s: float = Field(default=1.0, gt=0)
    events_keep_count: int = Field(default=10_000, ge=1)
    events_keep_hours: float = Field(default=24.0, ge=0)
    events_ticket_ttl_s: float = Field(default=60.0, gt=0)
    # Write an event straight to an idle stream's socket (asyncpress.fast.wire).
    events_direct_writes: bool = True
    # Keep full garbage collections short with thousands of streams open
    # (asyncpress.fast.gc_policy).
    gc_freeze: bool = True
    shutdown_grace_s: int = Field(default=10, ge=1)
    # Markdown rendering (asyncpress.rendering.pool): worker processes (0 = threads),
    # the deadline of one render, and renders queued per process.
    render_processes: int = Field(default=1, ge=0, le=32)
    render_timeout_s: float = Field(default=2.0, gt=0)
    render_queue: int = Field(default=8, ge=1)
    # Request heads on `asyncpress serve` (431 past the size, 408 past the time).
    max_request_head_bytes: int = Field(default=64 * 1024, ge=1024)
    request_head_timeout_s: float = Field(default=10.0, gt=0)
    ws_implementation: Literal["websockets", "websockets-sansio"] = "websockets-sansio"
    # permessage-deflate keeps a compressor per connection and compresses each
    # event once per subscriber; events are small JSON, so it is off by default.
    ws_compression: bool = False

    # How many worker processes `asyncpress serve` started (it sets this for them).
    serve_workers: int = Field(default=1, ge=1)
    # Cache in process memory when there is no Redis: "auto" does so only for
    # one process on SQLite (embedded mode); "on" asserts this is the only
    # process serving the database; "off" never.
    local_cache: Literal["auto", "on", "off"] = "auto"

    # Attempts per client (asyncpress.core.ratelimit); "N per|/ [M] second|minute|hour|day".
    rate_limits: bool = True
    login_failures_per_account_address: str = "10 per 15 minutes"
    login_failures_per_account: str = "50 per 15 minutes"
    registrations_per_address: str = "20 per hour"
    # Addresses whose X-Forwarded-For / -Proto `asyncpress serve` believes
    # (the load balancer's), comma-separated; "*" trusts every peer.
    forwarded_allow_ips: str = "127.0.0.1"

    @field_validator(
        "login_failures_per_account_address",
        "login_failures_per_account",
        "registrations_per_address",
    )
    @classmethod
    def _check_rate(cls, value: str) -> str:
        from limits import parse  # noqa: PLC0415 - only to validate the syntax

        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a rate such as '10 per 15 minutes'") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        # Only the scheme is ever repeated back: the URL may carry a password.
        scheme = value.partition("://")[0]
        if scheme in ASYNC_DRIVERS.values():
            return value
        backend = scheme.partition("+")[0]
        if backend in ASYNC_DRIVERS:
            raise ValueError(
                f"DATABASE_URL starts with {scheme}://; asyncpress talks to this database "
                f"through its async driver: write {ASYNC_DRIVERS[backend]}://…"
            )
        raise ValueError(
            f"DATABASE_URL starts with {scheme or value[:20]!r}; asyncpress runs on "
            + " or ".join(f"{driver}://…" for driver in dict.fromkeys(ASYNC_DRIVERS.values()))
        )

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("smtp://", "smtps://")):
            raise ValueError("SMTP_URL must start with smtp:// or smtps://")
        return value or None

    @field_validator("cors_origins", "preview_allowed_hosts", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_secret(self) -> Settings:
        if self.jwt_secret == DEV_JWT_SECRET and self.environment != "development":
            raise ValueError(
                "JWT_SECRET is the built-in development secret; set JWT_SECRET "
                "(at least 32 characters) or ENVIRONMENT=development"
            )
        if len(self.jwt_secret) < 32:
            raise ValueError("JWT_SECRET must be at least 32 characters long")
        return self

    @property
    def log_lines(self) -> Literal["json", "text"]:
        if self.log_format is not None:
            return self.log_format
        return "json" if self.environment == "production" else "text"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def is_mysql(self) -> bool:
        """MySQL or MariaDB (one family: the same SQL, the same driver)."""
        return self.database_url.startswith(("mysql", "mariadb"))

    @property
    def process_cache(self) -> bool:
        """May this process cache in its own memory? (Without Redis; see cache.py.)

        On PostgreSQL other processes or machines may serve the same data at
        any time, so "auto" says no there, as it does for several workers.
        """
        if self.local_cache != "auto":
            return self.local_cache == "on"
        return self.is_sqlite and self.serve_workers == 1


@lru_cache
def get_settings() -> Settings:
    return Settings()
