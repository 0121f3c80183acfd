"""Locks between processes (``flock``) that give up at a deadline instead of waiting forever.

Why: a process stopped with SIGSTOP (or hung in a debugger) keeps its flocks, and a plain
``flock`` would make every other process wait for it without end, whatever timeout its caller
gave (``sync(timeout=10)``). Every flock in expstream is taken here: it polls a non-blocking
``flock`` until the deadline and then raises :class:`~expstream.exceptions.LockTimeout`, which is
an expstream error and a ``TimeoutError``. ``timeout=None`` means the caller has no deadline of its
own: ``EXPSTREAM_LOCK_TIMEOUT`` (default :data:`DEFAULT_LOCK_TIMEOUT`) applies then.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from expstream.exceptions import LockTimeout

__all__ = ["DEFAULT_LOCK_TIMEOUT", "default_lock_timeout", "flock", "locked", "open_lock_file", "try_flock", "unlock"]

#: seconds a lock is waited for when the caller gives no timeout and EXPSTREAM_LOCK_TIMEOUT is unset
DEFAULT_LOCK_TIMEOUT = 60.0
_MAX_PAUSE = 0.05


def default_lock_timeout() -> float:
    """``EXPSTREAM_LOCK_TIMEOUT`` as the settings validated it, else the built-in default.

    Read through the settings object (one way for configuration), lazily: components deep below
    the API take locks without holding a settings object of their own."""
    from expstream.config import load_settings

    try:
        return load_settings().lock_timeout
    except Exception:  # an invalid setting elsewhere must not turn every lock into a crash
        return DEFAULT_LOCK_TIMEOUT


def flock(fd: int, path: Path | str, *, shared: bool = False, timeout: float | None = None) -> None:
    """Lock ``fd`` (the open file ``path``, named in the error) within ``timeout`` seconds."""
    operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    try:
        fcntl.flock(fd, operation)
        return
    except BlockingIOError:
        pass
    limit = default_lock_timeout() if timeout is None else max(0.0, float(timeout))
    deadline = time.monotonic() + limit
    pause = 0.001
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            kind = "shared" if shared else "exclusive"
            raise LockTimeout(
                f"could not take the {kind} lock on {path} within {limit:g} s: another process holds it "
                "(a stopped or hung expstream process?); let it finish or end it, then try again"
            )
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, _MAX_PAUSE)
        try:
            fcntl.flock(fd, operation)
            return
        except BlockingIOError:
            continue


def try_flock(fd: int, *, shared: bool = False) -> bool:
    """Take the lock on ``fd`` if it is free now; False (nothing taken) when another holder has it.

    For owner checks ("does a living process hold this?") and for work any one process may do."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def locked(fd: int, path: Path | str, *, shared: bool = False, timeout: float | None = None) -> Iterator[None]:
    """``flock`` for the length of a ``with`` block."""
    flock(fd, path, shared=shared, timeout=timeout)
    try:
        yield
    finally:
        unlock(fd)


def open_lock_file(path: Path) -> int:
    """A descriptor of the lock file ``path`` (created if missing), for :func:`flock`."""
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
