"""Keeps the embedded tables caught up with the local event log while the UI runs.

Why a thread of its own, and why so brief: chdb locks its folder, and other processes (a training
script's ``sync()``, a notebook, ``expstream sql``) need it too. The thread looks at the log's end
offsets without any lock and takes the tables only when something new arrived, for one catch-up,
then lets go; pages read what it materialized. On the cluster the consumer services do this job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from expstream.consumers.runner import Runner
from expstream.eventlog.records import Watermark
from expstream.exceptions import ExpstreamIOError

__all__ = ["CatchUp", "Changes"]

log = logging.getLogger("expstream.ui")


class Changes:
    """A counter of catch-ups that applied something, which waiting status requests watch: a live page's
    long poll returns as soon as new events are in the tables, not at its next poll."""

    def __init__(self) -> None:
        self._version = 0
        self._changed = threading.Condition()

    @property
    def version(self) -> int:
        return self._version

    def bump(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for a version after ``seen``; returns the version now."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != seen, timeout=max(0.0, timeout))
            return self._version


class CatchUp:
    """Materializes new events every ``interval`` seconds, holding the tables only while it does."""

    def __init__(
        self,
        runner: Runner,
        interval: float = 0.1,
        lock_timeout: float = 5.0,
        run: Callable[[Callable[[], int]], int] | None = None,
        changes: Changes | None = None,
    ) -> None:
        """``run(fn)``: how a catch-up gets the tables (the UI's store thread); else a hold of its own.
        ``changes`` is bumped after every catch-up that applied events."""
        self.runner = runner
        self.changes = changes if changes is not None else Changes()
        self._call = run if run is not None else self._held
        self.interval = interval
        self.lock_timeout = lock_timeout
        self._stop = threading.Event()
        self._seen: Watermark | None = None
        self._thread = threading.Thread(target=self._run, name="expstream-ui-catch-up", daemon=True)

    def once(self) -> int:
        """One turn: catch up if the log grew since the last turn; returns events applied."""
        ends = self.runner.source.end_offsets()
        if ends == self._seen:
            return 0
        applied = self._call(self.runner.catch_up)
        self._seen = ends
        if applied:
            self.changes.bump()
        return applied

    def _held(self, fn: Callable[[], Any]) -> Any:
        with self.runner.tables.hold(self.lock_timeout):
            return fn()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.once()
            except ExpstreamIOError as exc:  # another process holds the tables long, or the disk failed
                log.warning("catching up with the event log failed, retrying: %s", exc)
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Let the current turn finish (nothing half-written), then end the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
