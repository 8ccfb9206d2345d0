"""Turning an outbox row into an e-mail: subject, text and HTML bodies, Message-ID."""

from __future__ import annotations

import hashlib
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate, parseaddr
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from asyncpress.notifications.repository import Claimed

SUBJECTS = {
    "comment": '{actor} commented on "{title}"',
    "follow": "{actor} now follows you",
    "favorite": '{actor} favorited "{title}"',
}


def message_id(idempotency_key: str, mail_from: str) -> str:
    """The same key always gives the same Message-ID, so a re-send is a visible duplicate."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "asyncpress.localhost"
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
    return f"<{digest}@{domain}>"


class Renderer:
    """Jinja2 templates (HTML autoescaped). Rendering is CPU work: call from a thread."""

    def __init__(self, mail_from: str, public_url: str) -> None:
        self._from = mail_from
        self._base = public_url.rstrip("/")
        self._env = Environment(
            loader=FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=select_autoescape(["html.j2"]),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )

    def render(self, message: Claimed) -> bytes:
        """The message as it goes on the wire: headers, a text and an HTML part.

        Built with the ``compat32`` MIME classes: the modern ``EmailMessage``
        parses every header it is given, most of a worker's time per mail;
        this costs a fraction of that for
        the same bytes on the wire (UTF-8 parts, RFC 2047 for non-ASCII).
        """
        data = dict(message.payload)
        data["actor_url"] = f"{self._base}/profile/{quote(data['actor'])}"
        if "slug" in data:
            data["article_url"] = f"{self._base}/article/{quote(data['slug'])}"
        subject = SUBJECTS[message.kind].format(**data)
        email = MIMEMultipart("alternative")
        email["From"] = self._from
        email["To"] = message.to_email
        email["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
        email["Date"] = formatdate(usegmt=True)
        email["Message-ID"] = message_id(message.idempotency_key, self._from)
        email["X-Asyncpress-Key"] = message.idempotency_key
        text = self._env.get_template(f"{message.kind}.txt.j2").render(**data)
        html = self._env.get_template(f"{message.kind}.html.j2").render(**data)
        email.attach(MIMEText(text, "plain", "utf-8"))
        email.attach(MIMEText(html, "html", "utf-8"))
        return email.as_bytes()
