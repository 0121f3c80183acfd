"""stdout / stderr / logger mirroring: lines into a sink, the terminal unchanged."""

from __future__ import annotations

import io
import itertools
import logging
import sys

import pytest

from expstream.producer.capture import MAX_LINE, LoggerMirror, StreamCapture


def capture(monkeypatch: pytest.MonkeyPatch, which: str = "stdout") -> tuple[StreamCapture, list, io.StringIO]:
    terminal = io.StringIO()
    monkeypatch.setattr(sys, which, terminal)
    lines: list[tuple[float, str]] = []
    cap = StreamCapture(which, lambda x, line, ts: lines.append((x, line)), origin=0.0)
    cap.start()
    return cap, lines, terminal


def test_lines_are_mirrored_and_the_terminal_sees_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    cap, lines, terminal = capture(monkeypatch)
    print("hello")
    print("partial", end="")
    print(" line")
    sys.stdout.write("a\r\nb\rc\n")
    cap.stop()
    assert terminal.getvalue() == "hello\npartial line\na\r\nb\rc\n"
    assert [line for _, line in lines] == ["hello", "partial line", "a", "b", "c"]
    xs = [x for x, _ in lines]
    assert all(b > a for a, b in itertools.pairwise(xs))
    assert sys.stdout is terminal  # what was there before is put back


def test_unfinished_line_is_flushed_at_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    cap, lines, _ = capture(monkeypatch, "stderr")
    sys.stderr.write("no newline")
    assert lines == []
    cap.stop()
    assert [line for _, line in lines] == ["no newline"]


def test_very_long_lines_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    cap, lines, _ = capture(monkeypatch)
    sys.stdout.write("x" * (MAX_LINE * 2 + 10) + "\n")
    cap.stop()
    assert [len(line) for _, line in lines] == [MAX_LINE, MAX_LINE, 10]


def test_binary_garbage_and_sink_errors_never_break_output(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)

    def broken(x: float, line: str, ts: float) -> None:
        raise OSError("disk full")

    cap = StreamCapture("stderr", broken, origin=0.0)
    cap.start()
    sys.stderr.write("\x00\xff\ufffd garbage\n")
    cap.stop()
    assert "garbage" in terminal.getvalue()


def test_logger_mirror() -> None:
    logger = logging.getLogger("expstream-test-mirror")
    logger.setLevel(logging.INFO)
    lines: list[str] = []
    mirror = LoggerMirror(logger, lambda x, line, ts: lines.append(line), origin=0.0)
    mirror.start()
    logger.info("epoch %d done", 3)
    mirror.stop()
    logger.info("not mirrored")
    assert lines == ["epoch 3 done"]
