"""The rollup summarizer (``consumers/rollup.py``) against a plain per-bucket reference, both tables, every level."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from expstream.consumers.rollup import COLUMNS, TIME_COLUMNS, Rollups
from expstream.consumers.sinks.layout import ROLLUP_LEVELS, TIME_ROLLUP_LEVELS, rollup_width, time_rollup_width

Series = tuple[tuple[str, str, str, int, str], np.ndarray, np.ndarray, np.ndarray]  # key, x, y, ts


def rows(table: dict[str, Any]) -> list[dict[str, Any]]:
    lists = {c: np.asarray(v).tolist() for c, v in table.items()}
    return [dict(zip(lists, values, strict=True)) for values in zip(*lists.values(), strict=True)]


def by_key(table: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    key = ("experiment_id", "namespace", "channel", "generation", "event_id", "level", "bucket")
    found = {tuple(r[c] for c in key): r for r in rows(table)}
    assert len(found) == len(table["level"]), "one row per (series, event, level, bucket)"
    return found


def step_reference(series: list[Series]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """First / last: the smallest / largest x, equal x in the order logged; at-min / at-max: the smallest x."""
    out = {}
    for key, x, y, _ in series:
        order = sorted(range(len(x)), key=lambda i: x[i])  # stable
        for level in range(ROLLUP_LEVELS):
            buckets: dict[float, list[int]] = {}
            for i in order:
                buckets.setdefault(math.floor(x[i] / rollup_width(level)), []).append(i)
            for b, ii in buckets.items():
                lo, hi = min(y[i] for i in ii), max(y[i] for i in ii)
                out[(*key[:4], key[4], level, float(b))] = {
                    "count": len(ii), "x_first": x[ii[0]], "y_first": y[ii[0]], "x_last": x[ii[-1]],
                    "y_last": y[ii[-1]], "y_min": lo, "x_at_min": min(x[i] for i in ii if y[i] == lo),
                    "y_max": hi, "x_at_max": min(x[i] for i in ii if y[i] == hi),
                }  # fmt: skip
    return out


def time_reference(series: list[Series]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """By ts: first / last the smallest / largest (ts, y); at-min / at-max the smallest ts; the range of x."""
    out = {}
    for key, x, y, ts in series:
        for level in range(TIME_ROLLUP_LEVELS):
            buckets: dict[float, list[int]] = {}
            for i in range(len(ts)):
                buckets.setdefault(math.floor(ts[i] / time_rollup_width(level)), []).append(i)
            for b, ii in buckets.items():
                first = min(ii, key=lambda i: (ts[i], y[i]))
                last = max(ii, key=lambda i: (ts[i], y[i]))
                lo, hi = min(y[i] for i in ii), max(y[i] for i in ii)
                out[(*key[:4], key[4], level, float(b))] = {
                    "count": len(ii), "x_first": ts[first], "y_first": y[first], "x_last": ts[last],
                    "y_last": y[last], "y_min": lo, "x_at_min": min(ts[i] for i in ii if y[i] == lo),
                    "y_max": hi, "x_at_max": min(ts[i] for i in ii if y[i] == hi),
                    "step_min": min(x[i] for i in ii), "step_max": max(x[i] for i in ii),
                }  # fmt: skip
    return out


def summarize(series: list[Series]) -> dict[str, dict[str, Any]]:
    rollups = Rollups()
    for key, x, y, ts in series:
        rollups.add(*key, x, y, ts)
    return rollups.columns()


def check(series: list[Series]) -> None:
    out = summarize(series)
    assert tuple(out["points_rollup"]) == COLUMNS and tuple(out["points_rollup_time"]) == TIME_COLUMNS
    for table, reference in (("points_rollup", step_reference), ("points_rollup_time", time_reference)):
        got, want = by_key(out[table]), reference(series)
        assert set(got) == set(want), table
        for k, values in want.items():
            assert {c: got[k][c] for c in values} == values, (table, k)


def series_of(rng: np.random.Generator, event: str, channel: str, n: int) -> Series:
    x = np.arange(n, dtype="float64") * 3.0
    y = rng.integers(-5, 5, n).astype("float64")  # many ties at the minimum and maximum
    ts = 1.7e9 + np.sort(rng.uniform(0.0, 600.0, n))
    return ("e1", "user", channel, 0, event), x, y, ts


def test_in_order_series_match_the_reference_at_every_level() -> None:
    rng = np.random.default_rng(1)
    check([series_of(rng, "ev1", "loss", 500), series_of(rng, "ev1", "acc", 1), series_of(rng, "ev2", "loss", 300)])


def test_out_of_order_timestamps_and_ties_within_a_batch() -> None:
    rng = np.random.default_rng(2)
    key, x, y, ts = series_of(rng, "ev1", "loss", 400)
    shuffled = rng.permutation(len(ts))
    ts = ts[shuffled]  # logged out of time order (another clock, an explicit timestamp)
    ts[10:30] = ts[10]  # twenty points at one timestamp, values in no order
    ts[200:205] = 1.7e9 + 3.0  # ties on a bucket boundary of every level
    check([(key, x, y, ts), series_of(rng, "ev1", "acc", 50)])
    # x out of order too: the step rollup sorts by x, the time one by (ts, y)
    order = rng.permutation(len(x))
    check([(key, x[order], y[order], ts[order])])


def test_tied_timestamps_give_one_answer_whatever_their_order() -> None:
    key = ("e1", "user", "loss", 0, "ev1")
    x = np.arange(6.0)
    ts = np.full(6, 1.7e9 + 0.5)
    a = summarize([(key, x, np.array([3.0, 1.0, 2.0, 9.0, -4.0, 0.0]), ts)])["points_rollup_time"]
    b = summarize([(key, x[::-1], np.array([0.0, -4.0, 9.0, 2.0, 1.0, 3.0]), ts)])["points_rollup_time"]
    assert rows(a) == rows(b)
    assert {(r["y_first"], r["y_last"], r["y_min"], r["y_max"]) for r in rows(a)} == {(-4.0, 9.0, -4.0, 9.0)}


def test_an_event_delivered_again_writes_the_same_rows() -> None:
    rng = np.random.default_rng(3)
    a, b = series_of(rng, "ev1", "loss", 700), series_of(rng, "ev2", "loss", 700)
    alone, together, again = summarize([a]), summarize([b, a]), summarize([a])
    for table in ("points_rollup", "points_rollup_time"):
        assert rows(alone[table]) == rows(again[table])
        of_a = {k: r for k, r in by_key(together[table]).items() if k[4] == "ev1"}
        assert of_a == by_key(alone[table])  # the same rows, whatever else the batch held


def test_nothing_added_is_no_table() -> None:
    rollups = Rollups()
    rollups.add("e1", "user", "loss", 0, "ev1", [], [], [])
    assert len(rollups) == 0 and rollups.columns() == {}
