"""How often CPython's cycle collector ran in this process, and how long it stopped it.

A collection stops every task of the process. The young generations take
microseconds; a full one walks every container object alive and, with
thousands of open streams, took most of a second (see
asyncpress.fast.gc_policy). ``/metrics`` reports these figures by
generation.
"""

from __future__ import annotations

import gc
import time
from typing import Any

GENERATIONS = (0, 1, 2)


class PauseMeter:
    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.seconds = [0.0, 0.0, 0.0]
        self.longest = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        generation = info["generation"]
        self.collections[generation] += 1
        self.seconds[generation] += took
        self.longest[generation] = max(self.longest[generation], took)

    def install(self) -> None:
        """Start measuring (once per process; later calls do nothing)."""
        if self not in gc.callbacks:
            gc.callbacks.append(self)


PAUSES = PauseMeter()
