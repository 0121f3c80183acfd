"""Insert columns → Arrow (``consumers/sinks/columns.py``): the chdb store's inserts, built without pandas."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from expstream.consumers.sinks.columns import Coded, arrow_batch
from expstream.exceptions import SinkDataError


def test_each_kind_of_column_gets_its_arrow_type() -> None:
    batch = arrow_batch(
        {
            "coded": Coded(np.array([1, 0, 1], dtype=np.int32), ["a", "ü"]),
            "coded_numbers": Coded(np.array([0, 0, 1], dtype=np.int32), [3, 4]),
            "floats": np.array([0.5, 1.5, -2.0]),
            "uint32": np.array([1, 2, 3], dtype=np.uint32),
            "flags": np.array([True, False, True]),
            "texts": ["x", "", "nul\0byte"],
            "ints": (1, 2, 3),
            "big": [0, 2**64 - 1, 7],
            "mixed_numbers": [1, 2.5, np.float32(3)],
            "categorical": pd.Categorical(["s", "t", "s"]),
            "series": pd.Series(["p", "q", "r"]),
        }
    )
    types = dict(zip(batch.schema.names, batch.schema.types, strict=True))
    assert types["coded"] == pa.dictionary(pa.int32(), pa.large_string())
    assert types["categorical"] == pa.dictionary(pa.int32(), pa.large_string())
    assert (types["coded_numbers"], types["floats"], types["uint32"], types["flags"]) == (
        pa.int64(), pa.float64(), pa.uint32(), pa.uint8()
    )  # fmt: skip
    assert (types["texts"], types["series"], types["ints"], types["big"]) == (
        pa.large_string(), pa.large_string(), pa.int64(), pa.uint64()
    )  # fmt: skip
    assert types["mixed_numbers"] == pa.float64()
    rows = batch.to_pydict()
    assert rows["coded"] == ["ü", "a", "ü"] and rows["coded_numbers"] == [3, 3, 4]
    assert rows["texts"] == ["x", "", "nul\0byte"] and rows["big"] == [0, 2**64 - 1, 7]
    assert rows["categorical"] == ["s", "t", "s"] and rows["series"] == ["p", "q", "r"]


@pytest.mark.parametrize(
    "values", [[1, "a"], [None], [b"bytes"], [2**64], [-1, 2**64 - 1], pd.Categorical(["a", None])]
)
def test_a_column_arrow_cannot_hold_as_it_is_is_refused_for_its_data(values: object) -> None:
    """What the runner dead-letters (after narrowing the batch down to the events that carry it)."""
    with pytest.raises(SinkDataError):
        arrow_batch({"c": values})


def test_coded_columns_take_rows_and_expand() -> None:
    column = Coded(np.array([0, 1, 1, 0], dtype=np.int32), ["a", "b"])
    assert len(column) == 4 and list(column) == ["a", "b", "b", "a"]
    assert column.take(np.array([3, 2])).tolist() == ["a", "b"]
    assert column.expand(object).tolist() == ["a", "b", "b", "a"]


def test_building_the_batch_never_imports_pandas() -> None:
    """pyarrow's ``pa.array`` would import it (the warm materializer's start would pay ~0.2 s for it)."""
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from expstream.consumers.sinks.columns import Coded, arrow_batch
        batch = arrow_batch({"c": Coded(np.zeros(3, dtype=np.int32), ["e"]), "x": np.arange(3.0), "t": ["a", "b", "c"],
                             "n": [1, 2, 3]})
        assert batch.num_rows == 3
        print("pandas" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
