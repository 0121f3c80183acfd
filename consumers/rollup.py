"""Numeric points → per-bucket summaries (``points_rollup``): what a chart of a long channel reads instead.

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
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from expstream.consumers.sinks.layout import ROLLUP_LEVELS, rollup_width

__all__ = ["COLUMNS", "Rollups"]

#: the table's columns, in order
COLUMNS = (
    "experiment_id", "namespace", "channel", "generation", "level", "bucket", "event_id", "count",
    "x_first", "y_first", "x_last", "y_last", "y_min", "x_at_min", "y_max", "x_at_max",
)  # fmt: skip
_VALUES = COLUMNS[7:]


def _summarize(series: np.ndarray, bucket: np.ndarray, part: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rows (in series, then x order) with their series and bucket → one row per (series, bucket)."""
    new = np.r_[True, (bucket[1:] != bucket[:-1]) | (series[1:] != series[:-1])]
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(bucket)] - 1
    y_min = np.minimum.reduceat(part["y_min"], starts)
    y_max = np.maximum.reduceat(part["y_max"], starts)
    spans = np.diff(np.r_[starts, len(bucket)])
    at_min = np.where(part["y_min"] == np.repeat(y_min, spans), part["x_at_min"], np.inf)
    at_max = np.where(part["y_max"] == np.repeat(y_max, spans), part["x_at_max"], np.inf)
    return {
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
    categories = list(dict.fromkeys(values))
    code_of = {v: i for i, v in enumerate(categories)}
    codes = np.asarray([code_of[v] for v in values], dtype=np.int32)[index]
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories))


class Rollups:
    """The ``points_rollup`` rows of one materializer batch, computed at once for all its series
    (a few vectorized passes per level over the batch's points, whatever the number of series)."""

    def __init__(self) -> None:
        self._keys: list[tuple[str, str, str, int, str]] = []
        self._xs: list[np.ndarray] = []
        self._ys: list[np.ndarray] = []

    def add(
        self, experiment_id: str, namespace: str, channel: str, generation: int, event_id: str, xs: Any, ys: Any
    ) -> None:
        """One series of one event."""
        x = np.asarray(xs, dtype="float64")
        y = np.asarray(ys, dtype="float64")
        if not len(x):
            return
        if len(x) > 1 and not bool(np.all(x[1:] >= x[:-1])):
            order = np.argsort(x, kind="stable")
            x, y = x[order], y[order]
        self._keys.append((experiment_id, namespace, channel, int(generation), event_id))
        self._xs.append(x)
        self._ys.append(y)

    def __len__(self) -> int:
        return len(self._keys)

    def columns(self) -> dict[str, Any] | None:
        """Insert-ready columns at every level, or None when there is nothing."""
        if not self._keys:
            return None
        sizes = [len(x) for x in self._xs]
        x = np.concatenate(self._xs)
        y = np.concatenate(self._ys)
        series = np.repeat(np.arange(len(self._keys)), sizes)
        rows = {"series": series, "count": np.ones(len(x), dtype="uint64"), "x_first": x, "y_first": y,
                "x_last": x, "y_last": y, "y_min": y, "x_at_min": x, "y_max": y, "x_at_max": x}  # fmt: skip
        levels = []
        for level in range(ROLLUP_LEVELS):
            rows = _summarize(rows["series"], np.floor(rows["x_first"] / rollup_width(level)), rows)
            levels.append(rows)
        which = np.concatenate([part["series"] for part in levels])
        out: dict[str, Any] = {}
        for i, name in enumerate(("experiment_id", "namespace", "channel", "generation", "event_id")):
            values = [key[i] for key in self._keys]
            out[name] = np.asarray(values, dtype="uint32")[which] if i == 3 else _strings(values, which)
        out["level"] = np.repeat(np.arange(ROLLUP_LEVELS, dtype="uint8"), [len(part["series"]) for part in levels])
        for name in ("bucket", *_VALUES):
            out[name] = np.concatenate([part[name] for part in levels])
        return {c: out[c] for c in COLUMNS}
