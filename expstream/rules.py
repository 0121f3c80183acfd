"""Domain rules both sides apply: when a silent run counts as aborted, how a parameter is typed.

Kept in one small module so that the reader, the UI and the front door cannot drift apart. No
heavy imports at module level: logging processes import it too.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ABORTED_AFTER", "ABORTED_SQL", "CLOCK_SKEW_TOLERANCE", "derive_aborted", "parameter_text"]

#: a running experiment whose last heartbeat is older than this many seconds reads as aborted
ABORTED_AFTER = 60.0
#: clocks of a writer and a reader may differ by this much without a live run reading as aborted
CLOCK_SKEW_TOLERANCE = 86400.0
#: :func:`derive_aborted`'s rule as an SQL condition, for queries that filter or sort by state in the engine:
#: over columns ``st`` (the stored state), ``heartbeat``, ``received``, ``store_now`` (0 when absent, as a
#: LEFT JOIN leaves them) and the bound ``{now:Float64}``; tests check that both give the same states
ABORTED_SQL = (
    f"(st = 'running' AND heartbeat > 0 AND ((received > 0 AND store_now - received > {ABORTED_AFTER!r}) "
    f"OR {{now:Float64}} - heartbeat > {ABORTED_AFTER + CLOCK_SKEW_TOLERANCE!r} "
    f"OR (received <= 0 AND {{now:Float64}} - heartbeat > {ABORTED_AFTER!r})))"
)


def parameter_text(value: Any) -> tuple[str, str]:
    """Legacy parameter typing: finite numbers are doubles, everything else its ``str``.

    docs/legacy-behaviour.md#parameter-typing
    """
    if isinstance(value, bool):
        return str(value), "string"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        if math.isnan(number):
            return "NaN", "string"
        if math.isinf(number):
            return ("Infinity" if number > 0 else "-Infinity"), "string"
        return str(value), "double"
    return str(value), "string"


def derive_aborted(df: pd.DataFrame, now: float) -> pd.DataFrame:
    """Running with heartbeats that stopped → aborted (there is no server to notice a dead process).

    A heartbeat is stale when the table store received none of the run for :data:`ABORTED_AFTER`
    seconds by its own clock (``liveness.received`` against the store's ``now()``): neither the
    writer's nor the reader's clock takes part, so a writer minutes behind or ahead stays alive.
    The writer's own timestamps count only beyond :data:`CLOCK_SKEW_TOLERANCE` (heartbeats a store
    received late, from a replay or a catch-up long after the process died) and for rows stored
    before the liveness table existed. The finished time is the writer's last heartbeat plus
    :data:`ABORTED_AFTER`, on the writer's clock like its other times.
    """
    import pandas as pd  # only readers get here

    if df.empty:
        return df
    beat = pd.to_numeric(df["heartbeat"], errors="coerce")
    received = pd.to_numeric(df["received"], errors="coerce").fillna(0.0)
    store_quiet = pd.to_numeric(df["store_now"], errors="coerce") - received
    writer_quiet = now - beat
    stale = (received.gt(0) & store_quiet.gt(ABORTED_AFTER)) | writer_quiet.gt(ABORTED_AFTER + CLOCK_SKEW_TOLERANCE)
    stale |= received.le(0) & writer_quiet.gt(ABORTED_AFTER)
    dead = (df["state"] == "running") & beat.gt(0) & stale
    if dead.any():
        df = df.copy()
        df.loc[dead, "state"] = "aborted"
        df.loc[dead, "state_ts"] = beat[dead] + ABORTED_AFTER
    return df
