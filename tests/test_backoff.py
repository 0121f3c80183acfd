"""The backoff of the outage loops: doubling, capped, reset after a success."""

from __future__ import annotations

import pytest

from expstream.backoff import Backoff


def test_pauses_double_up_to_the_cap_and_reset() -> None:
    backoff = Backoff(0.1, 0.5)
    assert [backoff.next() for _ in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    backoff.reset()
    assert backoff.next() == 0.1


@pytest.mark.parametrize(("initial", "maximum"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_nonsense_bounds_are_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(initial, maximum)
