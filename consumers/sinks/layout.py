"""Where the materializers put things, as the query side finds them again.

Both sides need these names (blob keys in the object store, consumer progress in the tables), so
they live with the sinks, below both: the query side never imports the consumer runner.
"""

from __future__ import annotations

from expstream.consumers.sinks.base import TableStore
from expstream.eventlog.records import Watermark

__all__ = [
    "ROLLUP_LEVELS",
    "TIME_ROLLUP_LEVELS",
    "blob_key",
    "part_prefix",
    "read_progress",
    "rollup_width",
    "time_rollup_width",
]

#: levels of ``points_rollup`` (deploy/clickhouse/12_points_rollup.sql); level L has buckets of width 16^(L + 1):
#: 16 ... 16^8 (about 4 * 10^9) units of x. Steps of 16, not 2: a chart reads at most 16 rows per pixel column,
#: and a small batch of points writes one row per level
ROLLUP_LEVELS = 8


def rollup_width(level: int) -> float:
    """The bucket width of a ``points_rollup`` level: bucket = floor(x / width)."""
    return float(16 ** (level + 1))


#: levels of ``points_rollup_time`` (deploy/clickhouse/13_points_rollup_time.sql), the same summaries by the points'
#: timestamps: level L has buckets of 16^(L - 1) seconds: 1/16 s, 1 s, 16 s, 4 min, 68 min, 18 h, 12 days, 194 days.
#: The finest still fits a run of a minute at 1,000 px; finer ones would give each point of a log written a few times
#: a second a row of its own. Powers of two, so floor(ts / width) is exact in floating point
TIME_ROLLUP_LEVELS = 8


def time_rollup_width(level: int) -> float:
    """The bucket width in seconds of a ``points_rollup_time`` level: bucket = floor(ts / width)."""
    return 16.0 ** (level - 1)


def blob_key(sha256: str) -> str:
    """The object key of a whole, verified blob."""
    return f"blobs/{sha256}"


def part_prefix(sha256: str) -> str:
    """The key prefix of the parts of a blob that is still being assembled."""
    return f"parts/{sha256}/"


def read_progress(tables: TableStore, group: str) -> Watermark:
    """How far ``group`` has materialized each partition: the next offset to read."""
    rows = tables.query_rows(
        "SELECT topic, partition, max(offset) AS offset FROM consumer_progress "
        "WHERE consumer_group = {group:String} GROUP BY topic, partition",
        {"group": group},
    )
    return {(str(t), int(p)): int(o) for t, p, o in rows}
