"""A shutdown signal reaches the server only after the event streams said goodbye."""

from __future__ import annotations

import asyncio
import os
import signal
from types import FrameType

from asyncpress.events.signals import chain_shutdown


async def test_the_signal_is_handed_on_after_the_streams_ended() -> None:
    handed_on: list[int] = []

    def server_handler(signum: int, _frame: FrameType | None) -> None:
        handed_on.append(signum)

    streams_ended = asyncio.Event()
    began: list[bool] = []

    async def end_streams() -> None:
        began.append(True)
        await streams_ended.wait()

    previous = signal.signal(signal.SIGTERM, server_handler)
    undo = chain_shutdown(end_streams)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.1)
        assert began == [True]
        assert handed_on == []  # the server has not been told yet

        streams_ended.set()
        await asyncio.sleep(0.05)
        assert handed_on == [signal.SIGTERM]

        # Once underway, a second signal goes straight on (a forced exit).
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.05)
        assert handed_on == [signal.SIGTERM, signal.SIGTERM]
        assert began == [True]
    finally:
        undo()
        signal.signal(signal.SIGTERM, previous)
    assert signal.getsignal(signal.SIGTERM) is previous
