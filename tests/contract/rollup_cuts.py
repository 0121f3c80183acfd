"""The references shared by the contract tests of the step axis (``points_rollup``) and of the time axes
(``points_rollup_time``): a channel's raw points, and the cut of a chart's range into rollup level buckets (the same
rule over each axis' levels)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd

from expstream.consumers.sinks.base import TableStore
from expstream.consumers.sinks.layout import ROLLUP_LEVELS, TIME_ROLLUP_LEVELS, rollup_width, time_rollup_width

#: an axis' number of levels and a level's bucket width
LEVELS: dict[str, tuple[int, Callable[[int], float]]] = {
    "step": (ROLLUP_LEVELS, rollup_width),
    "time": (TIME_ROLLUP_LEVELS, time_rollup_width),
}


def raw_points(tables: TableStore, experiment: str, channel: str, generation: int) -> pd.DataFrame:
    """Every point (x, y, ts) of a channel generation of the user namespace, twins collapsed (the raw query)."""
    return tables.query_df(
        "SELECT x, y, ts FROM points_numeric FINAL WHERE experiment_id = {e:String} AND namespace = 'user' "
        "AND channel = {c:String} AND generation = {g:UInt32} ORDER BY x",
        {"e": experiment, "c": channel, "g": generation},
    )


def edges_of(lo: float, hi: float, width: int, axis: str = "step") -> list[float] | None:
    """The cut of a range: partial level buckets at both ends, ``k`` whole ones in between."""
    levels, width_of = LEVELS[axis]
    per_pixel = (hi - lo) / width
    for level in reversed(range(levels)):
        w = width_of(level)
        b0, b1 = math.ceil(lo / w), math.floor(hi / w)
        if w <= per_pixel and b1 > b0:
            k = max(1, int(per_pixel // w))
            inner = [b * w for b in range(b0, b1, k)] + [b1 * w]
            return ([lo] if lo < b0 * w else []) + inner + ([math.inf] if b1 * w <= hi else [])
    return None


def whole_edges(lo: float, hi: float, width: int, axis: str = "step") -> list[float] | None:
    """The cut of a whole range: ``k`` whole level buckets a column, from the one holding ``lo``."""
    levels, width_of = LEVELS[axis]
    per_pixel = (hi - lo) / width
    for level in reversed(range(levels)):
        w = width_of(level)
        if w <= per_pixel:
            b0, b1, k = math.floor(lo / w), math.floor(hi / w) + 1, max(1, int(per_pixel // w))
            return [b * w for b in range(b0, b1, k)] + [b1 * w]
    return None
