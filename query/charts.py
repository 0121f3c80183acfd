"""Chart data: the exact per-pixel envelope of a numeric channel, computed in the engine.

Why: a chart is at most a few thousand pixels wide, a channel may hold millions of points. Sampling
hides spikes; sending every point hangs the browser. Instead the x-range is cut into ``width``
buckets (one per pixel column) and each bucket answers its first, last, smallest and largest value
with their x (the M4 aggregation): drawn as a line through those four points per column, the chart is
pixel-for-pixel the chart of every point, an outlier among ten million included, and the work after
the scan is bounded by the width.

The SQL uses only ``floor`` bucketing, ``min``, ``max``, ``argMin``, ``argMax`` and ``count`` so that it
runs on chdb and on a ClickHouse 18.16 server (no window functions there). Values are bound as
``{name:Type}`` parameters; the one piece of text that varies, the x column, comes from a fixed table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from expstream.consumers.sinks.base import TableStore
from expstream.exceptions import InvalidChannelValue

__all__ = ["AXES", "MAX_WIDTH", "ChannelSpan", "envelope", "span"]

#: what a chart's x can be: the logged x (step), or the point's timestamp (absolute or relative time)
AXES = {"step": "x", "time": "ts"}
#: widest chart answered, in buckets
MAX_WIDTH = 8192

_WHERE = "experiment_id = {e:String} AND namespace = {ns:String} AND channel = {c:String} AND generation = {g:UInt32}"


@dataclass(frozen=True)
class ChannelSpan:
    """How many points a channel holds and the range of its x and of its timestamps."""

    count: int
    x_min: float
    x_max: float
    ts_min: float
    ts_max: float


def span(tables: TableStore, experiment_id: str, namespace: str, channel: str, generation: int) -> ChannelSpan:
    """Count and ranges of one channel generation (one pass over its rows, no per-point transfer)."""
    df = tables.query_df(
        f"SELECT count() AS n, min(x) AS x0, max(x) AS x1, min(ts) AS t0, max(ts) AS t1 FROM points_numeric "
        f"WHERE {_WHERE}",
        {"e": experiment_id, "ns": namespace, "c": channel, "g": int(generation)},
    )
    n = int(df["n"].iloc[0]) if not df.empty else 0
    if n == 0:
        return ChannelSpan(0, math.nan, math.nan, math.nan, math.nan)
    row = df.iloc[0]
    return ChannelSpan(n, float(row["x0"]), float(row["x1"]), float(row["t0"]), float(row["t1"]))


def envelope(
    tables: TableStore,
    experiment_id: str,
    namespace: str,
    channel: str,
    generation: int,
    *,
    x_from: float,
    x_to: float,
    width: int,
    axis: str = "step",
) -> pd.DataFrame:
    """Per bucket of ``[x_from, x_to]`` cut into ``width``: count, first/last/min/max y and their x.

    Columns: ``bucket, count, y_first, y_last, y_min, y_max, x_first, x_last, x_at_min, x_at_max``,
    ordered by bucket; empty buckets are absent. ``axis`` is a key of :data:`AXES`; for ``time`` every
    x (range and answer) is a Unix timestamp. Replayed twins of a point (before merges) count twice
    and change no value.
    """
    column = AXES.get(axis)
    if column is None:
        raise InvalidChannelValue(f"one of {sorted(AXES)}", repr(axis))
    if not (1 <= width <= MAX_WIDTH):
        raise InvalidChannelValue(f"a width of 1 to {MAX_WIDTH} buckets", repr(width))
    if not (math.isfinite(x_from) and math.isfinite(x_to)) or x_to < x_from:
        raise InvalidChannelValue("a finite x-range with x_from <= x_to", f"[{x_from!r}, {x_to!r}]")
    scale = width / (x_to - x_from) if x_to > x_from else 0.0
    # argMin/argMax by the column itself: the first and last point of the bucket along the chart's x
    sql = (
        f"SELECT least(toUInt32({{n:UInt32}} - 1), toUInt32(floor(({column} - {{lo:Float64}}) * {{k:Float64}}))) "
        "AS bucket, count() AS count, "
        f"argMin(y, {column}) AS y_first, argMax(y, {column}) AS y_last, min(y) AS y_min, max(y) AS y_max, "
        f"min({column}) AS x_first, max({column}) AS x_last, argMin({column}, y) AS x_at_min, "
        f"argMax({column}, y) AS x_at_max "
        f"FROM points_numeric WHERE {_WHERE} AND {column} >= {{lo:Float64}} AND {column} <= {{hi:Float64}} "
        "GROUP BY bucket ORDER BY bucket"
    )
    return tables.query_df(
        sql,
        {
            "e": experiment_id,
            "ns": namespace,
            "c": channel,
            "g": int(generation),
            "n": int(width),
            "lo": float(x_from),
            "hi": float(x_to),
            "k": float(scale),
        },
    )
