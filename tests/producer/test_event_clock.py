"""The event clock of a producing process: wall time that never goes back (docs/architecture.md#order-of-changes)."""

from __future__ import annotations

import pytest

from expstream.producer import stream
from expstream.producer.stream import CLOCK_STEP, Origin


def test_a_backward_step_of_the_wall_clock_never_makes_a_later_event_earlier(monkeypatch: pytest.MonkeyPatch) -> None:
    wall = iter([1000.0, 1001.0, 400.0, 400.5, 1002.0, 1003.0, 1004.0])
    monkeypatch.setattr(stream, "_time", lambda: next(wall))
    origin = Origin("h", 1)
    stamps = [origin.header("e")["ts"] for _ in range(5)]
    assert stamps == [1000.0, 1001.0, 1001.0 + CLOCK_STEP, 1001.0 + 2 * CLOCK_STEP, 1002.0]
    assert [origin.header("e")["seq"] for _ in range(2)] == [6, 7]


def test_observe_moves_the_clock_past_what_was_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "_time", lambda: 100.0)
    origin = Origin("h", 1)
    origin.observe(5000.0)
    first = origin.header("e")["ts"]
    assert first == 5000.0 + CLOCK_STEP
    origin.observe(10.0)  # an older event moves nothing
    assert origin.header("e")["ts"] == first + CLOCK_STEP
