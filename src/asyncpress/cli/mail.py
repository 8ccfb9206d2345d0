"""``asyncpress worker``, ``asyncpress mail …`` and ``asyncpress notifications …``."""

from __future__ import annotations

import asyncio
import signal
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Annotated

import typer
from anyio.to_thread import run_sync
from rich.console import Console
from rich.table import Table

from asyncpress.core.config import Settings
from asyncpress.core.db.base import utcnow
from asyncpress.core.db.engine import begin_write, create_engine, create_sessionmaker
from asyncpress.notifications import repository
from asyncpress.notifications.delivery import Outbox
from asyncpress.notifications.transport import transport_for

out = Console()
mail_app = typer.Typer(no_args_is_help=True, help="The local mailbox (embedded mode).")
notifications_app = typer.Typer(no_args_is_help=True, help="The notification outbox.")


def run_worker(settings: Settings, *, once: bool) -> int:
    return asyncio.run(_worker(settings, once=once))


async def _worker(settings: Settings, *, once: bool) -> int:
    engine = await run_sync(create_engine, settings)
    outbox = Outbox(settings, create_sessionmaker(engine), transport_for(settings))
    try:
        if once:
            started = time.perf_counter()
            handled = await outbox.drain()
            elapsed = time.perf_counter() - started
            out.print(f"drained {handled} message(s) in {elapsed:.3f} s", highlight=False)
            return handled
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        outbox.start()
        await stop.wait()
        await outbox.stop(grace_s=settings.smtp_timeout_s)
        return outbox.counters["sent"]
    finally:
        await engine.dispose()


def _read(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        message = BytesParser(policy=policy.default).parse(handle)
    assert isinstance(message, EmailMessage)
    return message


def mailbox_list(settings: Settings) -> None:
    folder = Path(settings.mailbox_dir)
    table = Table("ID", "Date", "To", "Subject")
    for path in sorted(folder.glob("*.eml")):
        message = _read(path)
        table.add_row(
            path.stem.lstrip("0"), str(message["Date"]), str(message["To"]), str(message["Subject"])
        )
    out.print(table)


def mailbox_show(settings: Settings, message_id: int) -> None:
    path = Path(settings.mailbox_dir) / f"{message_id:08d}.eml"
    if not path.exists():
        out.print(f"no message {message_id} in {settings.mailbox_dir}")
        raise typer.Exit(1)
    message = _read(path)
    for header in ("Message-ID", "Date", "From", "To", "Subject"):
        out.print(f"{header}: {message[header]}", markup=False, highlight=False)
    body = message.get_body(preferencelist=("plain",))
    out.print("")
    out.print(body.get_content() if body is not None else "", markup=False, highlight=False)


async def _with_session(settings: Settings, action: str, message_id: int | None = None) -> object:
    engine = await run_sync(create_engine, settings)
    try:
        async with create_sessionmaker(engine)() as session:
            if action == "stats":
                return await repository.stats(session)
            if action == "failed":
                return [
                    (m.id, m.kind, m.to_email, m.attempts, m.last_error or "")
                    for m in await repository.dead_letters(session)
                ]
            await begin_write(session)
            count = await repository.requeue_dead(session, utcnow(), message_id)
            await session.commit()
            return count
    finally:
        await engine.dispose()


def notifications_stats(settings: Settings) -> None:
    stats = asyncio.run(_with_session(settings, "stats"))
    assert isinstance(stats, dict)
    table = Table("Measure", "Count")
    for key in ("depth", "pending", "sending", "sent", "dead", "retried", "failed_attempts"):
        table.add_row(key, str(stats[key]))
    out.print(table)


def notifications_failed(settings: Settings) -> None:
    rows = asyncio.run(_with_session(settings, "failed"))
    assert isinstance(rows, list)
    table = Table("ID", "Kind", "To", "Attempts", "Last error")
    for row in rows:
        table.add_row(*(str(v) for v in row))
    out.print(table)
    out.print(f"{len(rows)} dead letter(s)")


def notifications_retry(settings: Settings, message_id: int | None) -> int:
    count = asyncio.run(_with_session(settings, "retry", message_id))
    assert isinstance(count, int)
    out.print(f"re-queued {count} message(s)")
    return count


MessageId = Annotated[int, typer.Argument(help="Outbox id of the message.")]
