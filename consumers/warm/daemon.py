"""The warm materializer: one process per home that holds chdb open, tails the log and answers clients.

One worker thread (the main thread) owns the tables: it materializes what arrives in the local log every
``poll`` seconds, and runs the jobs that connection threads hand it (a ``sync`` to a watermark, a query).
Writes are the runner's: sink first, then ``consumer_progress``, then the source positions, so a daemon
killed mid-batch loses nothing (the next one resumes from the tables' progress and the ReplacingMergeTree
tables absorb the replayed rows).

It lets go of chdb's folder for a moment when another process waits for it (``chdb.wanted``, e.g.
``expstream consume --once`` or a process that opens the tables itself) and takes it back after.
It exits, having committed what it wrote, on SIGTERM or SIGINT, on a ``stop`` request, when its home
disappears, and when it has had no request and nothing new to materialize for ``idle`` seconds.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import queue
import secrets
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

from expstream.consumers.runner import Runner
from expstream.consumers.sinks.chdb import ChdbTables
from expstream.consumers.warm.protocol import ERRORS, WarmPaths, decode, encode, watermark_from_wire
from expstream.eventlog.records import Watermark
from expstream.exceptions import LockTimeout, NeptuneException, StorageError
from expstream.localfiles import write_atomically
from expstream.locking import open_lock_file, try_flock

__all__ = ["POLL_INTERVAL", "serve"]

log = logging.getLogger("expstream.materializer")

#: seconds between looks at the log's end: a point flushed by any writer is in the tables this much later
POLL_INTERVAL = 0.05
#: how long the daemon stays away from chdb's folder when another process asked for it
_YIELD_PAUSE = 0.2


def _identity(folder: Path) -> tuple[int, int]:
    info = os.stat(folder)
    return info.st_dev, info.st_ino


class _Stop(Exception):
    pass


def serve(runner: Runner, home: Path, *, idle: float, poll: float = POLL_INTERVAL) -> int:
    """Run the daemon of ``home`` until it should exit; 0, also when another daemon already runs there."""
    paths = WarmPaths(home)
    home.mkdir(parents=True, exist_ok=True)
    run_fd = open_lock_file(paths.run_lock)
    if not try_flock(run_fd):
        os.close(run_fd)
        log.info("a materializer already runs for %s", home)
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        write_atomically(paths.pid, f"{os.getpid()}\n".encode())
        worker = _Worker(runner, home, stop, idle=idle, poll=poll)
        worker.open()  # chdb loaded and the tables checked before anyone connects
        listener = _listen(paths)
        threading.Thread(target=_accept, args=(listener, worker), name="accept", daemon=True).start()
        log.info("materializer of %s ready (pid %d)", home, os.getpid())
        gc.freeze()  # what the start made stays: no collection walks it again
        gc.enable()  # off while it started, when the client started it (client._START)
        try:
            worker.run()
        finally:
            try:
                with contextlib.suppress(FileNotFoundError):  # the socket went with a removed home
                    listener.close()  # (it unlinks the socket file itself)
                if paths.address_is_file:
                    with contextlib.suppress(FileNotFoundError):
                        paths.socket.unlink()
            finally:
                worker.close()  # always: an open chdb session keeps the process from exiting
    finally:
        with contextlib.suppress(FileNotFoundError):
            paths.pid.unlink()
        os.close(run_fd)  # releases the run lock last: until here no second daemon starts
    return 0


def _listen(paths: WarmPaths) -> Listener:
    key = secrets.token_bytes(32)
    write_atomically(paths.key, key)
    os.chmod(paths.key, 0o600)
    if paths.address_is_file:
        with contextlib.suppress(FileNotFoundError):  # a killed daemon's: we hold the run lock, so it is stale
            paths.socket.unlink()
    old = os.umask(0o177)  # the socket is the owner's only, from the moment it exists
    try:
        return Listener(paths.address, family="AF_UNIX", authkey=key)
    finally:
        os.umask(old)


def _accept(listener: Listener, worker: _Worker) -> None:
    while True:
        try:
            conn = listener.accept()
        except OSError:  # closed: the daemon is exiting
            return
        except Exception as exc:  # a client that failed authentication
            log.warning("refused a connection: %s", exc)
            continue
        threading.Thread(target=_session, args=(conn, worker), name="client", daemon=True).start()


def _session(conn: Connection, worker: _Worker) -> None:
    """Answer one client's requests, one at a time, until it hangs up."""
    with conn:
        while True:
            try:
                header = decode(conn.recv_bytes())
            except (OSError, EOFError):
                return
            except ValueError as exc:
                _send(conn, {"ok": False, "error": "StorageError", "message": f"bad request: {exc}"})
                continue
            try:
                answer, payload = worker.ask(header)
            except _Stop:
                _send(conn, {"ok": True})
                return
            except NeptuneException as exc:
                name = next((n for n in ERRORS if type(exc).__name__ == n), "StorageError")
                answer, payload = {"ok": False, "error": name, "message": str(exc)}, None
            except Exception as exc:
                log.exception("request failed")
                answer, payload = {"ok": False, "error": "StorageError", "message": repr(exc)}, None
            if not _send(conn, answer, payload):
                return


def _send(conn: Connection, answer: dict[str, Any], payload: bytes | None = None) -> bool:
    try:
        conn.send_bytes(encode({**answer, "payload": payload is not None}))
        if payload is not None:
            conn.send_bytes(payload)
        return True
    except (OSError, EOFError):
        return False


class _Worker:
    """The thread that owns the tables; every chdb call of the daemon runs here."""

    def __init__(self, runner: Runner, home: Path, stop: threading.Event, *, idle: float, poll: float) -> None:
        if not isinstance(runner.tables, ChdbTables):
            raise TypeError("the warm materializer serves the embedded chdb tables")
        self.runner = runner
        self.tables: ChdbTables = runner.tables
        self.home = home
        self.stop = stop
        self.idle = idle
        self.poll = poll
        self._jobs: queue.Queue[tuple[Callable[[], Any], Future[Any]]] = queue.Queue()
        self._held: contextlib.ExitStack | None = None
        self._opened_wall = 0.0
        self._done: Watermark = {}  # how far the tables are known to hold the log
        self._last_activity = time.monotonic()
        self._home_id = _identity(home)
        self._last_tail = 0.0

    def home_gone(self) -> bool:
        """Whether the home was removed (or replaced by another folder of that name) since the start."""
        try:
            return _identity(self.home) != self._home_id
        except OSError:
            return True

    def ask(self, header: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
        """Run a request on the worker thread (called from a connection thread)."""
        op = header.get("op")
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}, None
        if op == "stop":
            self.stop.set()
            raise _Stop
        if op == "sync":
            target = watermark_from_wire(header.get("watermark"))
            if target is not None and self._covers(target):  # nothing new: answered without the worker
                self._last_activity = time.monotonic()
                return {"ok": True}, None
            self._run(lambda: self._catch_up(target))
            return {"ok": True}, None
        if op == "query":
            sql, params, readonly = str(header["sql"]), dict(header.get("params") or {}), bool(header.get("readonly"))
            return {"ok": True}, self._run(lambda: self.tables.query_arrow(sql, params, readonly=readonly))
        raise ValueError(f"unknown request {op!r}")

    def _run(self, fn: Callable[[], Any]) -> Any:
        future: Future[Any] = Future()
        self._jobs.put((fn, future))
        return future.result()

    def _covers(self, target: Watermark) -> bool:
        done = self._done
        return all(done.get(tp, 0) >= offset for tp, offset in target.items())

    # --- the worker thread -----------------------------------------------------------------

    def open(self) -> None:
        while not self.stop.is_set():
            try:
                stack = contextlib.ExitStack()
                stack.enter_context(self.tables.hold())
            except LockTimeout as exc:  # another process keeps the folder: keep trying, we are the way in
                log.warning("waiting for the embedded tables: %s", exc)
                continue
            self._held, self._opened_wall = stack, time.time()
            self._done = {}  # someone else may have materialized meanwhile: resume from the tables
            return

    def close(self) -> None:
        while True:  # answer what was asked before the stop, so no client waits for nothing
            try:
                _fn, future = self._jobs.get_nowait()
            except queue.Empty:
                break
            future.set_exception(NeptuneException("the warm materializer is stopping"))
        if self._held is not None:
            self._held.close()
            self._held = None
        self.tables.close()

    def run(self) -> None:
        while not self.stop.is_set():
            job: tuple[Callable[[], Any], Future[Any]] | None
            try:  # wait no longer than the next look at the log is due (at once after the start: the script
                # that started us may have flushed its points already)
                job = self._jobs.get(timeout=max(0.0, self._last_tail + self.poll - time.monotonic()))
            except queue.Empty:
                job = None
            future = None if job is None else job[1]
            if self.home_gone():  # before touching the log, which would create its folders again
                log.info("home %s is gone: exiting", self.home)
                if future is not None:
                    future.set_exception(StorageError(f"the home {self.home} was removed"))
                break
            if self._held is None:
                self.open()
                if self._held is None:
                    break
            if job is not None:
                fn, future = job
                self._last_activity = time.monotonic()
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as exc:
                        future.set_exception(exc)
            if time.monotonic() - self._last_tail >= self.poll:  # also between requests: a busy reader never
                self._last_tail = time.monotonic()  # starves the tailing
                self._tail()
            if time.monotonic() - self._last_activity > self.idle:
                log.info("idle for %g s: exiting", self.idle)
                break
            if self.tables.wanted_since(self._opened_wall):
                self._yield_folder()

    def _tail(self) -> None:
        try:
            end = self.runner.source.end_offsets()
            if not self._covers(end):
                self._catch_up(end)
        except NeptuneException as exc:  # the log or the tables failed now: the next poll tries again
            log.warning("materializing failed, retrying: %s", exc)
            time.sleep(min(1.0, self.poll * 10))

    def _catch_up(self, target: Watermark | None) -> None:
        end = self.runner.source.end_offsets()  # covers any watermark a client flushed before asking
        if target is not None:
            end = {tp: max(end.get(tp, 0), offset) for tp, offset in {**end, **target}.items()}
        if self._covers(end):  # we are the only materializer while we hold the folder: nothing to do
            return
        try:  # after (re)opening, or after a failure, from the tables' progress; else where the last one ended
            applied = self.runner.catch_up(until=end, resume=not self._done)
        except BaseException:
            self._done = {}  # the source may have read past what the tables took: the next one resumes
            raise
        self._done = dict(self.runner.positions)
        if applied:
            self._last_activity = time.monotonic()

    def _yield_folder(self) -> None:
        """Let a process that waits for chdb's folder have it, then take it back."""
        if self._held is not None:
            self._held.close()
            self._held = None
        time.sleep(_YIELD_PAUSE)  # the waiter polls its lock every <= 50 ms: it gets in now
        self.open()
