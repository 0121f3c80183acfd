"""Exponential backoff for the loops that wait out an outage (the store, Kafka, a sink).

Retries of a single call use tenacity (the ClickHouse adapter); the long-running loops here keep
going forever and reset after each success, which is this small object's one job.
"""

from __future__ import annotations

__all__ = ["Backoff"]


class Backoff:
    """Pauses that double from ``initial`` up to ``maximum``; ``reset`` after a success."""

    def __init__(self, initial: float, maximum: float) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {initial} and {maximum}")
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def next(self) -> float:
        """The pause to take now; the one after it is twice as long (at most ``maximum``)."""
        pause = self._next
        self._next = min(self._next * 2, self.maximum)
        return pause

    def reset(self) -> None:
        self._next = self.initial
