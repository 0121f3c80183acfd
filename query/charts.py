"""Chart data: the exact per-pixel envelope of a numeric channel, computed in the engine.

Why: a chart is at most a few thousand pixels wide, a channel may hold millions of points. Sampling
hides spikes; sending every point hangs the browser. Instead the x-range is cut into ``width``
buckets (one per pixel column) and each bucket answers its first, last, smallest and largest value
with their x (the M4 aggregation): drawn as a line through those four points per column, the chart is
pixel-for-pixel the chart of every point, an outlier among ten million included, and the work after
the scan is bounded by the width.

Long channels are read from their rollups (``consumers/rollup.py``) instead: ``points_rollup`` by x for the step
axis, ``points_rollup_time`` by timestamp for the time axes (relative time is the same rows shifted by the
experiment's creation). Either way a chart reads the coarsest level whose buckets are at most a pixel column wide,
whole buckets per column, so the answer is exact and the work bounded by the width.

The SQL uses only ``floor`` bucketing, ``min``, ``max``, ``argMin``, ``argMax`` and ``count`` so that it
runs on chdb and on a ClickHouse 18.16 server (no window functions there). Values are bound as
``{name:Type}`` parameters; the pieces of text that vary (the x column, the rollup table) come from fixed tables.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from expstream.consumers.sinks.base import TableStore
from expstream.consumers.sinks.layout import ROLLUP_LEVELS, TIME_ROLLUP_LEVELS, rollup_width, time_rollup_width
from expstream.exceptions import InvalidChannelValue

__all__ = [
    "AXES",
    "MAX_WIDTH",
    "ChannelSpan",
    "envelope",
    "rolled_envelope",
    "rolled_wholes",
    "rolled_x_range",
    "rolled_x_ranges",
    "span",
]

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


def _m4(axis: str, ties: bool = False) -> str:
    """The envelope's columns over points: first and last by the axis column itself. ``ties`` (time axis): ties of
    ts broken as in ``points_rollup_time`` (first and last by (ts, y), the smallest ts at the minimum and maximum),
    for the few points at the ends of a rolled range; a scan of a whole log leaves ties to the engine, as tuple
    comparisons make it several times slower."""
    c = AXES[axis]
    first, last, at_min, at_max = (
        ("argMin(y, (ts, y))", "argMax(y, (ts, y))", "argMin(ts, (y, ts))", "argMin(ts, (-y, ts))")
        if ties
        else (f"argMin(y, {c})", f"argMax(y, {c})", f"argMin({c}, y)", f"argMax({c}, y)")
    )
    return (
        f"count() AS count, {first} AS y_first, {last} AS y_last, min(y) AS y_min, max(y) AS y_max, "
        f"min({c}) AS x_first, max({c}) AS x_last, {at_min} AS x_at_min, {at_max} AS x_at_max"
    )


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
    final: bool = False,
    open_end: bool = False,
    steps: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Per bucket of ``[x_from, x_to]`` cut into ``width``: count, first/last/min/max y and their x.

    Columns: ``bucket, count, y_first, y_last, y_min, y_max, x_first, x_last, x_at_min, x_at_max``,
    ordered by bucket; empty buckets are absent. ``axis`` is a key of :data:`AXES`; for ``time`` every
    x (range and answer) is a Unix timestamp. Replayed twins of a point (before merges) count twice
    and change no value, unless ``final`` (the twins collapsed first: for a narrow range only).
    ``open_end``: the range is ``[x_from, x_to)``. ``steps``: only points whose logged x is in this range, which
    the time rollups know (x is in the table's key, ts is not: then a time-axis read is a few granules, not a scan).
    """
    column = AXES.get(axis)
    if column is None:
        raise InvalidChannelValue(f"one of {sorted(AXES)}", repr(axis))
    if not (1 <= width <= MAX_WIDTH):
        raise InvalidChannelValue(f"a width of 1 to {MAX_WIDTH} buckets", repr(width))
    if not (math.isfinite(x_from) and math.isfinite(x_to)) or x_to < x_from:
        raise InvalidChannelValue("a finite x-range with x_from <= x_to", f"[{x_from!r}, {x_to!r}]")
    scale = width / (x_to - x_from) if x_to > x_from else 0.0
    sql = (
        f"SELECT least(toUInt32({{n:UInt32}} - 1), toUInt32(floor(({column} - {{lo:Float64}}) * {{k:Float64}}))) "
        f"AS bucket, {_m4(axis)} FROM points_numeric{' FINAL' if final else ''} WHERE {_WHERE} "
        f"AND {column} >= {{lo:Float64}} AND {column} {'<' if open_end else '<='} {{hi:Float64}} "
        f"{'AND x >= {s0:Float64} AND x <= {s1:Float64} ' if steps is not None else ''}"
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
            **({"s0": float(steps[0]), "s1": float(steps[1])} if steps is not None else {}),
        },
    )


#: the rollups of each axis (``consumers/rollup.py``): table, number of levels, a level's bucket width
_ROLLUPS: dict[str, tuple[str, int, Callable[[int], float]]] = {
    "step": ("points_rollup", ROLLUP_LEVELS, rollup_width),
    "time": ("points_rollup_time", TIME_ROLLUP_LEVELS, time_rollup_width),
}


def _level(axis: str, per_pixel: float, b: Callable[[float], tuple[int, int]] | None = None) -> int | None:
    """The coarsest level of ``axis`` whose buckets are at most ``per_pixel`` wide (and, given ``b``, where
    ``b(width)`` spans at least one whole bucket), or None."""
    _, levels, width = _ROLLUPS[axis]
    for level in reversed(range(levels)):
        w = width(level)
        if w <= per_pixel and (b is None or b(w)[1] > b(w)[0]):
            return level
    return None


def _rolled(axis: str, many: bool) -> str:
    """The envelope SQL over whole level buckets of one channel (``many``: of several, each with its own level,
    range and buckets per column). One row per (bucket, event) first: a batch delivered twice wrote the same rows
    twice (before merges). On the time axis ties of ts go by y, as the rows were made."""
    table = _ROLLUPS[axis][0]
    first, last = (
        ("argMin(yf, xf)", "argMax(yl, xl)") if axis == "step" else ("argMin(yf, (xf, yf))", "argMax(yl, (xl, yl))")
    )
    if many:
        b0 = "transform(channel, {cs:Array(String)}, {b0s:Array(Float64)}, toFloat64(0))"
        b1 = "transform(channel, {cs:Array(String)}, {b1s:Array(Float64)}, toFloat64(0))"
        k = "transform(channel, {cs:Array(String)}, {ks:Array(Float64)}, toFloat64(1))"
        where = (
            f"{_MANY} AND level IN (SELECT arrayJoin({{levels:Array(UInt8)}})) "
            "AND level = transform(channel, {cs:Array(String)}, {levels:Array(UInt8)}, toUInt8(255))"
        )
        by = "channel, "
    else:
        b0, b1, k, by = "{b0:Float64}", "{b1:Float64}", "{k:Float64}", ""
        where = f"{_WHERE} AND level = {{level:UInt8}}"
    return (
        f"SELECT {by}floor((bucket - {b0}) / {k}) AS column, sum(n) AS count, "
        f"{first} AS y_first, {last} AS y_last, min(lo) AS y_min, max(hi) AS y_max, "
        "min(xf) AS x_first, max(xl) AS x_last, argMin(xlo, (lo, xlo)) AS x_at_min, "
        "argMin(xhi, (-hi, xhi)) AS x_at_max "
        f"FROM (SELECT {by}bucket, any(count) AS n, any(x_first) AS xf, any(y_first) AS yf, any(x_last) AS xl, "
        "any(y_last) AS yl, any(y_min) AS lo, any(x_at_min) AS xlo, any(y_max) AS hi, any(x_at_max) AS xhi "
        f"FROM {table} WHERE {where} AND bucket >= {b0} AND bucket < {b1} GROUP BY {by}bucket, event_id) "
        f"GROUP BY {by}column ORDER BY {by}column"
    )


def rolled_x_range(
    tables: TableStore, experiment_id: str, namespace: str, channel: str, generation: int, *, axis: str = "step"
) -> tuple[float, float] | None:
    """The channel's smallest and largest x (``axis`` ``time``: timestamp) from its coarsest rollup level (a few
    rows), or None when the rollups do not cover the channel (points stored before the rollups existed: ``expstream
    replay`` adds them); then charts read the points. One channel of :func:`rolled_x_ranges`."""
    return rolled_x_ranges(tables, experiment_id, namespace, {channel: generation}, axis=axis).get(channel)


def rolled_envelope(
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
) -> pd.DataFrame | None:
    """The envelope of a range from the rollups of ``axis`` (``step`` or ``time``: then the range is in Unix
    seconds), or None when no level fits (zoomed in to fewer than 16 x-units per pixel: then :func:`envelope` over
    the points is as cheap). On the time axis a range that no level fits (under 1/16 s a pixel) is read from the
    points whose x the finest level's rows of the range name (:func:`envelope` alone would scan the log's ts).

    The level is the coarsest whose buckets are at most a pixel column wide; each answered bucket is
    ``k`` whole level buckets (between ``width`` and ``2 * width`` buckets in all), so its first, last,
    smallest and largest point are exactly those of the points in it. The partial level buckets at the
    two ends of the range come from the points themselves (on the time axis, only those whose x the rollup rows of
    those two buckets name: ts is not in the points' key). Same columns as :func:`envelope`."""
    if not (math.isfinite(x_from) and math.isfinite(x_to)) or x_to <= x_from or not (1 <= width <= MAX_WIDTH):
        return None
    per_pixel = (x_to - x_from) / width

    def whole(w: float) -> tuple[int, int]:
        return math.ceil(x_from / w), math.floor(x_to / w)

    level = _level(axis, per_pixel, whole)
    key = {"e": experiment_id, "ns": namespace, "c": channel, "g": int(generation)}
    if level is None:
        return None if axis == "step" else _narrow(tables, key, x_from=x_from, x_to=x_to, width=width)
    w = _ROLLUPS[axis][2](level)
    b0, b1 = whole(w)
    middle = tables.query_df(
        _ROLLED[axis],
        {**key, "level": level, "b0": float(b0), "b1": float(b1), "k": float(max(1, int(per_pixel // w)))},
    )
    middle = middle.rename(columns={"column": "bucket"})
    parts = []
    left_end, right_start = b0 * w, b1 * w
    if axis == "time":
        ends = _time_ends(tables, key, level, b0, b1, x_from=x_from, x_to=x_to, w=w)
        parts = [ends[ends["bucket"] == 0], middle, ends[ends["bucket"] == 1]]
    else:
        if x_from < left_end:
            parts.append(envelope(tables, experiment_id, namespace, channel, generation,
                                  x_from=x_from, x_to=left_end, width=1, final=True, open_end=True))  # fmt: skip
        parts.append(middle)
        if right_start <= x_to:
            parts.append(envelope(tables, experiment_id, namespace, channel, generation,
                                  x_from=right_start, x_to=x_to, width=1, final=True))  # fmt: skip
    found = [p for p in parts if not p.empty]
    if not found:
        return middle
    out = pd.concat(found, ignore_index=True)
    out["bucket"] = np.arange(len(out))
    return out


#: a range of logged x that holds none: no point of the points table is read for it
_NO_STEPS = (1.0, 0.0)


def _narrow(tables: TableStore, key: dict[str, Any], *, x_from: float, x_to: float, width: int) -> pd.DataFrame:
    """The envelope of a time-axis range narrower than the finest level's buckets a pixel, from its points, where the
    finest level's rows of the range say their x are (twins collapsed: the range is narrow)."""
    w = time_rollup_width(0)
    found = tables.query_df(
        "SELECT count() AS n, min(step_min) AS lo, max(step_max) AS hi FROM points_rollup_time "
        f"WHERE {_WHERE} AND level = 0 AND bucket >= {{b0:Float64}} AND bucket <= {{b1:Float64}}",
        {**key, "b0": float(math.floor(x_from / w)), "b1": float(math.floor(x_to / w))},
    )
    n = int(found["n"].iloc[0]) if not found.empty else 0
    steps = (float(found["lo"].iloc[0]), float(found["hi"].iloc[0])) if n else _NO_STEPS
    return envelope(tables, key["e"], key["ns"], key["c"], key["g"], x_from=x_from, x_to=x_to, width=width,
                    axis="time", final=True, steps=steps)  # fmt: skip


# the points of the partial level buckets at both ends of a time-axis range, each where its rollup rows say the
# points' x are (bucket 0: left, 1: right); FINAL: replayed twins collapse, and the x ranges keep it to a few granules
_TIME_ENDS = (
    f"SELECT ts >= {{r:Float64}} AS bucket, {_m4('time', ties=True)} FROM points_numeric FINAL WHERE {_WHERE} "
    "AND ((ts >= {lo:Float64} AND ts < {l:Float64} AND x >= {l0:Float64} AND x <= {l1:Float64}) "
    "OR (ts >= {r:Float64} AND ts <= {hi:Float64} AND x >= {r0:Float64} AND x <= {r1:Float64})) "
    "GROUP BY bucket ORDER BY bucket"
)


def _time_ends(
    tables: TableStore, key: dict[str, Any], level: int, b0: int, b1: int, *, x_from: float, x_to: float, w: float
) -> pd.DataFrame:
    """The envelope of ``[x_from, b0 * w)`` (bucket 0) and ``[b1 * w, x_to]`` (bucket 1) from the points. ts is not in
    the points' key, so a read by ts alone scans the channel: the rollup rows of the level buckets ``b0 - 1`` and
    ``b1`` first say the range of x of their points."""
    found = tables.query_df(
        "SELECT bucket, min(step_min) AS lo, max(step_max) AS hi FROM points_rollup_time "
        f"WHERE {_WHERE} AND level = {{level:UInt8}} AND (bucket = {{l:Float64}} OR bucket = {{r:Float64}}) "
        "GROUP BY bucket",
        {**key, "level": level, "l": float(b0 - 1), "r": float(b1)},
    )
    steps = {
        float(b): (float(lo), float(hi)) for b, lo, hi in zip(found["bucket"], found["lo"], found["hi"], strict=True)
    }
    left = steps.get(float(b0 - 1)) if x_from < b0 * w else None
    right = steps.get(float(b1)) if b1 * w <= x_to else None
    if left is None and right is None:  # no point at either end
        return pd.DataFrame({"bucket": []})
    (l0, l1), (r0, r1) = left or _NO_STEPS, right or _NO_STEPS
    return tables.query_df(
        _TIME_ENDS,
        {**key, "lo": x_from, "l": b0 * w, "r": b1 * w, "hi": x_to, "l0": l0, "l1": l1, "r0": r0, "r1": r1},
    )


# --- several channels of one experiment at once (a page asks for every chart in view together) ---------------

# the channels asked, each in its own generation: the sets let the key skip the rest, transform() picks each
# channel's own value (the arrays are parameters: constants, as transform needs them, also on 18.16)
_MANY = (
    "experiment_id = {e:String} AND namespace = {ns:String} AND channel IN (SELECT arrayJoin({cs:Array(String)})) "
    "AND generation IN (SELECT arrayJoin({gs:Array(UInt32)})) "
    "AND generation = transform(channel, {cs:Array(String)}, {gs:Array(UInt32)}, toUInt32(0))"
)

_ROLLED = {axis: _rolled(axis, many=False) for axis in _ROLLUPS}
_ROLLED_MANY = {axis: _rolled(axis, many=True) for axis in _ROLLUPS}


def _many(experiment_id: str, namespace: str, generations: Mapping[str, int]) -> dict[str, Any]:
    channels = list(generations)
    return {"e": experiment_id, "ns": namespace, "cs": channels, "gs": [int(generations[c]) for c in channels]}


def rolled_x_ranges(
    tables: TableStore, experiment_id: str, namespace: str, generations: Mapping[str, int], *, axis: str = "step"
) -> dict[str, tuple[float, float]]:
    """:func:`rolled_x_range` of several channels (channel → its generation) in two queries: channel → its
    smallest and largest x (timestamp on the ``time`` axis), for the channels the rollups cover (the others are
    absent)."""
    if not generations:
        return {}
    table, levels, _ = _ROLLUPS[axis]
    df = tables.query_df(
        f"SELECT channel, count() AS n, min(x_first) AS lo, max(x_last) AS hi, "
        f"min({'x_first' if axis == 'step' else 'step_min'}) AS first FROM {table} WHERE {_MANY} "
        "AND level = {level:UInt8} GROUP BY channel",
        {**_many(experiment_id, namespace, generations), "level": levels - 1},
    )
    found = {
        str(c): (float(lo), float(hi), float(first))
        for c, n, lo, hi, first in zip(df["channel"], df["n"], df["lo"], df["hi"], df["first"], strict=True)
        if int(n)
    }
    if not found:
        return {}
    # points below a channel's first rolled x were stored before its rollups existed (x is in the key, ts is not:
    # on the time axis the first rolled x is the smallest logged x its rows keep)
    covered = {c: generations[c] for c in found}
    older = tables.query_df(
        f"SELECT channel, count() AS n FROM points_numeric WHERE {_MANY} AND x < {{top:Float64}} "
        "AND x < transform(channel, {cs:Array(String)}, {los:Array(Float64)}, toFloat64(0)) GROUP BY channel",
        {
            **_many(experiment_id, namespace, covered),
            "los": [found[c][2] for c in covered],
            "top": max(first for _, _, first in found.values()),
        },
    )
    for c, n in zip(older["channel"], older["n"], strict=True):
        if int(n):
            found.pop(str(c), None)
    return {c: (lo, hi) for c, (lo, hi, _) in found.items()}


def rolled_wholes(
    tables: TableStore,
    experiment_id: str,
    namespace: str,
    spans: Mapping[str, tuple[int, float, float]],
    *,
    width: int,
    axis: str = "step",
) -> dict[str, pd.DataFrame]:
    """The envelope of the whole x-range of several channels in one query: ``spans`` maps a channel to its
    generation and the smallest and largest x (timestamp on the ``time`` axis) that :func:`rolled_x_ranges` found
    (or smaller and larger ones: the range of a chart of several experiments, each shifted by its creation on the
    relative axis).

    A whole range needs no points: the level buckets that hold its two ends hold no point outside it, so every
    answered bucket is ``k`` whole level buckets and exact. Channels that no level fits (fewer than 16 x-units, or
    1/16 s, a pixel: read their points with :func:`envelope`) are absent. Same columns as :func:`envelope`."""
    plans: dict[str, tuple[int, int, float, float, float]] = {}  # channel → generation, level, b0, b1, k
    for channel, (generation, lo, hi) in spans.items():
        if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo or not (1 <= width <= MAX_WIDTH):
            continue
        per_pixel = (hi - lo) / width
        level = _level(axis, per_pixel)
        if level is None:
            continue
        w = _ROLLUPS[axis][2](level)
        plans[channel] = (generation, level, math.floor(lo / w), math.floor(hi / w) + 1, max(1, int(per_pixel // w)))
    if not plans:
        return {}
    cs = list(plans)
    df = tables.query_df(
        _ROLLED_MANY[axis],
        {
            **_many(experiment_id, namespace, {c: plans[c][0] for c in cs}),
            "levels": [plans[c][1] for c in cs],
            "b0s": [float(plans[c][2]) for c in cs],
            "b1s": [float(plans[c][3]) for c in cs],
            "ks": [float(plans[c][4]) for c in cs],
        },
    )
    df = df.rename(columns={"column": "bucket"})
    out = {}
    for name, part in df.groupby("channel", sort=False):
        part = part.drop(columns="channel").reset_index(drop=True)
        part["bucket"] = np.arange(len(part))
        out[str(name)] = part
    empty = df.drop(columns="channel").iloc[0:0]
    return {c: out.get(c, empty) for c in cs}
