"""The ``asyncpress`` command."""

from __future__ import annotations

import asyncio
import getpass
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.exc import DBAPIError

from asyncpress.cli import mail as notify_cli
from asyncpress.cli.mail import mail_app, notifications_app
from asyncpress.cli.seed import SeedReport
from asyncpress.core.config import Settings, get_settings
from asyncpress.core.logs import configure_logging

app = typer.Typer(no_args_is_help=True, help="asyncpress: publishing and community backend.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
users_app = typer.Typer(no_args_is_help=True, help="Accounts.")
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(mail_app, name="mail")
app.add_typer(notifications_app, name="notifications")
console = Console(stderr=True)


def _print_version(wanted: bool) -> None:
    if wanted:
        from asyncpress import __version__  # noqa: PLC0415

        typer.echo(f"asyncpress {__version__}")
        raise typer.Exit


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """asyncpress: publishing and community backend."""


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        for error in exc.errors():
            message = str(error["msg"]).removeprefix("Value error, ")
            _fail(f"configuration error: {message}")
        raise typer.Exit(2) from exc


def _fail(message: str) -> None:
    """One line on stderr, however narrow the terminal (no wrapping, no markup)."""
    console.print(message, soft_wrap=True, markup=False, highlight=False, style="red")


def _ready_settings() -> Settings:
    """The settings, once the database answers and is fully migrated."""
    from asyncpress.core.migrate import DatabaseUnready, check_schema  # noqa: PLC0415

    settings = _settings()
    try:
        check_schema(settings.database_url)
    except DatabaseUnready as exc:
        _fail(f"error: {exc}")
        raise typer.Exit(2) from exc
    return settings


def _migrating(step: Callable[[str, str], None], revision: str) -> None:
    from asyncpress.core.migrate import DatabaseUnready, check_sqlite_path, unreachable  # noqa: PLC0415

    url = _settings().database_url
    try:
        check_sqlite_path(url)
        step(url, revision)
    except DatabaseUnready as exc:
        _fail(f"error: {exc}")
        raise typer.Exit(2) from exc
    except (OSError, TimeoutError, DBAPIError) as exc:
        _fail(f"error: {unreachable(url, exc)}")
        raise typer.Exit(2) from exc
    console.print(f"database at revision {revision}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Proxies whose X-Forwarded-For/-Proto are believed, comma-separated, or '*' "
            "(default: FORWARDED_ALLOW_IPS, else 127.0.0.1)."
        ),
    ] = None,
    factory: Annotated[
        str, typer.Option(hidden=True, help="ASGI app factory (the benchmark suite's baselines).")
    ] = "asyncpress.app.main:app_factory",
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn  # noqa: PLC0415

    from asyncpress.core import tracing  # noqa: PLC0415
    from asyncpress.fast.uvicorn_protocols import (  # noqa: PLC0415
        EventHttpProtocol,
        EventSocketProtocol,
    )

    settings = _ready_settings()
    try:
        tracing.check()  # here, once, rather than a traceback from each worker
    except tracing.TracingMisconfigured as exc:
        _fail(f"configuration error: {exc}")
        raise typer.Exit(2) from exc
    configure_logging(settings.log_level, settings.log_lines)
    # Each worker learns it is not alone (Settings.serve_workers): without
    # Redis, several processes must not keep caches of their own.
    os.environ["SERVE_WORKERS"] = str(1 if reload else workers)
    with _metrics_folder(1 if reload else workers):
        uvicorn.run(
            factory,
            factory=True,
            host=host,
            port=port,
            workers=None if reload else workers,
            reload=reload,
            log_level=settings.log_level.lower(),
            # uvicorn's loggers go through ours (JSON or text, with request ids);
            # the access line is asyncpress's own (asyncpress.ops.request_id).
            log_config=None,
            access_log=False,
            # Event streams are told to end at once; this bounds the wait for them.
            timeout_graceful_shutdown=settings.shutdown_grace_s,
            # uvicorn's own protocols, extended to let the hub write events
            # straight to idle streams (asyncpress.fast.uvicorn_protocols).
            # The classes themselves (they pickle by name for --workers > 1).
            http=EventHttpProtocol,
            ws=EventSocketProtocol
            if settings.ws_implementation == "websockets-sansio"
            else "websockets",
            ws_per_message_deflate=settings.ws_compression,
            # Client messages are small control messages; refuse big ones (close 1009)
            # before they are parsed on the event loop.
            ws_max_size=64 * 1024,
            # The client address (rate limits) and scheme a trusted proxy forwards.
            proxy_headers=True,
            forwarded_allow_ips=forwarded_allow_ips or settings.forwarded_allow_ips,
        )


@contextmanager
def _metrics_folder(workers: int) -> Iterator[None]:
    """Several workers share their metrics through files in one folder
    (prometheus-client's multiprocess mode, asyncpress.ops.metrics): the
    operator's ``PROMETHEUS_MULTIPROC_DIR``, emptied, or a temporary one."""
    if workers == 1:
        yield
        return
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):  # a previous run's figures
            stale.unlink()
        yield
        return
    with tempfile.TemporaryDirectory(prefix="asyncpress-metrics-") as folder_name:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder_name
        try:
            yield
        finally:
            del os.environ["PROMETHEUS_MULTIPROC_DIR"]


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Deliver what is due, then exit.")] = False,
) -> None:
    """Deliver notification e-mail (run any number of these, on any machine)."""
    settings = _ready_settings()
    sent = notify_cli.run_worker(settings, once=once)
    console.print(f"worker stopped; {sent} message(s) handled")


@mail_app.command("ls")
def mail_ls() -> None:
    """List the messages in MAILBOX_DIR."""
    notify_cli.mailbox_list(_settings())


@mail_app.command("show")
def mail_show(message_id: notify_cli.MessageId) -> None:
    """Print one message from MAILBOX_DIR."""
    notify_cli.mailbox_show(_settings(), message_id)


@notifications_app.command("stats")
def notifications_stats() -> None:
    """Outbox depth, sent, dead-lettered, retried, failed attempts."""
    notify_cli.notifications_stats(_ready_settings())


@notifications_app.command("failed")
def notifications_failed() -> None:
    """List dead-lettered messages with their last error."""
    notify_cli.notifications_failed(_ready_settings())


@notifications_app.command("retry")
def notifications_retry(
    message_id: Annotated[int | None, typer.Argument(help="Outbox id to re-queue.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Re-queue every dead letter.")] = False,
) -> None:
    """Re-queue dead letters (one by ID, or --all)."""
    if (message_id is None) == (not all_):
        console.print("give one message ID or --all")
        raise typer.Exit(2)
    retried = notify_cli.notifications_retry(_ready_settings(), message_id)
    if message_id is not None and not retried:
        _fail(f"no dead letter with id {message_id} (see `asyncpress notifications failed`)")
        raise typer.Exit(1)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from asyncpress.core.migrate import upgrade  # noqa: PLC0415

    _migrating(upgrade, revision)


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ("base" empties the schema)."""
    from asyncpress.core.migrate import downgrade  # noqa: PLC0415

    _migrating(downgrade, revision)


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Username.")],
    email: Annotated[str, typer.Option(help="E-mail address.")],
    password: Annotated[
        str | None, typer.Option(help="Password (asked for when left out).")
    ] = None,
) -> None:
    """Create an account."""
    from asyncpress.core.errors import AppError  # noqa: PLC0415
    from asyncpress.users.schemas import NewUser  # noqa: PLC0415

    settings = _ready_settings()
    if password is not None:
        secret = password
    elif sys.stdin.isatty():
        secret = getpass.getpass("Password: ")
    else:  # piped in: the first line, so that scripts need not put it in argv
        secret = sys.stdin.readline().rstrip("\r\n")
    try:
        data = NewUser(username=username, email=email, password=secret)
    except ValidationError as exc:
        for error in exc.errors():
            console.print(f"[red]{'.'.join(map(str, error['loc']))}[/red] {error['msg']}")
        raise typer.Exit(2) from exc
    try:
        user_id = asyncio.run(_create_user(settings, data))
    except AppError as exc:
        console.print(f"[red]{exc.field}[/red] {exc.message}")
        raise typer.Exit(1) from exc
    console.print(f"created user {data.username} (id {user_id})")


async def _create_user(settings: Settings, data: object) -> int:
    from asyncpress.core.db.engine import create_engine, create_sessionmaker  # noqa: PLC0415
    from asyncpress.core.security import Passwords, Tokens  # noqa: PLC0415
    from asyncpress.core.uow import Database, NothingAfterCommit  # noqa: PLC0415
    from asyncpress.users.schemas import NewUser  # noqa: PLC0415
    from asyncpress.users.service import Accounts  # noqa: PLC0415

    assert isinstance(data, NewUser)
    engine = create_engine(settings)
    passwords = Passwords(settings)
    try:
        # A new account changes no cached figure and no stream: nothing follows its commit.
        db = Database(engine, create_sessionmaker(engine), NothingAfterCommit())
        tokens = Tokens(settings.jwt_secret, settings.jwt_ttl_s)
        user = await Accounts(db, passwords, tokens).register(data)
        return user.id
    finally:
        await engine.dispose()
        passwords.close()


@app.command()
def seed(
    users: Annotated[int, typer.Option(min=1, help="Users to create.")] = 100,
    articles: Annotated[int, typer.Option(min=0, help="Articles to create.")] = 1000,
    comments: Annotated[int | None, typer.Option(min=0, help="Comments [1.5 x articles].")] = None,
    favorites: Annotated[
        int | None, typer.Option(min=0, help="Favorites [0.5 x articles].")
    ] = None,
    follows: Annotated[int | None, typer.Option(min=0, help="Follows [5 x users].")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 1,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Fill the database with realistic demo data (password of every user: password123)."""
    settings = _ready_settings()
    report = asyncio.run(
        seed_database(
            settings,
            users=users,
            articles=articles,
            comments=comments if comments is not None else articles * 3 // 2,
            favorites=favorites if favorites is not None else articles // 2,
            follows=follows if follows is not None else users * 5,
            seed_value=seed,
            quiet=quiet,
        )
    )
    summary = ", ".join(f"{count} {table}" for table, count in report.counts.items())
    console.print(f"seeded {summary} in {report.seconds:.1f} s")


async def seed_database(settings: Settings, *, quiet: bool, **sizes: int) -> SeedReport:
    """Seed with the demo password; shared by ``asyncpress seed`` and the benchmark suite."""
    from anyio.to_thread import run_sync  # noqa: PLC0415

    from asyncpress.cli.seed import SEED_PASSWORD, seed  # noqa: PLC0415
    from asyncpress.core.db.engine import create_engine, create_sessionmaker, refresh_statistics  # noqa: PLC0415
    from asyncpress.core.security import Passwords  # noqa: PLC0415

    engine = await run_sync(create_engine, settings)
    password_hash = await Passwords(settings).hash(SEED_PASSWORD)
    columns = (
        TextColumn("{task.description:>12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, disable=quiet or not sys.stderr.isatty()) as bar:
        tasks: dict[str, object] = {}

        def progress(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = bar.add_task(table, total=total)
            bar.update(tasks[table], completed=done)  # type: ignore[arg-type]

        try:
            async with create_sessionmaker(engine)() as session:
                report = await seed(
                    session, password_hash=password_hash, progress=progress, **sizes
                )
            await refresh_statistics(engine)
            return report
        finally:
            await engine.dispose()


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def bench(ctx: typer.Context) -> None:
    """Run the benchmark suite (from a source checkout): asyncpress bench [SCENARIO...] [--quick].

    Everything after ``bench`` goes to ``python -m bench.suite``; see
    docs/benchmarks.md. Needs wrk and the PostgreSQL server binaries.
    """
    checkout = Path(__file__).resolve().parents[3]
    if not (checkout / "bench" / "suite.py").is_file():
        console.print("the benchmark suite runs from a source checkout (bench/ not found)")
        raise typer.Exit(2)
    command = [sys.executable, "-m", "bench.suite", *ctx.args]
    done = subprocess.run(command, check=False, cwd=checkout)  # noqa: S603
    raise typer.Exit(done.returncode)
