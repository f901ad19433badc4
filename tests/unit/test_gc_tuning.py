"""The process's collector thresholds: raised to Skyfleet's, never lowered."""

from __future__ import annotations

import gc

from skyfleet import gc_tuning


def test_thresholds_are_raised_and_never_lowered() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        gc_tuning.tune()
        assert gc.get_threshold() == gc_tuning.THRESHOLDS
        gc.set_threshold(200_000, 5, 50)
        gc_tuning.tune()
        assert gc.get_threshold() == (200_000, 20, 50)
    finally:
        gc.set_threshold(*before)
