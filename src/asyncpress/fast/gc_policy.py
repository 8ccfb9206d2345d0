"""A garbage-collection policy for a process holding thousands of open streams.

Every open stream keeps some 200 container objects alive (its tasks,
coroutines, queue, the server's protocol objects). CPython's full
collection walks all of them, and it starts one whenever the objects in its
oldest generation have grown by a quarter, which is what a burst of new
connections does. Each stops the whole process, and a delivery caught
behind one arrives that late (docs/benchmarks.md, "Live events").

So, with ``GC_FREEZE`` on (the default):

- at start-up, after a full collection, everything loaded so far is frozen
  (``gc.freeze()``): modules, models, the app. None of it is ever garbage;
- once at least ``BURST`` new streams have opened since the last freeze
  (checked every second, so during a storm of connections too), the young
  generations are collected and everything alive is frozen again. Full
  collections then walk only what came after;
- frozen objects are still freed by reference counting, but a reference
  cycle among them is not, and a closed WebSocket leaves some (about 94
  objects each, measured). So once the frozen streams closed since the last
  full collection number a quarter of the streams open at the last freeze,
  and at least ``BURST``, the frozen objects are thawed, one full collection
  runs, and the survivors are frozen again. What can wait in frozen cycles
  is thus bounded by that many closed streams, whatever the churn. Under
  steady reconnection that is one full collection per quarter of the
  streams renewed, about when CPython's own rule would run one (reasoned,
  not measured); after a burst of new connections there is none.
"""

from __future__ import annotations

import gc

BURST = 200
THAW_FRACTION = 0.25


class Collector:
    def __init__(
        self,
        burst: int = BURST,
        thaw_fraction: float = THAW_FRACTION,
    ) -> None:
        self.burst = burst
        self.thaw_fraction = thaw_fraction
        # Bumped by every freeze: a stream opened in an earlier era is frozen.
        self.era = 0
        self.opened = 0  # streams opened since the last freeze
        self.frozen_streams = 0  # streams open at the last freeze
        # Frozen streams closed since the last full collection: their cycles wait.
        self.closed_frozen = 0
        self.counters = {"freezes": 0, "thaws": 0}

    def freeze_startup(self) -> None:
        """Collect once, then freeze what start-up loaded."""
        gc.collect()
        self._freeze(0)

    def stream_opened(self) -> int:
        """Note a new stream; returns its era (pass it to ``stream_closed``)."""
        self.opened += 1
        return self.era

    def stream_closed(self, era: int) -> None:
        if era < self.era:
            self.closed_frozen += 1

    def step(self, open_streams: int) -> str | None:
        """Freeze or thaw if it is time; returns what was done, if anything."""
        if self.frozen_streams and self.closed_frozen >= max(
            self.burst, self.thaw_fraction * self.frozen_streams
        ):
            gc.unfreeze()
            gc.collect()
            self.closed_frozen = 0
            self._freeze(open_streams)
            self.counters["thaws"] += 1
            return "thawed"
        if self.opened >= self.burst:
            gc.collect(1)  # young garbage, so it is not frozen with the rest
            self._freeze(open_streams)
            self.counters["freezes"] += 1
            return "froze"
        return None

    def _freeze(self, open_streams: int) -> None:
        gc.freeze()
        self.era += 1
        self.opened = 0
        self.frozen_streams = open_streams
