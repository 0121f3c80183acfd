"""The reads behind the web UI: pages' data as plain Python values, every read parameterized SQL.

Why a module of its own: the legacy reader answers one experiment at a time in legacy shapes; a page
needs other cuts (projects with counts, one experiment by its short id, a window of a text log, the
envelope of a channel). Request handlers call these methods and never write SQL. Each method holds
the table store only for its own queries, so that on the embedded default other processes (logging,
``sync()``, notebooks, ``expstream sql``) get the chdb folder between requests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from expstream.exceptions import (
    ChannelDoesNotExist,
    ExperimentNotFound,
    FileNotFound,
    InvalidChannelValue,
    NeptuneException,
    ProjectNotFound,
)
from expstream.query import charts, leaderboard
from expstream.query.reader import Reader

__all__ = ["MAX_TEXT_CHARS", "Browser", "Chart", "Series"]

#: characters of one text-log line sent to a page (the rest is cut, and the full length said)
MAX_TEXT_CHARS = 10_000


@dataclass(frozen=True)
class Series:
    """One drawn line: the M4 polyline of a channel over a range, and how many points it stands for."""

    experiment: str
    channel: str
    x: list[float]
    y: list[float]
    points: int
    buckets: int


@dataclass(frozen=True)
class Chart:
    axis: str
    x_from: float | None
    x_to: float | None
    width: int
    series: list[Series]


def _polyline(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The four points of each bucket (first, min, max, last) in x order, repeats dropped."""
    if df.empty:
        return np.empty(0), np.empty(0)
    xs = np.stack([df[c].to_numpy("float64") for c in ("x_first", "x_at_min", "x_at_max", "x_last")], axis=1)
    ys = np.stack([df[c].to_numpy("float64") for c in ("y_first", "y_min", "y_max", "y_last")], axis=1)
    order = np.argsort(xs, axis=1, kind="stable")
    xs = np.take_along_axis(xs, order, axis=1).ravel()
    ys = np.take_along_axis(ys, order, axis=1).ravel()
    keep = np.ones(len(xs), dtype=bool)
    keep[1:] = (xs[1:] != xs[:-1]) | (ys[1:] != ys[:-1])
    return xs[keep], ys[keep]


class Browser:
    """Read-only views for the UI over a :class:`Reader` (whose tables it holds per call)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader
        self.tables = reader.tables
        self._internal: dict[tuple[str, str], str] = {}  # (project, short id) → internal id: never changes
        self._x_ranges: dict[tuple[str, str, str, int], tuple[float, float]] = {}  # channel → x range seen

    def _q(self, sql: str, **params: Any) -> pd.DataFrame:
        return self.tables.query_df(sql, params)

    # --- projects ----------------------------------------------------------------------------

    def projects(self) -> list[dict[str, Any]]:
        """Every project with its number of experiments and the time of its latest activity."""
        with self.tables.hold():
            df = self._q(
                "SELECT project, count() AS experiments, max(greatest(created, activity)) AS latest FROM ("
                "SELECT experiment_id, project, created FROM experiments FINAL) AS e "
                "LEFT JOIN (SELECT experiment_id, max(ts) AS activity FROM events GROUP BY experiment_id) AS a "
                "USING experiment_id GROUP BY project ORDER BY project"
            )
        return [
            {"project": str(p), "experiments": int(n), "latest": float(t)}
            for p, n, t in zip(df["project"], df["experiments"], df["latest"], strict=True)
        ]

    # --- the leaderboard ---------------------------------------------------------------------

    def leaderboard(
        self,
        project: str,
        *,
        states: list[str] | None = None,
        owners: list[str] | None = None,
        tags: list[str] | None = None,
        text: str = "",
        sort: str = "id",
        descending: bool = True,
        offset: int = 0,
        limit: int = 50,
    ) -> dict[str, Any]:
        """One page of the project's experiments with their columns, filtered and sorted in the engine
        (:func:`expstream.query.leaderboard.page`: the work does not grow with the project's points)."""
        with self.tables.hold():
            found = leaderboard.page(
                self.tables,
                project,
                now=time.time(),
                states=states,
                owners=owners,
                tags=tags,
                text=text,
                sort=sort,
                descending=descending,
                offset=offset,
                limit=limit,
            )
            if found.all == 0:
                raise ProjectNotFound(project)
            all_owners = self.reader.owners(project)
        return {
            "rows": found.rows,
            "columns": found.columns,
            "total": found.total,
            "all": found.all,
            "owners": all_owners,
        }

    # --- one experiment ----------------------------------------------------------------------

    def resolve(self, project: str, short_id: str) -> str:
        """The internal id of ``short_id`` in ``project``; ``ExperimentNotFound`` if there is none."""
        known = self._internal.get((project, short_id))
        if known is not None:
            return known
        with self.tables.hold():
            df = self._q(
                "SELECT experiment_id FROM experiments WHERE project = {p:String} AND short_id = {s:String} LIMIT 1",
                p=project,
                s=short_id,
            )
            if df.empty:  # known only from its ExperimentIdentified event (ExperimentCreated damaged)
                df = self._q(
                    "SELECT experiment_id FROM events WHERE kind = 'ExperimentIdentified' "
                    "AND visitParamExtractString(summary, 'project') = {p:String} "
                    "AND visitParamExtractString(summary, 'short_id') = {s:String} LIMIT 1",
                    p=project,
                    s=short_id,
                )
        if df.empty:
            raise ExperimentNotFound(short_id, project)
        if len(self._internal) > 100_000:
            self._internal.clear()
        found = self._internal[(project, short_id)] = str(df["experiment_id"].iloc[0])
        return found

    def experiment(self, project: str, short_id: str) -> dict[str, Any]:
        """Everything the experiment page shows but the series themselves."""
        with self.tables.hold():
            internal = self.resolve(project, short_id)
            row = self.reader.experiment(internal, short_id, project)
            system = self._q(
                "SELECT key, any(value) AS value FROM system_properties WHERE experiment_id = {e:String} "
                "GROUP BY key ORDER BY key",
                e=internal,
            )
            traceback = self._q(
                "SELECT argMax(traceback, (ts, session_id, seq)) AS traceback FROM states "
                "WHERE experiment_id = {e:String}",
                e=internal,
            )
            details = {
                "id": short_id,
                "internal_id": internal,
                "project": project,
                "name": str(row["name"]),
                "description": str(row["description"]),
                "owner": str(row["owner"]),
                "hostname": str(row["hostname"]),
                "state": str(row["state"]),
                "created": float(row["created"]),
                "finished": None if row["finished"] is None else float(row["finished"]),
                "parameters": self.reader.parameters(internal),
                "properties": self.reader.properties(internal),
                "system_properties": dict(zip(system["key"].astype(str), system["value"].astype(str), strict=True)),
                "tags": self.reader.tags(internal),
                "traceback": str(traceback["traceback"].iloc[0]) if not traceback.empty else "",
                "channels": self._channel_list(internal),
                "artifacts": self.reader.artifacts(internal),
                "sources": self.reader.sources(internal),
            }
        created = float(row["created"])
        end = float(row["finished"]) if row["finished"] is not None else time.time()
        details["running_time"] = max(0.0, end - created)
        return details

    def _channel_list(self, internal: str) -> list[dict[str, Any]]:
        """Channels of both namespaces from the channels table (no scan of the points)."""
        df = self._q(
            "SELECT namespace, channel, argMax(type, generation) AS type FROM channels "
            "WHERE experiment_id = {e:String} GROUP BY namespace, channel ORDER BY namespace DESC, channel",
            e=internal,
        )
        return [
            {"namespace": str(n), "name": str(c), "type": str(t)}
            for n, c, t in zip(df["namespace"], df["channel"], df["type"], strict=True)
        ]

    def status(self, project: str, short_id: str) -> dict[str, Any]:
        """What a live page polls: the state, a change counter (events materialized so far) and the number
        of channel generations (a new log or a ``reset_log``: the page reloads to show its charts)."""
        with self.tables.hold():
            internal = self.resolve(project, short_id)
            # the reader's own liveness rule (store clock, heartbeats), as the leaderboard shows it
            state = str(self.reader.experiment(internal, short_id, project)["state"])
            df = self._q(
                "SELECT (SELECT uniqExact(namespace, channel, generation) FROM channels "
                "WHERE experiment_id = {e:String}) AS channels, count() AS events, max(ts) AS last FROM events "
                "WHERE experiment_id = {e:String}",
                e=internal,
            )
        row = df.iloc[0]
        return {
            "state": state,
            "events": int(row["events"]),
            "last": float(row["last"]),
            "channels": int(row["channels"]),  # logs x generations: a new log or a reset_log changes it
        }

    def _generation(self, internal: str, namespace: str, channel: str, kind: str, short_id: str) -> int:
        found = self._generations(internal, namespace, [channel], kind, short_id)[channel]
        if isinstance(found, NeptuneException):
            raise found
        return found

    def _generations(
        self, internal: str, namespace: str, channels: list[str], kind: str, short_id: str
    ) -> dict[str, int | NeptuneException]:
        """Each channel's current generation in one query, or the error that says why it is not a ``kind`` log."""
        df = self._q(
            "SELECT channel, argMax(type, generation) AS kind, max(generation) AS current FROM channels "
            "WHERE experiment_id = {e:String} AND namespace = {ns:String} "
            "AND channel IN (SELECT arrayJoin({cs:Array(String)})) GROUP BY channel",
            e=internal,
            ns=namespace,
            cs=channels,
        )
        rows = {str(c): (str(k), int(g)) for c, k, g in zip(df["channel"], df["kind"], df["current"], strict=True)}
        found: dict[str, int | NeptuneException] = {}
        for channel in channels:
            if channel not in rows:
                found[channel] = ChannelDoesNotExist(short_id, channel)
            elif rows[channel][0] != kind:
                found[channel] = InvalidChannelValue(f"{kind} log", f"{rows[channel][0]} log {channel!r}")
            else:
                found[channel] = rows[channel][1]
        return found

    # --- series ------------------------------------------------------------------------------

    def chart(
        self,
        project: str,
        short_ids: list[str],
        channel: str,
        *,
        namespace: str = "user",
        axis: str = "step",
        x_from: float | None = None,
        x_to: float | None = None,
        width: int = 1000,
    ) -> Chart:
        """The envelope of ``channel`` of each experiment over one x-range (all of it when not given).

        ``axis``: ``step`` (logged x), ``time`` (Unix seconds) or ``relative`` (seconds since each
        experiment was created; the range too)."""
        if axis not in ("step", "time", "relative"):
            raise InvalidChannelValue("axis step, time or relative", repr(axis))
        if x_from is None and x_to is None:
            (whole,) = self.charts(project, short_ids, [channel], namespace=namespace, axis=axis, width=width)
            if isinstance(whole, NeptuneException):
                raise whole
            return whole
        return self._chart(project, short_ids, channel, namespace, axis, x_from, x_to, width)

    def charts(
        self,
        project: str,
        short_ids: list[str],
        channels: list[str],
        *,
        namespace: str = "user",
        axis: str = "step",
        width: int = 1000,
    ) -> list[Chart | NeptuneException]:
        """The whole x-range of each of ``channels``, as :meth:`chart` draws it, or the error that says why that
        channel cannot be drawn (unknown, not numeric); an unknown experiment raises.

        Why: a page asks for all its charts in view at once. On every axis the rollups of all of them are read in four
        queries per experiment (generations, x-ranges, a check for points older than the rollups, the envelopes; the
        experiment's creation too on the relative axis), where one chart at a time took five queries a chart; the
        channels the rollups do not cover, or that no level fits, go chart by chart."""
        if axis not in ("step", "time", "relative"):
            raise InvalidChannelValue("axis step, time or relative", repr(axis))
        engine_axis = "step" if axis == "step" else "time"
        answers: dict[str, Chart | NeptuneException] = {}
        later: set[str] = set()  # drawn by _chart: no rollups, or no level fits
        with self.tables.hold():
            internals = [(short_id, self.resolve(project, short_id)) for short_id in short_ids]
            generations: list[dict[str, int]] = []  # per experiment: channel → its current generation
            origins: list[float] = []  # per experiment: where the chart's x is 0 on the engine's axis
            ranges: list[dict[str, tuple[float, float]]] = []  # per experiment: channel → its rolled range
            spans: dict[str, tuple[float, float]] = {}  # channel → its x-range over every experiment, chart's x
            for short_id, internal in internals:
                mine = {}
                for channel, found in self._generations(internal, namespace, channels, "numeric", short_id).items():
                    if isinstance(found, NeptuneException):
                        answers.setdefault(channel, found)  # the first experiment's error, as chart() raises it
                    else:
                        mine[channel] = found
                origin = self._origin(project, short_id, internal) if axis == "relative" else 0.0
                rolled = charts.rolled_x_ranges(self.tables, internal, namespace, mine, axis=engine_axis)
                for channel in mine:
                    if channel not in rolled:
                        later.add(channel)
                        continue
                    lo, hi = rolled[channel][0] - origin, rolled[channel][1] - origin
                    if channel in spans:
                        lo, hi = min(lo, spans[channel][0]), max(hi, spans[channel][1])
                    spans[channel] = (lo, hi)
                generations.append(mine)
                origins.append(origin)
                ranges.append(rolled)
            drawn = [c for c in spans if c not in answers and c not in later]
            series: dict[str, list[Series]] = {c: [] for c in drawn}
            for (short_id, internal), mine, origin, rolled in zip(internals, generations, origins, ranges, strict=True):
                # the chart's range on this experiment's axis (and its own, should shifting it back round inwards):
                # it holds every point of the experiment, so the rollups alone answer it (no partial end buckets)
                wanted = {
                    c: (mine[c], min(spans[c][0] + origin, rolled[c][0]), max(spans[c][1] + origin, rolled[c][1]))
                    for c in drawn
                }
                envelopes = charts.rolled_wholes(
                    self.tables, internal, namespace, wanted, width=width, axis=engine_axis
                )
                for channel in drawn:
                    if channel not in envelopes:  # no level fits (a few x-units a pixel): the points are as cheap
                        later.add(channel)
                        continue
                    df = envelopes[channel]
                    xs, ys = _polyline(df)
                    points = int(df["count"].sum()) if not df.empty else 0
                    series[channel].append(
                        Series(short_id, channel, (xs - origin).tolist(), ys.tolist(), points, len(df))
                    )
            for channel in drawn:
                if channel not in later:
                    answers[channel] = Chart(axis, spans[channel][0], spans[channel][1], width, series[channel])
            for channel in channels:
                if channel not in answers:
                    try:
                        answers[channel] = self._chart(project, short_ids, channel, namespace, axis, None, None, width)
                    except (ChannelDoesNotExist, InvalidChannelValue) as exc:
                        answers[channel] = exc
        return [answers[c] for c in channels]

    def _origin(self, project: str, short_id: str, internal: str) -> float:
        """Where the relative axis starts: the experiment's creation."""
        return self.reader.created(internal, short_id, project)

    def _chart(
        self,
        project: str,
        short_ids: list[str],
        channel: str,
        namespace: str,
        axis: str,
        x_from: float | None,
        x_to: float | None,
        width: int,
    ) -> Chart:
        engine_axis = "step" if axis == "step" else "time"
        with self.tables.hold():
            found = []
            for short_id in short_ids:
                internal = self.resolve(project, short_id)
                generation = self._generation(internal, namespace, channel, "numeric", short_id)
                origin = self._origin(project, short_id, internal) if axis == "relative" else 0.0
                # when the rollups of the axis cover the channel, a range reads a few thousand rows, not its points
                rolled = charts.rolled_x_range(self.tables, internal, namespace, channel, generation, axis=engine_axis)
                found.append((short_id, internal, generation, origin, rolled))
            lo, hi = x_from, x_to
            if lo is None or hi is None:  # the whole range of every series, on this axis (one pass each)
                ends: list[float] = []
                for _, internal, generation, origin, rolled in found:
                    if rolled is not None:
                        ends += [rolled[0] - origin, rolled[1] - origin]
                        continue
                    if engine_axis == "step":
                        ends += self._x_range(internal, namespace, channel, generation)
                        continue
                    s = charts.span(self.tables, internal, namespace, channel, generation)
                    if s.count:
                        ends += [s.ts_min - origin, s.ts_max - origin]
                lo = min(ends) if lo is None and ends else lo
                hi = max(ends) if hi is None and ends else hi
            series = []
            for short_id, internal, generation, origin, rolled in found:
                if lo is None or hi is None or hi < lo:
                    series.append(Series(short_id, channel, [], [], 0, 0))
                    continue
                df = None
                if rolled is not None:
                    df = charts.rolled_envelope(
                        self.tables, internal, namespace, channel, generation,
                        x_from=lo + origin, x_to=hi + origin, width=width, axis=engine_axis,
                    )  # fmt: skip
                if df is None:
                    df = charts.envelope(
                        self.tables,
                        internal,
                        namespace,
                        channel,
                        generation,
                        x_from=lo + origin,
                        x_to=hi + origin,
                        width=width,
                        axis=engine_axis,
                    )
                xs, ys = _polyline(df)
                points = int(df["count"].sum()) if not df.empty else 0
                series.append(Series(short_id, channel, (xs - origin).tolist(), ys.tolist(), points, len(df)))
        return Chart(axis, lo, hi, width, series)

    def _x_range(self, internal: str, namespace: str, channel: str, generation: int) -> list[float]:
        """The smallest and largest x of a channel the rollups do not cover; after the first full pass only
        points outside the range seen are read (x is in the table's key, so that reads a few granules, not the
        channel)."""
        key = (internal, namespace, channel, generation)
        seen = self._x_ranges.get(key)
        if seen is None:
            s = charts.span(self.tables, internal, namespace, channel, generation)
            if not s.count:
                return []
            seen = (s.x_min, s.x_max)
        else:
            df = self._q(
                "SELECT count() AS n, min(x) AS lo, max(x) AS hi FROM points_numeric WHERE experiment_id = {e:String} "
                "AND namespace = {ns:String} AND channel = {c:String} AND generation = {g:UInt32} "
                "AND (x < {lo:Float64} OR x > {hi:Float64})",
                e=internal, ns=namespace, c=channel, g=generation, lo=seen[0], hi=seen[1],
            )  # fmt: skip
            if int(df["n"].iloc[0]):
                seen = (min(seen[0], float(df["lo"].iloc[0])), max(seen[1], float(df["hi"].iloc[0])))
        if len(self._x_ranges) > 100_000:
            self._x_ranges.clear()
        self._x_ranges[key] = seen
        return list(seen)

    def text(
        self,
        project: str,
        short_id: str,
        channel: str,
        *,
        namespace: str = "user",
        search: str = "",
        after: float | None = None,
        limit: int = 500,
    ) -> dict[str, Any]:
        """Lines of a text log: the last ``limit`` (matching ``search``), or those after x ``after``."""
        limit = max(1, min(int(limit), 5000))
        with self.tables.hold():
            internal = self.resolve(project, short_id)
            generation = self._generation(internal, namespace, channel, "text", short_id)
            where = (
                "experiment_id = {e:String} AND namespace = {ns:String} AND channel = {c:String} "
                "AND generation = {g:UInt32}"
            )
            if search:
                where += " AND position(lowerUTF8(y), lowerUTF8({q:String})) > 0"
            if after is not None:
                where += " AND x > {after:Float64}"
            order = "ASC" if after is not None else "DESC"
            df = self._q(
                f"SELECT x, ts, substringUTF8(y, 1, {MAX_TEXT_CHARS}) AS text, lengthUTF8(y) AS length "
                f"FROM points_text FINAL WHERE {where} ORDER BY x {order} LIMIT {int(limit)}",  # 18.16 binds no LIMIT
                e=internal,
                ns=namespace,
                c=channel,
                g=generation,
                q=search,
                after=after if after is not None else 0.0,
            )
        if order == "DESC":
            df = df.iloc[::-1]
        return {
            "lines": [
                {"x": float(x), "ts": float(t), "text": str(s), "length": int(n)}
                for x, t, s, n in zip(df["x"], df["ts"], df["text"], df["length"], strict=True)
            ]
        }

    def line(self, project: str, short_id: str, channel: str, x: float, *, namespace: str = "user") -> str:
        """The whole text of the line at ``x`` (the list sends at most :data:`MAX_TEXT_CHARS` of each)."""
        return self._point_at(project, short_id, namespace, channel, "text", "y", x)

    def _point_at(
        self, project: str, short_id: str, namespace: str, channel: str, kind: str, column: str, x: float
    ) -> str:
        """``column`` of the current generation's point at ``x`` of a ``kind`` log (the latest, should a
        replay have written it twice); :class:`FileNotFound` when there is none."""
        with self.tables.hold():
            internal = self.resolve(project, short_id)
            generation = self._generation(internal, namespace, channel, kind, short_id)
            df = self._q(
                f"SELECT argMax({column}, ts) AS value, count() AS n FROM points_{kind} "
                "WHERE experiment_id = {e:String} AND namespace = {ns:String} AND channel = {c:String} "
                "AND generation = {g:UInt32} AND x = {x:Float64}",
                e=internal,
                ns=namespace,
                c=channel,
                g=generation,
                x=float(x),
            )
        if df.empty or int(df["n"].iloc[0]) == 0:
            raise FileNotFound(f"{channel} at x={x:g}")
        return str(df["value"].iloc[0])

    def images(self, project: str, short_id: str, channel: str) -> list[dict[str, Any]]:
        """The points of an image log: x, name, description, size (bytes come from :meth:`image`)."""
        with self.tables.hold():
            internal = self.resolve(project, short_id)
            generation = self._generation(internal, "user", channel, "image", short_id)
            df = self._q(
                "SELECT x, image_name, description, size FROM points_image FINAL WHERE experiment_id = {e:String} "
                "AND namespace = 'user' AND channel = {c:String} AND generation = {g:UInt32} ORDER BY x",
                e=internal,
                c=channel,
                g=generation,
            )
        return [
            {"x": float(x), "name": str(n), "description": str(d), "size": int(s)}
            for x, n, d, s in zip(df["x"], df["image_name"], df["description"], df["size"], strict=True)
        ]

    def image_digest(self, project: str, short_id: str, channel: str, x: float) -> str:
        """The SHA-256 of an image log's point at ``x``: the key of its bytes (:meth:`blob`)."""
        return self._point_at(project, short_id, "user", channel, "image", "sha256", x)

    # --- files -------------------------------------------------------------------------------

    def files(self, project: str, short_id: str, kind: str) -> dict[str, tuple[str, int]]:
        """``kind`` ``artifacts`` or ``sources``: path → (sha256, size)."""
        internal = self.resolve(project, short_id)
        return self.reader.artifacts(internal) if kind == "artifacts" else self.reader.sources(internal)

    def blob(self, sha256: str) -> bytes:
        return self.reader.blob(sha256)
