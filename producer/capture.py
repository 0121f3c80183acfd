"""stdout / stderr and ``logging`` mirroring into system text logs, without changing the terminal.

Each complete line becomes one text point of the system log ``stdout``, ``stderr`` or ``logger``
with x = milliseconds since the experiment started (nudged to stay strictly increasing). An
unfinished line waits for its end, and is flushed when the capture stops; very long lines are
cut into pieces so one runaway write cannot hold unbounded memory.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["LineSink", "LoggerMirror", "StreamCapture"]

#: ``sink(x_ms, line, timestamp)``
LineSink = Callable[[float, str, float], None]

#: longest line stored as one point; longer ones are split
MAX_LINE = 64 * 1024


class _Lines:
    """Turns writes into lines with strictly increasing x (ms since ``origin``)."""

    def __init__(self, sink: LineSink, origin: float) -> None:
        self.sink = sink
        self.origin = origin
        self.partial = ""
        self.last_x = -1.0
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        with self.lock:
            data = self.partial + text.replace("\r\n", "\n").replace("\r", "\n")
            *lines, self.partial = data.split("\n")
            while len(self.partial) > MAX_LINE:
                lines.append(self.partial[:MAX_LINE])
                self.partial = self.partial[MAX_LINE:]
            for line in lines:
                for start in range(0, max(len(line), 1), MAX_LINE):
                    self._emit(line[start : start + MAX_LINE])

    def flush_partial(self) -> None:
        with self.lock:
            if self.partial:
                self._emit(self.partial)
                self.partial = ""

    def _emit(self, line: str) -> None:
        now = time.time()
        x = max((now - self.origin) * 1000.0, self.last_x + 0.001)
        self.last_x = x
        try:
            self.sink(x, line, now)
        except Exception:  # mirroring must never break the user's output
            pass


class _Tee:
    """Writes through to the stream it replaced (what the user saw before) and into the log."""

    def __init__(self, original: TextIO, lines: _Lines) -> None:
        self._original = original
        self._lines = lines

    def write(self, text: str) -> int:
        written = self._original.write(text)
        if isinstance(text, str):
            self._lines.write(text)
        else:  # bytes-like garbage written to a text stream: keep it readable
            self._lines.write(repr(text))
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._original.flush()

    def __getattr__(self, name: str) -> Any:  # isatty, fileno, encoding ... of the original
        return getattr(self._original, name)


class StreamCapture:
    """Mirror ``sys.stdout`` or ``sys.stderr`` (``which`` is 'stdout' or 'stderr')."""

    def __init__(self, which: str, sink: LineSink, origin: float) -> None:
        self.which = which
        self._lines = _Lines(sink, origin)
        self._tee: _Tee | None = None
        self._previous: TextIO | None = None

    def start(self) -> None:
        self._previous = getattr(sys, self.which)
        if self._previous is None:
            return
        self._tee = _Tee(self._previous, self._lines)
        setattr(sys, self.which, self._tee)

    def stop(self) -> None:
        """Put back what was there before (unlike legacy, which forced ``sys.__stdout__``)."""
        if self._tee is not None and getattr(sys, self.which) is self._tee:
            setattr(sys, self.which, self._previous)
        self._lines.flush_partial()


class LoggerMirror(logging.Handler):
    """A handler that writes every record of ``logger`` as one line of the system log ``logger``."""

    def __init__(self, logger: logging.Logger, sink: LineSink, origin: float) -> None:
        super().__init__()
        self.logger = logger
        self._lines = _Lines(sink, origin)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)

    def start(self) -> None:
        self.logger.addHandler(self)

    def stop(self) -> None:
        self.logger.removeHandler(self)
