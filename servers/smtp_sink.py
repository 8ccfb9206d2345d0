"""A real SMTP server (aiosmtpd) for the tests, run as its own process.

    python -m servers.smtp_sink PORT OUT_DIR [--mode accept|reject|stall]

Every accepted message is stored as ``OUT_DIR/<n>.eml``. ``reject`` answers
every message with a temporary failure (451); ``stall`` stores the message,
then never answers (a server that hangs mid-delivery).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out: Path, mode: str) -> None:
        self.out = out
        self.mode = mode
        self.serial = itertools.count(1)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        if self.mode == "reject":
            return "451 4.3.0 try again later"
        # Unique across restarts of the sink on the same folder.
        name = self.out / f"{time.time_ns()}-{os.getpid()}-{next(self.serial):06d}.eml"
        partial = name.with_suffix(".partial")
        partial.write_bytes(envelope.original_content)
        partial.rename(name)
        if self.mode == "stall":
            await asyncio.sleep(3600)
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--mode", choices=("accept", "reject", "stall"), default="accept")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    controller = Controller(Sink(args.out, args.mode), hostname="127.0.0.1", port=args.port)
    controller.start()
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
