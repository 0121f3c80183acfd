"""``get_numeric_channels_values``' join of the points as the engine returns them: any order, twins included."""

from __future__ import annotations

import numpy as np
import pandas as pd

from expstream.query.reader import _outer_join_on_x


def frame(rows: list[tuple[int, float, float]]) -> pd.DataFrame:
    k, x, y = zip(*rows, strict=True) if rows else ((), (), ())
    return pd.DataFrame({"k": np.array(k, dtype="uint64"), "x": np.array(x), "y": np.array(y)})


def test_points_from_parts_in_any_order_come_back_sorted_by_x() -> None:
    df = frame([(1, 3.0, 30.0), (1, 4.0, 40.0), (1, 0.0, 0.0), (1, 1.0, 10.0), (1, 2.0, 20.0)])
    out = _outer_join_on_x(df, ["loss"])
    assert out["x"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert out["loss"].tolist() == [0.0, 10.0, 20.0, 30.0, 40.0]


def test_a_replayed_twin_counts_once() -> None:
    df = frame([(1, 0.0, 1.0), (1, 1.0, 2.0), (1, 0.0, 1.0), (1, 1.0, 2.0), (1, 2.0, 3.0)])
    out = _outer_join_on_x(df, ["loss"])
    assert out["x"].tolist() == [0.0, 1.0, 2.0] and out["loss"].tolist() == [1.0, 2.0, 3.0]


def test_two_channels_are_outer_joined_on_x_in_the_order_asked() -> None:
    df = frame([(2, 1.0, -1.0), (1, 0.0, 0.5), (1, 2.0, 2.5), (2, 2.0, -2.0)])
    out = _outer_join_on_x(df, ["a", "b"])
    assert list(out.columns) == ["x", "a", "b"]
    assert out["x"].tolist() == [0.0, 1.0, 2.0]
    assert out["a"].tolist()[0] == 0.5 and np.isnan(out["a"].tolist()[1]) and out["a"].tolist()[2] == 2.5
    assert np.isnan(out["b"].tolist()[0]) and out["b"].tolist()[1:] == [-1.0, -2.0]


def test_a_channel_without_points_is_an_empty_column() -> None:
    out = _outer_join_on_x(frame([]), ["loss"])
    assert list(out.columns) == ["x", "loss"] and out.empty
