"""Numbering for one machine: a counter file per project, incremented under an exclusive flock.

Layout under ``folder``, one subfolder per project (a digest of its name)::

    <digest>/name            the project's name, for people
    <digest>/lock            flock'ed while a number is taken
    <digest>/counter         the last number handed out (decimal), replaced atomically
    <digest>/runs/<digest>   the number of a run id (``create_experiment(run_id=...)``)

The counter only caches what the event log records (every experiment's ExperimentCreated event
carries its number). When it is missing, empty or garbage it is rebuilt from the highest number
the log knows, with a warning naming the file, so a damaged counter never hands out a number
twice; with no log to ask it is refused with :class:`~expstream.exceptions.LocalStateError`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

from expstream.exceptions import ExperimentNumbersExhausted, ExpstreamTimeoutError, LocalStateError, TransportError
from expstream.localfiles import write_atomically
from expstream.locking import locked, open_lock_file
from expstream.producer.numbering.base import MAX_NUMBER, Numbering, NumberSource, run_experiment_id

__all__ = ["LocalFileNumbering"]

logger = logging.getLogger("expstream.numbering")

_DECIMAL = re.compile(rb"\s*([0-9]{1,30})\s*")


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _parse(raw: bytes) -> int | None:
    match = _DECIMAL.fullmatch(raw)
    return int(match.group(1)) if match else None


class LocalFileNumbering(Numbering):
    """``known``: where to look up the numbers already recorded (the event log) when a counter is
    damaged; ``limit``: the last number (tests lower it); ``lock_timeout``: seconds to wait for
    another process taking a number (None: ``EXPSTREAM_LOCK_TIMEOUT``)."""

    def __init__(
        self,
        folder: Path,
        known: NumberSource | None = None,
        *,
        limit: int = MAX_NUMBER,
        lock_timeout: float | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.known = known
        self.limit = min(int(limit), MAX_NUMBER)
        self.lock_timeout = lock_timeout

    def next_number(self, project: str) -> int:
        return self._allocate(project, None)[0]

    def number_for_run(self, project: str, run_id: str) -> tuple[int, bool]:
        return self._allocate(project, run_id)

    def _allocate(self, project: str, run_id: str | None) -> tuple[int, bool]:
        folder = self.folder / _digest(project)
        lock_path = folder / "lock"
        try:
            (folder / "runs").mkdir(parents=True, exist_ok=True)
            if not (folder / "name").exists():
                write_atomically(folder / "name", project.encode())
            fd = open_lock_file(lock_path)
        except OSError as exc:
            raise TransportError(f"cannot open the experiment counter of {project!r}: {exc}") from exc
        try:
            with locked(fd, lock_path, timeout=self.lock_timeout):
                run_file = folder / "runs" / _digest(run_id) if run_id is not None else None
                if run_file is not None and run_file.exists():
                    return self._run_number(project, run_id or "", run_file), False
                number = self._last(project, folder / "counter") + 1
                if number > self.limit:  # refused before anything is written, here or in the log
                    raise ExperimentNumbersExhausted(project, self.limit)
                write_atomically(folder / "counter", str(number).encode())
                if run_file is not None:
                    write_atomically(run_file, str(number).encode())
                return number, True
        except ExpstreamTimeoutError:  # a lock's deadline: not an I/O failure
            raise
        except OSError as exc:
            raise TransportError(f"cannot allocate an experiment number in {project!r}: {exc}") from exc
        finally:
            os.close(fd)

    def _last(self, project: str, counter: Path) -> int:
        """The last number handed out: the counter's, or what the log knows when it is damaged."""
        try:
            raw: bytes | None = counter.read_bytes()
        except FileNotFoundError:
            raw = None
        number = _parse(raw) if raw is not None else None
        if number is not None:
            return number
        if self.known is None:
            if raw is None:
                return 0  # nothing to check against: a new project
            raise LocalStateError(
                f"the experiment counter {counter} of {project!r} is damaged ({raw[:40]!r}) and there is no "
                "event log to rebuild it from; write the last experiment number used into it"
            )
        highest = self.known(project).highest
        if raw is not None or highest:
            logger.warning(
                "%s experiment counter %s of %r: rebuilt from the event log, last number %d",
                "missing" if raw is None else f"damaged ({raw[:40]!r})", counter, project, highest,
            )  # fmt: skip
        return highest

    def _run_number(self, project: str, run_id: str, run_file: Path) -> int:
        number = _parse(run_file.read_bytes())
        if number is not None:
            return number
        recorded = None if self.known is None else self.known(project).numbers.get(run_experiment_id(project, run_id))
        if recorded is None:
            raise LocalStateError(
                f"the number of run {run_id!r} in {run_file} is damaged and the event log does not record that "
                "experiment; write its number into the file, or use another run id"
            )
        logger.warning("damaged run number %s of %r: rebuilt from the event log (%d)", run_file, run_id, recorded)
        write_atomically(run_file, str(recorded).encode())
        return recorded
