"""What ``create_experiment`` starts around the user's code, and how ``stop`` undoes it.

In legacy order: exception hook → logger mirroring → stdout → stderr → heartbeats → hardware
monitoring; plus a SIGTERM handler so a terminated job flushes and ends ``aborted``. Each part
returns its own undo step; failures to start a part are warnings, never errors.
"""

from __future__ import annotations

import builtins
import logging
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType, TracebackType
from typing import Any

from expstream.producer.capture import LoggerMirror, StreamCapture
from expstream.producer.channels import NUMERIC, TEXT
from expstream.producer.stream import ExperimentStream

__all__ = ["ExecutionOptions", "start_execution_context"]

log = logging.getLogger("expstream")

Undo = Callable[[], None]
#: ``stop(traceback_text)``: finish the experiment, failed when a traceback is given
Stop = Callable[["str | None"], None]
#: ``abort(reason)``: finish the experiment as aborted
Abort = Callable[[str], None]


@dataclass(frozen=True)
class ExecutionOptions:
    """What ``create_experiment`` was asked to run around the user's code."""

    logger: logging.Logger | None = None
    upload_stdout: bool = True
    upload_stderr: bool = True
    send_hardware_metrics: bool = True
    run_monitoring_thread: bool = True
    handle_uncaught_exceptions: bool = True
    abort_callback: Callable[[], Any] | None = None
    #: keeps an attached process's monitoring and output logs apart (``_rank1``); empty for the creator
    suffix: str = ""


def _excepthook(stop: Stop) -> Undo:
    previous = sys.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        try:
            stop("".join(traceback.format_exception(exc_type, exc, tb)))
        finally:
            previous(exc_type, exc, tb)

    sys.excepthook = hook

    def undo() -> None:
        if sys.excepthook is hook:  # restore only what was replaced (docs/legacy-behaviour.md#execution-context)
            sys.excepthook = previous

    return undo


def _sigterm(abort: Abort, abort_callback: Callable[[], Any] | None) -> Undo | None:
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        return None  # the application handles SIGTERM itself

    def handler(signum: int, frame: FrameType | None) -> None:
        if abort_callback is not None:
            try:
                abort_callback()
            except Exception:
                log.exception("expstream: abort_callback failed")
        abort("terminated by SIGTERM")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)

    def undo() -> None:
        if signal.getsignal(signal.SIGTERM) is handler:
            signal.signal(signal.SIGTERM, previous)

    return undo


def start_execution_context(
    stream: ExperimentStream, options: ExecutionOptions, *, stop: Stop, abort: Abort
) -> list[Undo]:
    """Start every part ``options`` asks for around ``stream``; returns the undo steps, in start order."""
    origin = time.time()
    undo: list[Undo] = []
    suffix = options.suffix

    def text_sink(name: str) -> Callable[[float, str, float], None]:
        return lambda x, line, ts: stream.append_system(name + suffix, TEXT, x, line, ts)

    if options.handle_uncaught_exceptions:
        undo.append(_excepthook(stop))
    if options.logger is not None:
        mirror = LoggerMirror(options.logger, text_sink("logger"), origin)
        mirror.start()
        undo.append(mirror.stop)
    in_notebook = hasattr(builtins, "get_ipython")
    for which, wanted in (("stdout", options.upload_stdout), ("stderr", options.upload_stderr)):
        if wanted and not in_notebook:
            capture = StreamCapture(which, text_sink(which), origin)
            capture.start()
            undo.append(capture.stop)
    stream.heartbeats = options.run_monitoring_thread
    sigterm = _sigterm(abort, options.abort_callback)
    if sigterm is not None:
        undo.append(sigterm)
    if options.send_hardware_metrics:
        try:
            from expstream.producer.monitoring import HardwareMonitor

            def emit(x: float, sample: list[tuple[str, float]]) -> None:
                now = time.time()
                for name, value in sample:
                    stream.append_system(name + suffix, NUMERIC, x, value, now)

            monitor = HardwareMonitor(emit)
            monitor.start()
            undo.append(monitor.stop)
        except Exception as exc:
            log.warning("expstream: hardware monitoring is off: %s", exc)
    return undo
