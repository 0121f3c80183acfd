"""Numeric buffers: flat doubles appended by the logging thread, drained as columns by the flusher."""

from __future__ import annotations

import threading

import numpy as np

from expstream import schemas
from expstream.producer.channels import NUMERIC, TEXT, Channel
from expstream.producer.stream import ExperimentStream, Origin


def _stream(batch_points: int = 1000, buffer_points: int = 10**9) -> ExperimentStream:
    return ExperimentStream(
        "e-1", Origin("host", 1), batch_points=batch_points, buffer_points=buffer_points, backpressure=lambda: None
    )


def _points(stream: ExperimentStream) -> dict[str, np.ndarray]:
    """Everything drained so far, decoded: channel -> rows of (x, y, ts)."""
    out: dict[str, list[np.ndarray]] = {}
    for _, messages in stream.drain():
        for message in messages:
            kind, record = schemas.decode(message)
            if kind != "NumericPoints":
                continue
            for s in record["series"]:
                out.setdefault(s["channel"], []).append(np.column_stack([s["xs"], s["ys"], s["ts"]]))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def test_take_leaves_a_half_appended_point_for_the_next_take() -> None:
    ch = Channel("m", NUMERIC)
    for value in (0.0, 1.0, 2.0, 1.0, 5.0):  # one whole point, then x and y of the next
        ch.points.append(value)
    assert ch.take().tolist() == [0.0, 1.0, 2.0]
    ch.points.append(6.0)
    assert ch.take().tolist() == [1.0, 5.0, 6.0]
    assert len(ch.take()) == 0


def test_text_logs_keep_tuples() -> None:
    ch = Channel("t", TEXT)
    ch.points.append((0.0, "a", 1.0))
    assert ch.take() == [(0.0, "a", 1.0)]


def test_points_are_split_into_batches_as_columns() -> None:
    stream = _stream(batch_points=4)
    for i in range(10):
        stream.log_metric("loss", float(i), 2.0 * i, timestamp=100.0 + i)
    rows = _points(stream)["loss"]
    assert rows.tolist() == [[float(i), 2.0 * i, 100.0 + i] for i in range(10)]


def test_draining_while_another_thread_logs_loses_and_tears_nothing() -> None:
    stream = _stream(batch_points=500)
    n = 200_000
    done = threading.Event()

    def log() -> None:
        for i in range(n):
            stream.log_metric("m", float(i), float(-i), timestamp=float(i))
        done.set()

    drained = []
    thread = threading.Thread(target=log)
    thread.start()
    while not done.is_set():
        drained.append(_points(stream).get("m", np.empty((0, 3))))
    thread.join()
    drained.append(_points(stream).get("m", np.empty((0, 3))))
    rows = np.concatenate(drained)
    assert len(drained) > 2  # it really drained while logging
    assert rows[:, 0].tolist() == [float(i) for i in range(n)]
    assert (rows[:, 1] == -rows[:, 0]).all() and (rows[:, 2] == rows[:, 0]).all()
