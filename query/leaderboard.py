"""The UI's leaderboard as SQL: filter, sort and cut one page in the engine, then fill only that page.

Why a module of its own: ``Reader.leaderboard`` (the legacy ``get_leaderboard``) builds every
experiment's row with all its columns, which for 10,000 experiments x 20 logs takes seconds. A page
needs 50 rows. Here the filters (state, owner, tag, text), the sort by any column (system columns,
a parameter, a property or a log's last value) and ``LIMIT offset, n`` run in one query over the
project's experiments, the counts in a second, and the wide columns are read for the page's rows only.

The SQL stays within ClickHouse 18.16 (no window functions, one JOIN per SELECT) and chdb. Every user
string (project, owners, tags, search text, the sorted column's name) is bound as a ``{name:Type}``
parameter; the only text pasted in is chosen from fixed tables here, and the integers of ``LIMIT``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from expstream import rules
from expstream.consumers.sinks.base import TableStore
from expstream.consumers.sinks.layout import ROLLUP_LEVELS

__all__ = ["DYNAMIC", "NUMERIC_TEXT", "SYSTEM_COLUMNS", "Page", "page", "sort_key_of_text"]

#: the columns every experiment has, in page order
SYSTEM_COLUMNS = ("id", "name", "state", "owner", "created", "running_time", "tags")
#: prefixes of the per-experiment columns, in page order
DYNAMIC = ("channel", "parameter", "property")
#: what counts as a number when a text value is sorted (a parameter, a property, a text log's line);
#: the same test runs in the engine (``match``) and in Python (:func:`sort_key_of_text`)
NUMERIC_TEXT = r"^-?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$"
_NUMERIC = re.compile(NUMERIC_TEXT)
#: characters of a value sent to a page (as the legacy leaderboard)
MAX_VALUE_CHARS = 255

# the experiments of the project, ExperimentIdentified-only ones included (their created event was lost)
_IDS = (
    "SELECT experiment_id FROM experiments WHERE project = {p:String} UNION ALL SELECT experiment_id FROM events "
    "WHERE kind = 'ExperimentIdentified' AND visitParamExtractString(summary, 'project') = {p:String}"
)
_IDENTIFIED = (
    "SELECT experiment_id, visitParamExtractString(summary, 'short_id') AS short_id, "
    "visitParamExtractUInt(summary, 'number') AS number, 'Untitled' AS name, '' AS description, '' AS owner, "
    "ts AS created FROM events WHERE kind = 'ExperimentIdentified' "
    "AND visitParamExtractString(summary, 'project') = {p:String} AND {restrict} "
    "AND experiment_id NOT IN (SELECT experiment_id FROM experiments) "
    "ORDER BY experiment_id, ts LIMIT 1 BY experiment_id"
)
_STATES = (
    "SELECT experiment_id, argMax(state, (ts, session_id, seq)) AS st, max(ts) AS state_ts FROM states "
    "WHERE {scope} GROUP BY experiment_id"
)
_HEARTBEATS = (
    "SELECT experiment_id, max(hb) AS heartbeat, max(rec) AS received, max(store) AS store_now FROM ("
    "SELECT experiment_id, ts AS hb, materialize(toFloat64(0)) AS rec, "
    "materialize(toFloat64(toUInt32(now()))) AS store FROM heartbeats WHERE {scope} "
    "UNION ALL SELECT experiment_id, materialize(toFloat64(0)) AS hb, toFloat64(toUInt32(received)) AS rec, "
    "materialize(toFloat64(toUInt32(now()))) AS store FROM liveness WHERE {scope}) "
    "GROUP BY experiment_id"
)
_TAGS = (
    "SELECT experiment_id, arraySort(groupArray(tag)) AS tag_list FROM (SELECT experiment_id, tag FROM tags "
    "WHERE {scope} GROUP BY experiment_id, tag "
    "HAVING argMax(added, (ts, session_id, seq)) = 1) GROUP BY experiment_id"
)
_E = "experiment_id, short_id, number, name, description, owner, created"
# the project's experiments from their created records (and identified-only ones): one cheap scan by key
_RESTRICTED = (
    f"SELECT {_E} FROM experiments FINAL WHERE project = {{p:String}} AND {{restrict}} UNION ALL {_IDENTIFIED}"
)
_EXPERIMENTS = _RESTRICTED.replace("{restrict}", "1")
#: the listed experiments only (``{ids:Array(String)}``): a set the primary key can use, unlike ``has()``
_LISTED = "experiment_id IN (SELECT arrayJoin({ids:Array(String)}))"


def _base(restrict: str = "") -> str:
    """One row per experiment of the project (``restrict``: a condition on ``_E`` columns): its columns, the
    derived state (``rules.ABORTED_SQL``), its finished time, running time and sorted tags."""
    experiments = _RESTRICTED.replace("{restrict}", restrict or "1")
    scope = restrict or f"experiment_id IN ({_IDS})"
    states, heartbeats, tags = (part.replace("{scope}", scope) for part in (_STATES, _HEARTBEATS, _TAGS))
    return (
        f"SELECT {_E}, state, finished, "
        "toInt64(greatest(0, if(state IN ('succeeded', 'failed', 'aborted'), finished, {now:Float64}) - created)) "
        "AS running_time, tag_list, arrayStringConcat(tag_list, ' ') AS tags_text FROM ("
        f"SELECT {_E}, multiIf(dead, 'aborted', st = '', 'running', st) AS state, "
        "if(dead, heartbeat + {after:Float64}, state_ts) AS finished, tag_list FROM ("
        f"SELECT {_E}, st, state_ts, heartbeat, received, store_now, tag_list, {rules.ABORTED_SQL} AS dead FROM ("
        f"SELECT {_E}, st, state_ts, heartbeat, received, store_now FROM ("
        f"SELECT {_E}, st, state_ts FROM ({experiments}) AS e LEFT JOIN ({states}) AS s USING experiment_id) AS es "
        f"LEFT JOIN ({heartbeats}) AS b USING experiment_id) AS esb "
        f"LEFT JOIN ({tags}) AS t USING experiment_id))"
    )


# the sort key of one dynamic column per experiment: has_key, is_num, num, txt
_TEXT_KEY = (
    "1 AS has_key, toUInt8(match({v}, {{numeric:String}})) AS is_num, "
    "if(is_num = 1, toFloat64OrZero({v}), toFloat64(0)) AS num, {v} AS txt"
)
_CURRENT_OF = (
    "(experiment_id, generation) IN (SELECT experiment_id, max(generation) FROM channels "
    f"WHERE namespace = 'user' AND channel = {{k:String}} AND experiment_id IN ({_IDS}) GROUP BY experiment_id)"
)


def _last_numeric(where: str, by: str) -> str:
    """The last value of numeric logs (``where``: which experiments, logs and generations; ``by``: the grouping),
    ``by`` columns and ``last``. Why from the coarsest rollup level: every batch of points writes a row there
    (one per batch, not per point), so a log of millions of points costs a few rows; a log that has no rollups
    (points stored before they existed) reads its points."""
    top = ROLLUP_LEVELS - 1
    return (
        f"SELECT {by}, argMax(y_last, x_last) AS last FROM points_rollup WHERE namespace = 'user' AND level = {top} "
        f"AND {where} GROUP BY {by} "
        f"UNION ALL SELECT {by}, argMax(y, x) AS last FROM points_numeric WHERE namespace = 'user' AND {where} "
        "AND (experiment_id, channel, generation) NOT IN (SELECT experiment_id, channel, generation "
        f"FROM points_rollup WHERE namespace = 'user' AND level = {top} AND {where}) GROUP BY {by}"
    )


_SORT_KEYS = {
    "parameter": (
        f"SELECT experiment_id, {_TEXT_KEY.format(v='value')} FROM (SELECT experiment_id, any(value) AS value "
        f"FROM parameters WHERE name = {{k:String}} AND experiment_id IN ({_IDS}) GROUP BY experiment_id)"
    ),
    "property": (
        f"SELECT experiment_id, {_TEXT_KEY.format(v='value')} FROM (SELECT experiment_id, "
        "argMax(value, (ts, session_id, seq)) AS value FROM properties "
        f"WHERE key = {{k:String}} AND experiment_id IN ({_IDS}) GROUP BY experiment_id "
        "HAVING argMax(removed, (ts, session_id, seq)) = 0)"
    ),
    "channel": (
        "SELECT experiment_id, 1 AS has_key, toUInt8(1) AS is_num, last AS num, '' AS txt FROM ("
        + _last_numeric("channel = {k:String} AND " + _CURRENT_OF, by="experiment_id")
        + ") "
        f"UNION ALL SELECT experiment_id, {_TEXT_KEY.format(v='last')} FROM ("
        "SELECT experiment_id, argMax(y, x) AS last FROM points_text WHERE namespace = 'user' "
        f"AND channel = {{k:String}} AND {_CURRENT_OF} GROUP BY experiment_id)"
    ),
}
# what each system column sorts by (ties: the experiment's number, in the same direction)
_SYSTEM_SORT = {
    "id": ["number"],
    "name": ["name", "number"],
    "state": ["state", "number"],
    "owner": ["owner", "number"],
    "created": ["created", "number"],
    "running_time": ["running_time", "number"],
    "tags": ["tags_text", "number"],
}
#: sorts that need only the experiments' own records (no state, tags or wide column)
_FAST_SORTS = ("id", "name", "owner", "created")
_FILTERS = {
    "states": "has({states:Array(String)}, state)",
    "owners": "has({owners:Array(String)}, owner)",
    "tags": "hasAll(tag_list, {tags:Array(String)})",
    "text": (
        "position(lowerUTF8(concat(short_id, '\\n', name, '\\n', owner, '\\n', description, '\\n', tags_text)), "
        "lowerUTF8({q:String})) > 0"
    ),
}
# the page's wide columns: (experiment, column, value as text) for the listed experiments
_VALUES = (
    "SELECT experiment_id, concat('channel_', channel) AS column, toString(last) AS value FROM ("
    + _last_numeric(
        "{listed} AND (experiment_id, channel, generation) IN (SELECT experiment_id, channel, max(generation) "
        "FROM channels WHERE namespace = 'user' AND {listed} GROUP BY experiment_id, channel)",
        by="experiment_id, channel",
    )
    + ") "
    "UNION ALL SELECT experiment_id, concat('channel_', channel) AS column, last AS value FROM ("
    "SELECT experiment_id, channel, argMax(y, x) AS last FROM points_text "
    "WHERE namespace = 'user' AND {listed} "
    "AND (experiment_id, channel, generation) IN (SELECT experiment_id, channel, max(generation) "
    "FROM channels WHERE namespace = 'user' AND {listed} "
    "GROUP BY experiment_id, channel) GROUP BY experiment_id, channel) "
    "UNION ALL SELECT experiment_id, concat('parameter_', name) AS column, any(value) AS value FROM parameters "
    "WHERE {listed} GROUP BY experiment_id, name "
    "UNION ALL SELECT experiment_id, concat('property_', key) AS column, "
    "argMax(value, (ts, session_id, seq)) AS value FROM properties WHERE {listed} "
    "GROUP BY experiment_id, key HAVING argMax(removed, (ts, session_id, seq)) = 0"
).replace("{listed}", _LISTED)
# every wide column of the project (not only of the page: the header stays put while paging)
_COLUMNS = (
    "SELECT DISTINCT concat('channel_', channel) AS column FROM channels "
    f"WHERE namespace = 'user' AND experiment_id IN ({_IDS}) "
    "UNION ALL SELECT DISTINCT concat('parameter_', name) AS column FROM parameters "
    f"WHERE experiment_id IN ({_IDS}) "
    "UNION ALL SELECT DISTINCT concat('property_', key) AS column FROM (SELECT experiment_id, key FROM properties "
    f"WHERE experiment_id IN ({_IDS}) GROUP BY experiment_id, key HAVING argMax(removed, (ts, session_id, seq)) = 0)"
)


@dataclass(frozen=True)
class Page:
    """One page of the leaderboard: its rows (dicts of column → value), the columns, and the counts."""

    rows: list[dict[str, Any]]
    columns: list[str]
    total: int  # experiments passing the filters
    all: int  # experiments of the project


def sort_key_of_text(value: str) -> tuple[int, float, str]:
    """How a text value sorts: numbers (by value) before other text (by code point), as in the engine."""
    if _NUMERIC.match(value):
        return (0, float(value), value)
    return (1, 0.0, value)


def _column_order(column: str) -> tuple[int, str]:
    prefix, name = column.split("_", 1)
    return (DYNAMIC.index(prefix), name)


def page(
    tables: TableStore,
    project: str,
    *,
    now: float,
    states: list[str] | None = None,
    owners: list[str] | None = None,
    tags: list[str] | None = None,
    text: str = "",
    sort: str = "id",
    descending: bool = True,
    offset: int = 0,
    limit: int = 50,
) -> Page:
    """Experiments of ``project`` passing every filter (tag: all listed), sorted, ``limit`` from ``offset``.

    ``sort``: a system column, or ``channel_<log>`` / ``parameter_<name>`` / ``property_<key>``; an unknown
    one sorts by id. Wide columns sort numbers before text (descending is the exact reverse), and the
    experiments without a value come last either way. Ties go by the experiment's number."""
    params: dict[str, Any] = {
        "p": project,
        "now": float(now),
        "after": rules.ABORTED_AFTER,
        "states": [str(s) for s in states or []],
        "owners": [str(o) for o in owners or []],
        "tags": [str(t) for t in tags or []],
        "q": str(text),
        "numeric": NUMERIC_TEXT,
    }
    wanted = [cond for name, cond in _FILTERS.items() if (params["q"] if name == "text" else params[name])]
    where = " AND ".join(wanted) or "1"
    found = tables.query_df(_COLUMNS, params)
    extra = sorted({str(c) for c in found["column"]}, key=_column_order)
    direction = "DESC" if descending else "ASC"
    prefix, _, key = sort.partition("_")
    sort = sort if sort in _SYSTEM_SORT or (prefix in _SORT_KEYS and sort in extra) else "id"
    cut = f"LIMIT {max(0, int(offset))}, {max(1, int(limit))}"  # 18.16 binds no LIMIT
    if sort in _FAST_SORTS and set(wanted) <= {_FILTERS["owners"]}:
        # what sorts and filters needs only the experiments' own records: pick the page from them,
        # and derive states and tags for the page's rows only
        counts = tables.query_df(f"SELECT count() AS n, countIf({where}) AS passing FROM ({_EXPERIMENTS})", params)
        order = ", ".join(f"{c} {direction}" for c in _SYSTEM_SORT[sort])
        picked = tables.query_df(
            f"SELECT experiment_id FROM ({_EXPERIMENTS}) WHERE {where} ORDER BY {order} {cut}", params
        )
        params["ids"] = [str(e) for e in picked["experiment_id"]]
        source, cut = _base(_LISTED), ""
    else:
        counts = tables.query_df(f"SELECT count() AS n, countIf({where}) AS passing FROM ({_base()})", params)
        source = f"SELECT * FROM ({_base()}) WHERE {where}"
        if sort in _SYSTEM_SORT:
            order = ", ".join(f"{c} {direction}" for c in _SYSTEM_SORT[sort])
        else:
            params["k"] = key
            source = f"SELECT * FROM ({source}) AS f LEFT JOIN ({_SORT_KEYS[prefix]}) AS k USING experiment_id"
            # is_num descends when ascending: numbers first, then text; the reverse when descending
            flip = "ASC" if descending else "DESC"
            order = f"has_key DESC, is_num {flip}, num {direction}, txt {direction}, number {direction}"
    found_all = int(counts["n"].iloc[0]) if not counts.empty else 0
    total = int(counts["passing"].iloc[0]) if not counts.empty else 0
    rows = tables.query_df(
        f"SELECT experiment_id, short_id, name, state, owner, created, running_time, tag_list FROM ({source}) "
        f"ORDER BY {order} {cut}",
        params,
    )
    return Page(_rows(tables, rows, extra), list(SYSTEM_COLUMNS) + extra, total, found_all)


def _rows(tables: TableStore, rows: pd.DataFrame, extra: list[str]) -> list[dict[str, Any]]:
    """The page's rows with their wide columns (read for these experiments only)."""
    if rows.empty:
        return []
    ids = [str(e) for e in rows["experiment_id"]]
    values = tables.query_df(_VALUES, {"ids": ids})
    wide: dict[str, dict[str, str]] = {e: {} for e in ids}
    for e, column, value in zip(values["experiment_id"], values["column"], values["value"], strict=True):
        wide[str(e)][str(column)] = str(value)[:MAX_VALUE_CHARS]
    out = []
    for e, short_id, name, state, owner, created, running_time, tag_list in zip(
        ids,
        rows["short_id"],
        rows["name"],
        rows["state"],
        rows["owner"],
        rows["created"],
        rows["running_time"],
        rows["tag_list"],
        strict=True,
    ):  # one page: at most ``limit`` rows
        row: dict[str, Any] = {
            "id": str(short_id),
            "name": str(name),
            "state": str(state),
            "owner": str(owner),
            "created": float(created),
            "running_time": int(running_time),
            "tags": [str(t) for t in tag_list],
        }
        mine = wide[e]
        row.update({c: mine.get(c) for c in extra})
        out.append(row)
    return out
