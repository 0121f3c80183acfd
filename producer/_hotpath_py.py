"""The ``log_metric`` hot path in Python: the same types and behaviour as ``producer/_hotpath.c``.

Used where the C extension was not compiled (no compiler at install, or ``EXPSTREAM_HOTPATH=python``), and
what the type checker reads for both. The plain call, ``log_metric(name, value)`` or
``log_metric(name, x, value)`` with finite float or int values to a log that exists, is decided here;
every other case goes to ``_log_metric_slow`` (the stream) or ``_log_metric_general`` (the experiment),
which the Python classes deriving from these define.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Callable
from time import time as _wall
from typing import Any, cast

__all__ = ["ChannelCore", "Doubles", "ExperimentCore", "ProjectCore", "StreamCore", "module_log_metric"]


class Doubles(array):  # type: ignore[type-arg]
    """A numeric log's unsent points, flat: x, y, ts, x, y, ts, … (24 bytes a point)."""

    def __new__(cls) -> Doubles:
        return cast(Doubles, super().__new__(cls, "d"))

    def take(self, width: int, /) -> array:  # type: ignore[type-arg]
        """Remove and return the whole points of ``width`` doubles appended so far (a point half-appended by
        another thread stays for the next take)."""
        n = len(self)
        n -= n % width
        batch = self[:n]
        del self[:n]
        return batch

    def clear(self) -> None:
        del self[:]


class ChannelCore:
    """The fields of one log that ``log_metric`` reads and writes."""

    __slots__ = ("last_x", "next_x", "points")

    def __init__(self) -> None:
        self.last_x = -math.inf
        self.next_x = 0.0
        self.points: Any = None


class StreamCore:
    """The numeric logs of one experiment's stream, and ``log_metric``."""

    numeric: dict[Any, Any]
    _backpressure: Callable[[], None]
    #: None: the wall clock; else what to call for the time (a test's shifted clock)
    _clock: Callable[[], float] | None = None
    _numeric_limit: int

    def _log_metric_slow(self, log_name: Any, x: Any, y: Any = None, timestamp: Any = None) -> None:
        raise NotImplementedError

    def log_metric(self, log_name: Any, x: Any, y: Any = None, timestamp: Any = None) -> None:
        """Append a numeric point."""
        ch = self.numeric.get(log_name)
        if ch is not None and timestamp is None:
            if y is None:
                tx = type(x)
                if (tx is float or tx is int) and abs(x) <= _MAX:  # finite, and an int a double holds
                    px = ch.next_x
                    value = x + 0.0
                    ty = None
                else:
                    ty = float  # anything else: not plain
            else:
                tx, ty = type(x), type(y)
                if (tx is float or tx is int) and (ty is float or ty is int) and abs(x) <= _MAX and abs(y) <= _MAX:
                    px = x + 0.0
                    value = y + 0.0
                    ty = None if px > ch.last_x else float
                else:
                    ty = float
            if ty is None:
                clock = self._clock
                ts = _wall() if clock is None else clock()
                ch.last_x = px
                ch.next_x = px + 1.0
                points = ch.points
                points.append(px)
                points.append(value)
                points.append(ts)
                if len(points) >= self._numeric_limit:
                    self._backpressure()
                return
        self._log_metric_slow(log_name, x, y, timestamp)


class ExperimentCore:
    """An experiment's open stream, and ``log_metric`` straight to it."""

    _stream: Any = None

    def _log_metric_general(self, log_name: str, x: Any, y: Any = None, timestamp: Any = None) -> None:
        raise NotImplementedError

    def log_metric(self, log_name: str, x: Any, y: Any = None, timestamp: Any = None) -> None:
        """Append a numeric point: ``log_metric('loss', 0.5)`` or ``log_metric('loss', step, 0.5)``."""
        stream = self._stream
        if stream is not None:
            stream.log_metric(log_name, x, y, timestamp)
        else:
            self._log_metric_general(log_name, x, y, timestamp)


class ProjectCore:
    """A project's stack of running experiments, read by the module-level ``log_metric``."""

    _stack: list[Any]


def module_log_metric(namespace: dict[str, Any], fallback: Callable[..., None], /) -> Callable[..., None]:
    """The module-level ``log_metric``: the current experiment of ``namespace['project']``, else ``fallback``."""

    def log_metric(log_name: str, x: Any, y: Any = None, timestamp: Any = None) -> None:
        """``exp.log_metric`` of the current experiment: the last one created and not stopped."""
        project = namespace.get("project")
        if isinstance(project, ProjectCore):
            try:
                stream = project._stack[-1]._stream  # atomic reads: another thread may stop it meanwhile
            except IndexError:
                stream = None
            if stream is not None:
                stream.log_metric(log_name, x, y, timestamp)
                return
        fallback(log_name, x, y, timestamp)

    return log_metric


#: the largest magnitude that is finite as a double; ``abs(v) <= _MAX`` is False for NaN, infinity and ints
#: beyond a double, which the plain path leaves to the slow one as the C version does
_MAX = sys.float_info.max
