"""Where the materializers put things, as the query side finds them again.

Both sides need these names (blob keys in the object store, consumer progress in the tables), so
they live with the sinks, below both: the query side never imports the consumer runner.
"""

from __future__ import annotations

from expstream.consumers.sinks.base import TableStore
from expstream.eventlog.records import Watermark

__all__ = ["blob_key", "part_prefix", "read_progress"]


def blob_key(sha256: str) -> str:
    """The object key of a whole, verified blob."""
    return f"blobs/{sha256}"


def part_prefix(sha256: str) -> str:
    """The key prefix of the parts of a blob that is still being assembled."""
    return f"parts/{sha256}/"


def read_progress(tables: TableStore, group: str) -> Watermark:
    """How far ``group`` has materialized each partition: the next offset to read."""
    df = tables.query_df(
        "SELECT topic, partition, max(offset) AS offset FROM consumer_progress "
        "WHERE consumer_group = {group:String} GROUP BY topic, partition",
        {"group": group},
    )
    return {(str(t), int(p)): int(o) for t, p, o in zip(df["topic"], df["partition"], df["offset"], strict=True)}
