"""Insert columns: what the materializer hands a table store, and their conversion to Arrow for chdb.

A column is a list, a numpy array, or a :class:`Coded` column (a few distinct values and one code per row:
the experiment, channel and session of a million points are three short lists and three arrays of int32).
Table stores also take pandas columns (a Categorical, a Series) from callers that have them.

Why not pandas' Categorical for the coded columns, and why Arrow arrays built from buffers: the warm
materializer (``consumers/warm/daemon.py``) should not import pandas, ~0.2 s of its start, which a script that
logs a million points waits for. ``pa.array`` and ``pa.table`` load pandas (pyarrow checks every value for a
pandas object), while ``Array.from_buffers`` over numpy memory does not; nor does writing an Arrow IPC stream.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from expstream.exceptions import SinkDataError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Coded", "arrow_batch"]


@dataclass(frozen=True, eq=False)
class Coded:
    """A dictionary-encoded column: row ``i`` is ``values[codes[i]]``.

    ``codes``: an int32 array; ``values``: the distinct values (str, or numbers), each code indexes one.
    """

    codes: np.ndarray
    values: Sequence[Any]

    @classmethod
    def encode(cls, values: Sequence[Any]) -> Coded:
        """``values`` dictionary-encoded: their distinct values in first-seen order, and an int32 code per row."""
        distinct = list(dict.fromkeys(values))
        code_of = {v: i for i, v in enumerate(distinct)}
        return cls(np.asarray([code_of[v] for v in values], dtype=np.int32), distinct)

    def __len__(self) -> int:
        return len(self.codes)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.tolist())

    def tolist(self) -> list[Any]:
        values = self.values
        return [values[c] for c in self.codes.tolist()]

    def take(self, order: np.ndarray) -> Coded:
        """The rows in ``order`` (an index array), the same values."""
        return Coded(self.codes[order], self.values)

    def expand(self, dtype: Any = None) -> np.ndarray:
        """Every row's value as one numpy array (``dtype``: of the values, e.g. object for text)."""
        return np.asarray(self.values, dtype=dtype).take(self.codes)


# --- to Arrow (the chdb store's inserts) ------------------------------------------------------------

#: numpy kinds Arrow takes as they are in memory: signed, unsigned, float
_NUMERIC_KINDS = "iuf"


def _pandas_column(values: Any) -> Any:
    """A pandas column as a plain one (a Categorical as :class:`Coded`), ``values`` itself when it is not pandas.

    pandas is only looked at when something already imported it: a pandas column cannot exist otherwise."""
    pd = sys.modules.get("pandas")
    if pd is None or not type(values).__module__.startswith("pandas"):
        return values
    if isinstance(values, pd.Series) and isinstance(values.dtype, pd.CategoricalDtype):
        values = values.array
    if isinstance(values, pd.Categorical):
        codes = np.asarray(values.codes)
        if codes.size and int(codes.min()) < 0:
            raise SinkDataError("a categorical column holds missing values")
        return Coded(codes.astype(np.int32, copy=False), list(values.categories))
    return np.asarray(values)


def _numeric_array(values: np.ndarray) -> pa.Array:
    import pyarrow as pa

    if values.dtype.kind == "b":
        values = values.astype(np.uint8)
    values = np.ascontiguousarray(values)
    if not values.dtype.isnative:
        values = values.astype(values.dtype.newbyteorder("="))
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def _string_array(values: Sequence[str]) -> pa.Array:
    """UTF-8 strings as Arrow: one joined data buffer and the offsets of each string's end."""
    import pyarrow as pa

    encoded = [v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    data = b"".join(encoded)
    return pa.Array.from_buffers(pa.large_string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _list_array(name: str, values: Sequence[Any]) -> pa.Array:
    """A column of Python values: all text, or all numbers (integers as int64, or uint64 when one is past int64's
    range, as ClickHouse's ``UInt64`` allows; any float makes them all float64)."""
    kinds = set(map(type, values))
    if all(issubclass(k, str) for k in kinds):
        return _string_array(values)
    if not all(issubclass(k, (int, float, np.number, np.bool_)) for k in kinds):
        shown = ", ".join(sorted(k.__name__ for k in kinds))
        raise SinkDataError(f"column {name} holds values of types {shown}: neither all text nor all numbers")
    exact = all(issubclass(k, (int, np.integer, np.bool_)) for k in kinds)
    for dtype in (np.int64, np.uint64) if exact else (np.float64,):
        try:
            return _numeric_array(np.asarray(values, dtype=dtype))
        except OverflowError:
            continue
    raise SinkDataError(f"column {name}: an integer beyond 64 bits, or negative beside one beyond int64")


def _array(name: str, values: Any) -> pa.Array:
    import pyarrow as pa

    values = _pandas_column(values)
    if isinstance(values, Coded):
        if all(isinstance(v, str) for v in values.values):  # a few distinct texts: an Arrow dictionary
            codes = _numeric_array(np.asarray(values.codes, dtype=np.int32))
            return pa.DictionaryArray.from_arrays(codes, _string_array(values.values))
        values = values.expand()
    if isinstance(values, np.ndarray):
        if values.ndim != 1:
            raise SinkDataError(f"column {name} is not one-dimensional")
        if values.dtype.kind in _NUMERIC_KINDS + "b":
            return _numeric_array(values)
        values = values.tolist()
    return _list_array(name, values if isinstance(values, Sequence) else list(values))


def arrow_batch(columns: Mapping[str, Any]) -> pa.RecordBatch:
    """The columns as one Arrow record batch; ``SinkDataError`` for a column Arrow cannot hold as it is (mixed
    types, numbers beyond 64 bits): the same columns would fail again, so the runner dead-letters their events."""
    import pyarrow as pa

    arrays = [_array(name, values) for name, values in columns.items()]
    # no column holds a null (the arrays have no validity bitmaps): said in the schema, ClickHouse reads each one
    # straight into its column instead of a Nullable one it converts after (1M points: ~20% less insert time)
    fields = [pa.field(name, array.type, nullable=False) for name, array in zip(columns, arrays, strict=True)]
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))
