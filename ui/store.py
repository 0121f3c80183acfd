"""One thread that owns the embedded tables for the UI: open while pages ask, let go when others wait.

Why: opening chdb's folder costs 0.1-0.3 s here, far too slow to pay per request (a live page polls
every second, a chart is one request), yet the folder is exclusive and other processes (a training
script's ``sync()``, a notebook, ``expstream sql``) need it too. So every read of the UI runs on this
thread, which keeps the folder open across requests and closes it when

* nothing was asked for ``linger`` seconds,
* another process started waiting for it (:meth:`ChdbTables.wanted_since`): then it pauses briefly
  so the waiter gets the lock before the UI asks again,
* or it has been open ``max_hold`` seconds in a row (a backstop should a waiter go unnoticed).

A waiting process therefore waits about one request of the UI, not the UI's whole session. Reads are
serialized, as chdb serializes them within a process anyway.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from expstream.consumers.sinks.chdb import ChdbTables

__all__ = ["StoreThread"]

T = TypeVar("T")
_STOP = object()


class StoreThread:
    def __init__(
        self,
        tables: ChdbTables,
        *,
        linger: float = 2.0,
        max_hold: float = 5.0,
        pause: float = 0.2,
        lock_timeout: float | None = 30.0,
    ) -> None:
        self.tables = tables
        self.linger = linger
        self.max_hold = max_hold
        self.pause = pause
        self.lock_timeout = lock_timeout
        self._jobs: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="expstream-ui-store", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the store thread with the tables open; its result or exception."""
        future: Future[T] = Future()
        self._jobs.put((fn, args, kwargs, future))
        return future.result()

    def close(self) -> None:
        """Finish the jobs already asked for, close the tables, end the thread."""
        self._jobs.put(_STOP)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        held: contextlib.ExitStack | None = None
        opened = opened_wall = last = 0.0
        while True:
            try:
                job = self._jobs.get(timeout=0.05)
            except queue.Empty:
                job = None
            if held is not None:
                now = time.monotonic()
                wanted = self.tables.wanted_since(opened_wall)
                if job is _STOP or wanted or now - opened > self.max_hold or (job is None and now - last > self.linger):
                    held.close()
                    held = None
                    if job is not _STOP and (wanted or now - opened > self.max_hold):
                        time.sleep(self.pause)  # the waiter polls its lock every <= 50 ms: it gets in now
            if job is _STOP:
                return
            if job is None:
                continue
            fn, args, kwargs, future = job
            if not future.set_running_or_notify_cancel():
                continue
            try:
                if held is None:
                    stack = contextlib.ExitStack()
                    stack.enter_context(self.tables.hold(self.lock_timeout))
                    held, opened, opened_wall = stack, time.monotonic(), time.time()
                result = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller, who turns it into a page
                future.set_exception(exc)
            else:
                future.set_result(result)
            last = time.monotonic()


class OnStoreThread:
    """Stands in for an object (the UI's Browser) whose every method call runs on a :class:`StoreThread`."""

    def __init__(self, target: object, store: StoreThread) -> None:
        self._target = target
        self._store = store

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def on_store(*args: Any, **kwargs: Any) -> Any:
            return self._store.call(attr, *args, **kwargs)

        return on_store
