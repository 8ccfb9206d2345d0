"""The garbage-collection policy, with the real collector of this process."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from asyncpress.fast.gc_pauses import PauseMeter
from asyncpress.fast.gc_policy import Collector


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


def _old_garbage() -> weakref.ref[Cycle]:
    """A cycle in the oldest generation that nothing refers to any more."""
    held = [Cycle()]
    gc.collect()  # survives, so it moves to the oldest generation
    ref = weakref.ref(held[0])
    held.clear()
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
def test_closes_count_across_freezes_until_a_thaw() -> None:
    """Many short-lived streams, few open at once: every freeze catches a few."""
    collector = Collector(burst=3, thaw_fraction=0.5)
    first = [collector.stream_opened() for _ in range(3)]
    assert collector.step(open_streams=3) == "froze"
    collector.stream_closed(first[0])
    collector.stream_closed(first[1])
    second = [collector.stream_opened() for _ in range(3)]
    assert collector.step(open_streams=4) == "froze"  # the 2 closes still wait
    collector.stream_closed(second[0])
    assert collector.step(open_streams=3) == "thawed"  # 3 closes of frozen streams
    assert collector.counters == {"freezes": 2, "thaws": 1}


@pytest.mark.usefixtures("unfrozen")
def test_startup_is_frozen_after_a_full_collection() -> None:
    garbage = _old_garbage()  # only a full collection finds it
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
