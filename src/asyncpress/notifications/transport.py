"""Where e-mail goes: an SMTP server (aiosmtplib) or a local mailbox folder."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiosmtplib
import anyio

from asyncpress.core.config import Settings

QUIT_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message ready for the wire: envelope and the flattened bytes."""

    sender: str
    recipient: str
    data: bytes


class Transport(Protocol):
    async def send(self, batch: list[tuple[int, Outgoing]]) -> dict[int, str | None]:
        """Send each message; map its outbox id to None (sent) or an error text."""
        ...


class MailboxTransport:
    """Embedded default: one ``.eml`` file per outbox message, written atomically.

    A re-send overwrites the same file, so the folder never holds duplicates.
    """

    def __init__(self, folder: str) -> None:
        self.folder = anyio.Path(folder)

    async def send(self, batch: list[tuple[int, Outgoing]]) -> dict[int, str | None]:
        await self.folder.mkdir(parents=True, exist_ok=True)
        results: dict[int, str | None] = {}
        for outbox_id, message in batch:
            target = self.folder / f"{outbox_id:08d}.eml"
            partial = self.folder / f".{outbox_id:08d}.eml.partial"
            try:
                await partial.write_bytes(message.data)
                await partial.rename(target)
                results[outbox_id] = None
            except OSError as exc:
                results[outbox_id] = f"mailbox: {exc}"
        return results


class SmtpTransport:
    """SMTP with aiosmtplib; a batch is spread over a few reused connections."""

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_url is not None
        url = urlsplit(settings.smtp_url)
        self.hostname = url.hostname or "127.0.0.1"
        self.implicit_tls = url.scheme == "smtps"
        self.port = url.port or (465 if self.implicit_tls else 25)
        self.username = settings.smtp_username or (unquote(url.username) if url.username else None)
        self.password = settings.smtp_password or (unquote(url.password) if url.password else None)
        self.starttls = settings.smtp_starttls
        self.timeout = settings.smtp_timeout_s
        self.connections = settings.mail_concurrency

    async def send(self, batch: list[tuple[int, Outgoing]]) -> dict[int, str | None]:
        results: dict[int, str | None] = {}
        lanes = [batch[i :: self.connections] for i in range(min(self.connections, len(batch)))]
        async with asyncio.TaskGroup() as group:
            for lane in lanes:
                group.create_task(self._send_lane(lane, results))
        return results

    async def _send_lane(
        self, lane: list[tuple[int, Outgoing]], results: dict[int, str | None]
    ) -> None:
        client = aiosmtplib.SMTP(
            hostname=self.hostname,
            port=self.port,
            use_tls=self.implicit_tls,
            start_tls=self.starttls if not self.implicit_tls else False,
            username=self.username,
            password=self.password,
            timeout=self.timeout,
        )
        pending = list(lane)
        try:
            await client.connect()
            while pending:
                outbox_id, message = pending[0]
                try:
                    await client.sendmail(message.sender, [message.recipient], message.data)
                    results[outbox_id] = None
                except (
                    aiosmtplib.SMTPResponseException,
                    aiosmtplib.SMTPRecipientsRefused,
                ) as exc:  # this message was refused; the connection is fine
                    results[outbox_id] = f"smtp: {exc}"
                pending.pop(0)
            # A polite goodbye, but never wait long for it.
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                async with asyncio.timeout(QUIT_TIMEOUT_S):
                    await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            for outbox_id, _ in pending:
                results[outbox_id] = f"smtp: {type(exc).__name__}: {exc}"
        finally:
            # Also on cancellation: drop the socket instead of waiting on a QUIT.
            client.close()


def transport_for(settings: Settings) -> Transport:
    if settings.smtp_url:
        return SmtpTransport(settings)
    return MailboxTransport(str(Path(settings.mailbox_dir)))
