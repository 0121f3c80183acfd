"""Numeric points → per-bucket summaries (``points_rollup`` by x, ``points_rollup_time`` by timestamp): what a
chart of a long channel reads instead.

Why: the exact envelope of a whole 10-million-point channel costs one scan of every point, seconds on a
busy machine. The consumer already holds each batch's points as arrays, so it summarizes them once
per fixed bucket level (``layout.rollup_width``: x cut into buckets of width ``16^(level+1)``): count,
first, last, smallest and largest point with their x. A chart then reads the coarsest level that
still gives a bucket per pixel column: a few thousand rows, whatever the channel's length, and exact (an outlier is some
bucket's minimum or maximum).

Rows are keyed by the event that carried the points: a batch delivered again writes the very same
rows, and readers take one row per (bucket, event) before adding counts (``query/charts.py``).
Each level is computed from the one below it (the finest from the points), so a batch costs a few
vectorized passes over its points, no sort when its x already increases (the producer's order).

The same summaries by timestamp (``points_rollup_time``, ``layout.time_rollup_width``) serve the time axes: there
the x columns hold ts, and first / last are the points with the smallest / largest (ts, y), so that points logged at
one timestamp (in one batch or in several) give one answer whatever their order; each row also keeps the smallest
and largest logged x of its points (``step_min`` / ``step_max``), where a zoomed chart finds its partial end buckets
in ``points_numeric``, whose key has x but not ts. A batch's timestamps mostly increase already: no sort then either.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from expstream.consumers.sinks.columns import Coded
from expstream.consumers.sinks.layout import ROLLUP_LEVELS, TIME_ROLLUP_LEVELS, rollup_width, time_rollup_width

__all__ = ["COLUMNS", "TIME_COLUMNS", "Rollups"]

#: the columns of ``points_rollup``, in order
COLUMNS = (
    "experiment_id", "namespace", "channel", "generation", "level", "bucket", "event_id", "count",
    "x_first", "y_first", "x_last", "y_last", "y_min", "x_at_min", "y_max", "x_at_max",
)  # fmt: skip
#: the columns of ``points_rollup_time``: x is the timestamp, plus the logged x's range
TIME_COLUMNS = (*COLUMNS, "step_min", "step_max")
_KEYS = ("experiment_id", "namespace", "channel", "generation", "event_id")


def _summarize(series: np.ndarray, bucket: np.ndarray, part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rows (in series, then axis order) with their series and bucket → one row per (series, bucket)."""
    new = np.r_[True, (bucket[1:] != bucket[:-1]) | (series[1:] != series[:-1])]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(bucket)] - 1
    y_min = np.minimum.reduceat(part["y_min"], starts)
    y_max = np.maximum.reduceat(part["y_max"], starts)
    spans = np.diff(np.r_[starts, len(bucket)])
    at_min = np.where(part["y_min"] == np.repeat(y_min, spans), part["x_at_min"], np.inf)
    at_max = np.where(part["y_max"] == np.repeat(y_max, spans), part["x_at_max"], np.inf)
    steps = {}
    if "step_min" in part:
        steps = {"step_min": np.minimum.reduceat(part["step_min"], starts),
                 "step_max": np.maximum.reduceat(part["step_max"], starts)}  # fmt: skip
    return {
        **steps,
        "series": series[starts],
        "bucket": bucket[starts],
        "count": np.add.reduceat(part["count"], starts),
        "x_first": part["x_first"][starts],
        "y_first": part["y_first"][starts],
        "x_last": part["x_last"][ends],
        "y_last": part["y_last"][ends],
        "y_min": y_min,
        "x_at_min": np.minimum.reduceat(at_min, starts),
        "y_max": y_max,
        "x_at_max": np.minimum.reduceat(at_max, starts),
    }


def _strings(values: list[Any], index: np.ndarray) -> Any:
    """A string column, dictionary-encoded (as the materializer's point columns): ``values[index]``."""
    return Coded.encode(values).take(index)


def _sorted(series: np.ndarray, starts: np.ndarray, *keys: np.ndarray) -> np.ndarray | None:
    """The order that sorts each series by ``keys`` (the first one first), or None when every series is in that
    order already (the usual case: one vectorized check, then a sort of only the series that need it)."""
    same = series[1:] == series[:-1]
    first, *rest = keys
    wrong = first[1:] < first[:-1]
    if rest:  # ties in the first key are ordered by the second
        wrong |= (first[1:] == first[:-1]) & (rest[0][1:] < rest[0][:-1])
    wrong &= same
    if not wrong.any():
        return None
    order = np.arange(len(series))
    for s in np.unique(series[1:][wrong]).tolist():
        lo, hi = starts[s], starts[s + 1]
        order[lo:hi] = lo + np.lexsort(tuple(k[lo:hi] for k in reversed(keys)))
    return order


def _levels(series: np.ndarray, x: np.ndarray, y: np.ndarray, width: Any, levels: int, steps: Any = None) -> list[Any]:
    """Every level's rows of points in (series, x) order, x being the axis (step or ts): each level summarizes the
    one below it. ``steps``: the points' logged x, whose range a time rollup row keeps."""
    rows = {"series": series, "count": np.ones(len(x), dtype="uint64"), "x_first": x, "y_first": y,
            "x_last": x, "y_last": y, "y_min": y, "x_at_min": x, "y_max": y, "x_at_max": x}  # fmt: skip
    if steps is not None:
        rows["step_min"] = rows["step_max"] = steps
    out = []
    for level in range(levels):
        rows = _summarize(rows["series"], np.floor(rows["x_first"] / width(level)), rows)
        out.append(rows)
    return out


def _table(keys: list[tuple[str, str, str, int, str]], levels: list[Any], names: tuple[str, ...]) -> dict[str, Any]:
    which = np.concatenate([part["series"] for part in levels])
    out: dict[str, Any] = {}
    for i, name in enumerate(_KEYS):
        values = [key[i] for key in keys]
        out[name] = np.asarray(values, dtype="uint32")[which] if i == 3 else _strings(values, which)
    out["level"] = np.repeat(np.arange(len(levels), dtype="uint8"), [len(part["series"]) for part in levels])
    for name in names:
        if name not in out:
            out[name] = np.concatenate([part[name] for part in levels])
    return {c: out[c] for c in names}


class Rollups:
    """The ``points_rollup`` and ``points_rollup_time`` rows of one materializer batch, computed at once for all its
    series (a few vectorized passes per level over the batch's points, whatever the number of series)."""

    def __init__(self) -> None:
        self._keys: list[tuple[str, str, str, int, str]] = []
        self._points: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (x, y, ts) in the order logged

    def add(
        self,
        experiment_id: str,
        namespace: str,
        channel: str,
        generation: int,
        event_id: str,
        xs: Any,
        ys: Any,
        ts: Any,
    ) -> None:
        """One series of one event."""
        x = np.asarray(xs, dtype="float64")
        if not len(x):
            return
        self._keys.append((experiment_id, namespace, channel, int(generation), event_id))
        self._points.append((x, np.asarray(ys, dtype="float64"), np.asarray(ts, dtype="float64")))

    def __len__(self) -> int:
        return len(self._keys)

    def columns(self) -> dict[str, dict[str, Any]]:
        """Insert-ready columns of both tables at every level (no table when there is nothing)."""
        if not self._keys:
            return {}
        sizes = [len(x) for x, _, _ in self._points]
        starts = np.r_[0, np.cumsum(sizes)]
        x, y, ts = (np.concatenate(c) for c in zip(*self._points, strict=True))
        series = np.repeat(np.arange(len(self._keys)), sizes)
        order = _sorted(series, starts, x)  # by x; stable: equal x stay in the order logged
        sx, sy = (x, y) if order is None else (x[order], y[order])
        step = _levels(series, sx, sy, rollup_width, ROLLUP_LEVELS)
        order = _sorted(series, starts, ts, y)
        if order is not None:
            ts, y, x = ts[order], y[order], x[order]
        time = _levels(series, ts, y, time_rollup_width, TIME_ROLLUP_LEVELS, steps=x)
        return {"points_rollup": _table(self._keys, step, COLUMNS),
                "points_rollup_time": _table(self._keys, time, TIME_COLUMNS)}  # fmt: skip
