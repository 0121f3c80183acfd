"""The client side of the warm materializer: find it, start it when it is not there, ask it.

Standard library only (a logging process imports it and must stay small). One ``WarmClient`` per home and
process (:meth:`WarmClient.for_home`) keeps one connection; a forked child opens its own.

Starting is exactly once per home: a client that cannot connect takes ``materializer.start.lock``, tries
again, and only then starts the daemon (``expstream materializer``). The daemon holds ``materializer.lock``
for its whole life, so a socket whose lock is free is stale (its daemon was killed) and is replaced.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

from expstream.consumers.warm.protocol import (
    WarmPaths,
    decode,
    encode,
    error_of,
    watermark_to_wire,
)
from expstream.eventlog.records import Watermark
from expstream.exceptions import ExpstreamTimeoutError, StorageError
from expstream.locking import locked, open_lock_file, try_flock, unlock

__all__ = ["WarmClient", "daemon_alive", "settle_background_starts", "started_here", "stop_daemons"]

#: seconds a start may take (interpreter, imports, chdb, schema check; more with a cold page cache)
START_TIMEOUT = 120.0

#: what the daemon's process runs: ``python -m expstream materializer`` with the cyclic garbage collector off until
#: the daemon is ready (``serve`` turns it on again). Its collections while ~1,000 modules are imported (pydantic,
#: numpy, pyarrow, chdb) took ~0.05 s of a ~0.55 s start, which a script's first ``sync()`` may wait for. The
#: arguments after the code keep ``expstream materializer`` in the process's command line, as ``-m`` did
_START = (
    "import gc, runpy, sys; gc.disable(); del sys.argv[1]; "
    "runpy.run_module('expstream', run_name='__main__', alter_sys=True)"
)

_clients: dict[tuple[Path, int], WarmClient] = {}
_clients_lock = threading.Lock()
#: daemons this process started (tests stop them; ``poll`` reaps the ones that exited)
_started: list[subprocess.Popen[bytes]] = []


def started_here() -> list[subprocess.Popen[bytes]]:
    """The daemons this process started that have not been reaped yet."""
    _started[:] = [p for p in _started if p.poll() is None]
    return list(_started)


def settle_background_starts(timeout: float = START_TIMEOUT) -> None:
    """Wait for the starts that :meth:`WarmClient.start_in_background` began in this process (a test's
    teardown, before it stops the daemons: none may appear after it)."""
    with _clients_lock:
        threads = [c._warming for c in _clients.values() if c._warming is not None]
    for thread in threads:
        thread.join(timeout)


def stop_daemons(*homes: Path) -> None:
    """Stop the daemons of ``homes`` and every one this process started, after the starts still under way: the
    teardown of tests and benchmarks, so that none writes into a folder being removed or outlives the run."""
    settle_background_starts()
    for folder in homes:
        if daemon_alive(WarmPaths(Path(folder).absolute())):
            WarmClient(folder).stop_daemon()
    for process in started_here():
        process.terminate()
        process.wait(60)


def daemon_alive(paths: WarmPaths) -> bool:
    """Whether a daemon holds the home's run lock (it may still be starting)."""
    if not paths.run_lock.exists():
        return False
    fd = os.open(paths.run_lock, os.O_RDONLY)
    try:
        return not try_flock(fd, shared=True)
    finally:
        os.close(fd)  # releases the probe's lock


class WarmClient:
    """Requests to the warm materializer of one home; thread-safe (requests take turns on one connection)."""

    def __init__(self, home: Path, *, start_timeout: float = START_TIMEOUT) -> None:
        self.paths = WarmPaths(Path(home).expanduser().absolute())
        self.start_timeout = start_timeout
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._warming: threading.Thread | None = None

    @classmethod
    def for_home(cls, home: Path) -> WarmClient:
        """The shared client of ``home`` in this process."""
        key = (Path(home).expanduser().absolute(), os.getpid())
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = cls(key[0])
            return client

    # --- requests --------------------------------------------------------------------------

    def sync(self, watermark: Watermark | None, timeout: float | None = None) -> None:
        """Return once the tables hold everything up to ``watermark`` (None: the log's end right now)."""
        self.request({"op": "sync", "watermark": watermark_to_wire(watermark)}, timeout)

    def query(self, sql: str, params: dict[str, Any] | None, *, readonly: bool = False) -> bytes:
        """The rows of one SELECT as Arrow IPC stream bytes (parameters bound by the daemon, never pasted)."""
        _, payload = self.request({"op": "query", "sql": sql, "params": params or {}, "readonly": readonly}, None)
        assert payload is not None
        return payload

    def ping(self, timeout: float | None = None) -> dict[str, Any]:
        header, _ = self.request({"op": "ping"}, timeout)
        return header

    def start_in_background(self) -> None:
        """Have the daemon starting (or connected) without waiting for it: ``init()`` and a new experiment
        call this, so the daemon's start (interpreter, chdb, schema) runs while the script logs, and it
        tails the log from the first flush on; the first ``sync()`` or read then finds it warm. Failures
        are left for that first request to report: this is only a head start."""
        if self._conn is not None or self._warming is not None:
            return
        # the spawn itself happens here: a thread of its own would wait for the GIL at each of the spawn's
        # steps while the script logs in a tight loop, which put the daemon's start ~0.25 s late
        started = None
        with contextlib.suppress(Exception):
            started = self._spawn_if_missing()
        self._warming = threading.Thread(target=self._warm, args=(started,), name="expstream-warm-start", daemon=True)
        self._warming.start()

    def _spawn_if_missing(self) -> tuple[int, subprocess.Popen[bytes]] | None:
        """Start the daemon now when none runs and no other process is starting one: the start lock (held,
        for :meth:`_until_ready` to wait under) and the process; None when there was nothing to do here."""
        if daemon_alive(self.paths):
            return None
        self.paths.home.mkdir(parents=True, exist_ok=True)
        fd = open_lock_file(self.paths.start_lock)
        try:
            if try_flock(fd):
                if not daemon_alive(self.paths):
                    return fd, self._spawn()
                unlock(fd)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        return None

    def _warm(self, started: tuple[int, subprocess.Popen[bytes]] | None) -> None:
        with contextlib.suppress(Exception):
            if started is not None:
                fd, process = started
                try:  # the start lock spawning took: held until the daemon answers, as _start holds it
                    conn = self._until_ready(process, time.monotonic() + self.start_timeout, self.start_timeout)
                finally:
                    os.close(fd)
                with self._lock:  # a request may have connected meanwhile: keep one connection
                    if self._conn is None:
                        self._conn = conn
                        return
                conn.close()
                return
            self.ping(self.start_timeout)

    def stop_daemon(self, timeout: float = 30.0) -> None:
        """Ask a running daemon to finish (commit, close, exit) and wait until it is gone; starts none."""
        with self._lock:
            conn = self._conn or self._try_connect()
            if conn is not None:
                with contextlib.suppress(OSError, EOFError):
                    conn.send_bytes(encode({"op": "stop"}))
                    if conn.poll(timeout):
                        conn.recv_bytes()
            self._drop()
        deadline = time.monotonic() + timeout
        while daemon_alive(self.paths) and time.monotonic() < deadline:
            time.sleep(0.02)

    def request(self, header: dict[str, Any], timeout: float | None) -> tuple[dict[str, Any], bytes | None]:
        """Send one request and wait ``timeout`` seconds (None: no limit) for its answer."""
        deadline = None if timeout is None else time.monotonic() + timeout
        frame = encode(header)
        with self._lock:
            for attempt in range(3):
                conn = self._connection(deadline)
                try:
                    conn.send_bytes(frame)
                    answer = decode(self._receive(conn, deadline))
                    payload = self._receive(conn, deadline) if answer.get("payload") else None
                except (OSError, EOFError) as exc:  # the daemon went away (idle exit, killed): start another
                    self._drop()
                    if attempt == 2:
                        raise StorageError(f"the warm materializer of {self.paths.home} went away: {exc}") from exc
                    continue
                if not answer.get("ok"):
                    raise error_of(answer)
                return answer, payload
        raise AssertionError("unreachable")

    def _receive(self, conn: Connection, deadline: float | None) -> bytes:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        if remaining is not None and not conn.poll(remaining):
            self._drop()  # its late answer must not be taken for the next request's
            raise ExpstreamTimeoutError(f"the warm materializer of {self.paths.home} did not answer in time")
        return conn.recv_bytes()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None

    # --- connecting and starting -----------------------------------------------------------

    def _connection(self, deadline: float | None) -> Connection:
        if self._conn is not None:
            return self._conn
        conn = self._try_connect() or self._start(deadline)
        self._conn = conn
        return conn

    def _try_connect(self) -> Connection | None:
        try:
            key = self.paths.key.read_bytes()
            return Client(self.paths.address, family="AF_UNIX", authkey=key)
        except (OSError, EOFError, ValueError):  # no daemon, a stale socket, a key of a daemon just replaced
            return None
        except Exception as exc:  # multiprocessing.AuthenticationError: the key changed under us
            if type(exc).__name__ == "AuthenticationError":
                return None
            raise

    def _start(self, deadline: float | None) -> Connection:
        """Connect to the daemon once it is ready, starting it under the start lock when none runs."""
        limit = self.start_timeout if deadline is None else max(0.0, deadline - time.monotonic())
        end = time.monotonic() + limit
        self.paths.home.mkdir(parents=True, exist_ok=True)
        fd = open_lock_file(self.paths.start_lock)
        try:
            with locked(fd, self.paths.start_lock, timeout=limit):
                return self._until_ready(None, end, limit)
        finally:
            os.close(fd)

    def _until_ready(self, process: subprocess.Popen[bytes] | None, end: float, limit: float) -> Connection:
        """Under the start lock: connect once the daemon answers, spawning it when none runs (``process``: the one
        this process spawned already, whose failure at start is reported with its log)."""
        while True:
            conn = self._try_connect()
            if conn is not None:
                return conn
            if process is None and not daemon_alive(self.paths):
                process = self._spawn()
            elif process is not None and process.poll() is not None and not daemon_alive(self.paths):
                raise StorageError(
                    f"the warm materializer of {self.paths.home} exited at start "
                    f"(status {process.returncode}): {self._log_tail()}"
                )
            if time.monotonic() > end:
                raise ExpstreamTimeoutError(
                    f"the warm materializer of {self.paths.home} did not start within {limit:g} s"
                )
            time.sleep(0.01)

    def _spawn(self) -> subprocess.Popen[bytes]:
        if self.paths.address_is_file:
            with contextlib.suppress(FileNotFoundError):  # stale: its daemon no longer holds the run lock
                self.paths.socket.unlink()
        env = dict(os.environ, EXPSTREAM_HOME=str(self.paths.home))
        with open(self.paths.log, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-c", _START, "expstream", "materializer"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.paths.home,  # not the caller's folder: a folder named expstream there would shadow us
                start_new_session=True,  # not stopped by the terminal's Ctrl-C meant for the training script
            )
        _started.append(process)
        return process

    def _log_tail(self) -> str:
        try:
            return self.paths.log.read_text(errors="replace")[-2000:].strip()
        except OSError:
            return "(no log)"
