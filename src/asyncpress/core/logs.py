"""Log lines: JSON in production, text in development, each with its request id.

The request id lives in a context variable set by the request-id middleware
(``asyncpress.ops.request_id``) for the request's task and everything it
awaits or spawns; every log record gets it when it is made, so any
module's plain ``log.info(...)`` carries it without passing it around.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

REQUEST_ID: ContextVar[str | None] = ContextVar("asyncpress_request_id", default=None)

_MARK = "_asyncpress_handler"


def current_request_id() -> str | None:
    """The id of the request this code runs for, if any (also written to rows)."""
    return REQUEST_ID.get()


def _with_request_id(factory: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.request_id = REQUEST_ID.get() or "-"
        return record

    setattr(make, _MARK, True)
    return make


def _install_record_factory() -> None:
    """Every record gets the request id when it is made, whatever handles it."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, _MARK, False):
        logging.setLogRecordFactory(_with_request_id(factory))


def configure_logging(level: str, fmt: str) -> None:
    """One handler on the root logger, installed once per process (idempotent).

    ``fmt`` is ``json`` (one object per line: time, level, logger, message,
    request_id, pid, and the extra fields a call gives) or ``text``.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
    _install_record_factory()
    handler = logging.StreamHandler()
    setattr(handler, _MARK, True)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(process)d",
                # process: which worker of `serve --workers N` wrote the line.
                rename_fields={
                    "asctime": "time",
                    "levelname": "level",
                    "name": "logger",
                    "process": "pid",
                },
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s [%(request_id)s] %(message)s")
        )
    root.addHandler(handler)
    root.setLevel(level)
    # The pool's own lifecycle lines (disposed, recreated: every shutdown) are
    # SQLAlchemy's INFO chatter; an operator needs its warnings only.
    logging.getLogger("asyncpress.fast.pool").setLevel(logging.WARNING)
