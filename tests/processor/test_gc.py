"""The Job's collector settings: start-up objects frozen, collections far apart but bounded."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from processor.__main__ import GC_THRESHOLDS, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_tune_gc_freezes_what_is_loaded_and_still_collects_cycles() -> None:
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.get_freeze_count() > 0
    assert gc.isenabled()

    class Node:
        partner: object

    collected = 0
    for _ in range(3):
        a, b = Node(), Node()
        a.partner, b.partner = b, a  # a cycle only the collector can free
        del a, b
        collected += gc.collect()
    assert collected >= 6
