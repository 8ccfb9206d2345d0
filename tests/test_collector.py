"""The garbage-collection policy, with the real collector of this process."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from asyncpress.events.collector import Collector
from asyncpress.ops.gc_pauses import PauseMeter


class Cycle:
    """An object that refers to itself: only the cycle collector frees it."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.collect()
    assert gc.get_freeze_count() == 0
    try:
        yield
    finally:
        gc.unfreeze()


def _frozen_cycle() -> weakref.ref[Cycle]:
    """A cycle that is alive at the freeze and garbage after it (as a closed stream's)."""
    held = [Cycle()]
    gc.collect()
    gc.freeze()
    ref = weakref.ref(held[0])
    held.clear()
    gc.unfreeze()
    return ref


@pytest.mark.usefixtures("unfrozen")
def test_a_burst_of_streams_is_frozen_and_enough_closes_thaw_it() -> None:
    collector = Collector(burst=3, thaw_fraction=0.5)
    eras = [collector.stream_opened() for _ in range(2)]
    assert collector.step(open_streams=2) is None  # fewer than a burst
    assert gc.get_freeze_count() == 0
    eras.append(collector.stream_opened())

    alive = Cycle()
    assert collector.step(open_streams=3) == "froze"
    assert gc.get_freeze_count() > 0
    # Frozen: a cycle that becomes garbage now is not collected ...
    witness = weakref.ref(alive)
    del alive
    gc.collect()
    assert witness() is not None

    # ... until enough of the streams frozen with it have closed.
    late = collector.stream_opened()
    collector.stream_closed(late)  # opened after the freeze: not frozen, does not count
    collector.stream_closed(eras[0])
    collector.stream_closed(eras[1])
    assert collector.step(open_streams=1) is None  # 2 closed, the burst is 3
    collector.stream_closed(eras[2])
    assert collector.step(open_streams=0) == "thawed"
    assert witness() is None
    assert collector.counters == {"freezes": 1, "thaws": 1}


@pytest.mark.usefixtures("unfrozen")
def test_startup_is_frozen_after_a_full_collection() -> None:
    garbage = _frozen_cycle()  # garbage that only a full collection finds
    collector = Collector()
    collector.freeze_startup()
    assert garbage() is None  # collected first, not frozen
    assert gc.get_freeze_count() > 0
    assert collector.stream_opened() == collector.era == 1


def test_the_meter_times_each_collection_by_generation() -> None:
    meter = PauseMeter()
    gc.callbacks.append(meter)
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        gc.callbacks.remove(meter)
    assert meter.collections[0] >= 1
    assert meter.collections[2] >= 1
    assert 0 < meter.longest[2] <= meter.seconds[2]
