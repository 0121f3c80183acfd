"""Events → rows: turns decoded events into columnar batches for the tables of ``deploy/clickhouse``.

Every event is checked whole before any of its rows is added, so a malformed event is rejected
(and dead-lettered by the runner) without leaving half of itself in a table.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any

import numpy as np

from expstream.consumers import rollup
from expstream.consumers.blobs import SHA256
from expstream.consumers.sinks.columns import Coded
from expstream.exceptions import ArtifactPathError, EventDecodeError
from expstream.paths import clean_artifact_path, clean_source_path

__all__ = ["STORE_COLUMNS", "TABLE_COLUMNS", "Chunks", "Materializer", "Runs"]


class Runs:
    """A column of few distinct values repeated in runs (experiment, channel, session of points).

    Kept as ``(value, count)`` pairs and built as a dictionary-encoded column (:class:`Coded`): a million
    points of one channel cost one entry here, not a million Python string references.
    """

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.counts: list[int] = []

    def extend(self, value: Any, count: int) -> None:
        self.values.append(value)
        self.counts.append(count)

    def __len__(self) -> int:
        return sum(self.counts)

    def build(self) -> Any:
        if self.values and not isinstance(self.values[0], str):
            return np.repeat(np.asarray(self.values), self.counts)
        runs = Coded.encode(self.values)  # one code per run, then repeated over its rows
        return Coded(np.repeat(runs.codes, self.counts), runs.values)


class Chunks:
    """A float64 column gathered from whole arrays (the columns of NumericPoints) or lists:
    joined once by numpy instead of extending a list item by item."""

    def __init__(self) -> None:
        self.parts: list[Any] = []

    def extend(self, values: Any) -> None:
        self.parts.append(values)

    def __len__(self) -> int:
        return sum(len(p) for p in self.parts)

    def build(self) -> Any:
        return np.concatenate([np.asarray(p, dtype=np.float64) for p in self.parts])


#: column order of every table the materializer writes
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "experiments": (
        "experiment_id", "project", "short_id", "number", "name", "description", "owner", "hostname", "created",
    ),
    "system_properties": ("experiment_id", "key", "value"),
    "parameters": ("experiment_id", "name", "value", "type"),
    "properties": ("experiment_id", "key", "value", "removed", "ts", "session_id", "seq"),
    "tags": ("experiment_id", "tag", "added", "ts", "session_id", "seq"),
    "states": ("experiment_id", "state", "traceback", "ts", "session_id", "seq"),
    "heartbeats": ("experiment_id", "session_id", "host", "pid", "ts"),
    "liveness": ("experiment_id", "session_id"),  # received: filled by the table store at insert
    "channels": ("experiment_id", "namespace", "channel", "type", "generation", "ts"),
    "points_numeric": ("experiment_id", "namespace", "channel", "generation", "x", "y", "ts", "session_id"),
    "points_text": ("experiment_id", "namespace", "channel", "generation", "x", "y", "ts", "session_id"),
    "points_image": (
        "experiment_id", "namespace", "channel", "generation", "x", "image_name", "description", "sha256", "size",
        "ts", "session_id",
    ),
    "artifacts": ("experiment_id", "path", "sha256", "size", "deleted", "ts", "session_id", "seq"),
    "sources": ("experiment_id", "path", "sha256", "size", "mode", "ts"),
    "events": ("experiment_id", "ts", "kind", "session_id", "seq", "event_id", "host", "pid", "summary"),
    "points_rollup": rollup.COLUMNS,
    "points_rollup_time": rollup.TIME_COLUMNS,
}  # fmt: skip

#: columns the table store fills itself at insert (their DEFAULT): never sent by the materializer
STORE_COLUMNS: dict[str, tuple[str, ...]] = {"liveness": ("received",)}

_POINT_TABLES = {"NumericPoints": "points_numeric", "TextPoints": "points_text", "ImagePoints": "points_image"}
_RUN_COLUMNS = ("experiment_id", "namespace", "channel", "generation", "session_id")
_FLOAT_COLUMNS = {"points_numeric": ("x", "y", "ts"), "points_text": ("x", "ts"), "points_image": ("x", "ts")}
_POINT_TYPES = {"NumericPoints": "numeric", "TextPoints": "text", "ImagePoints": "image"}


def _column(values: Any) -> Any:
    if isinstance(values, (Runs, Chunks)):
        return values.build()
    if values and type(values[0]) is float:
        return np.asarray(values, dtype=np.float64)
    return values


def _key_order(table: dict[str, Any]) -> np.ndarray | None:
    """The row order that sorts a batch of points by the table's ``ORDER BY`` key, or None when it
    is sorted already. ClickHouse skips its own sort for a sorted insert, which makes the insert
    of a consumer batch (many channels interleaved) several times cheaper for the server.

    Rows come in runs (one series each: one key, increasing x), so runs are ordered, not rows; a
    batch where runs of one key overlap in x (two processes writing one channel) ends up nearly
    sorted, and ClickHouse sorts the rest as before.
    """
    runs = [table[c] for c in ("experiment_id", "namespace", "channel", "generation")]
    counts = runs[0].counts
    xs = table["x"].parts
    sessions = table["session_id"].values
    keys = [(*(r.values[i] for r in runs), xs[i][0], sessions[i]) for i in range(len(counts))]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    if all(i == j for i, j in enumerate(order)):
        return None
    starts = np.cumsum([0, *counts])
    return np.concatenate([np.arange(starts[i], starts[i + 1]) for i in order])


def _take(column: Any, order: np.ndarray) -> Any:
    if isinstance(column, Coded):
        return column.take(order)
    if isinstance(column, np.ndarray):
        return column[order]
    return [column[i] for i in order.tolist()]


class Materializer:
    """Accumulates the rows of many events; :attr:`tables` is what the runner inserts."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[str, Any]] = {}
        #: blob chunks to write to the object store, in order: (sha256, offset, size, data)
        self.chunks: list[tuple[str, int, int, bytes]] = []
        self.events = 0
        self.rollups = rollup.Rollups()  # points_rollup and points_rollup_time, built beside points_numeric

    def _table(self, name: str) -> dict[str, Any]:
        table = self.tables.get(name)
        if table is None:
            runs = name.startswith("points_")
            floats = _FLOAT_COLUMNS.get(name, ())
            table = self.tables[name] = {
                c: Runs() if runs and c in _RUN_COLUMNS else Chunks() if c in floats else []
                for c in TABLE_COLUMNS[name]
            }
        return table

    def columns(self) -> dict[str, dict[str, Any]]:
        """Every non-empty table as insert-ready columns (numpy arrays, :class:`Coded` columns or lists)."""
        out = {}
        for name, table in self.tables.items():
            if not len(next(iter(table.values()))):
                continue
            columns = {c: _column(v) for c, v in table.items()}
            order = _key_order(table) if name in _FLOAT_COLUMNS else None
            out[name] = columns if order is None else {c: _take(v, order) for c, v in columns.items()}
        out.update(self.rollups.columns())
        return out

    def _row(self, table_name: str, /, **values: Any) -> None:
        table = self._table(table_name)
        for column, column_values in table.items():
            column_values.append(values[column])

    def add(self, kind: str, record: dict[str, Any]) -> None:
        """Add one decoded event; raises EventDecodeError (adding nothing) when it is malformed."""
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            raise EventDecodeError(f"no materializer for event kind {kind}")
        header = record["header"]
        if not header["experiment_id"]:
            raise EventDecodeError(f"{kind} without an experiment id")
        summary = handler(header, record)
        self._row(
            "events",
            experiment_id=header["experiment_id"],
            ts=header["ts"],
            kind=kind,
            session_id=header["session_id"],
            seq=header["seq"],
            event_id=header["event_id"],
            host=header["host"],
            pid=header["pid"],
            summary=json.dumps(summary, ensure_ascii=False, separators=(",", ":"), default=str),
        )
        self.events += 1

    # --- one handler per kind; each returns the history summary ---------------------------

    def _on_ExperimentCreated(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        e = h["experiment_id"]
        self._row(
            "experiments", experiment_id=e, project=r["project"], short_id=r["short_id"], number=r["number"],
            name=r["name"], description=r["description"], owner=r["owner"], hostname=r["hostname"], created=h["ts"],
        )  # fmt: skip
        for key, value in r["system"].items():
            self._row("system_properties", experiment_id=e, key=key, value=value)
        for p in r["params"]:
            self._row("parameters", experiment_id=e, name=p["name"], value=p["value"], type=p["type"])
        for key, value in r["properties"].items():
            self._row("properties", experiment_id=e, key=key, value=value, removed=0, ts=h["ts"],
                      session_id=h["session_id"], seq=h["seq"])  # fmt: skip
        for tag in r["tags"]:
            self._row("tags", experiment_id=e, tag=tag, added=1, ts=h["ts"], session_id=h["session_id"], seq=h["seq"])
        return {"short_id": r["short_id"], "name": r["name"], "project": r["project"]}

    def _on_ExperimentIdentified(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        """Only history: the reader shows an experiment from it when ExperimentCreated is missing."""
        if r["number"] < 1 or not r["project"]:
            raise EventDecodeError("ExperimentIdentified without a project or a positive number")
        return {"project": r["project"], "short_id": r["short_id"], "number": r["number"]}

    def _on_StateChanged(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        self._row("states", experiment_id=h["experiment_id"], state=r["state"], traceback=r["traceback"] or "",
                  ts=h["ts"], session_id=h["session_id"], seq=h["seq"])  # fmt: skip
        return {"state": r["state"]}

    def _on_Heartbeat(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        self._row("heartbeats", experiment_id=h["experiment_id"], session_id=h["session_id"], host=h["host"],
                  pid=h["pid"], ts=h["ts"])  # fmt: skip
        self._row("liveness", experiment_id=h["experiment_id"], session_id=h["session_id"])
        return {}

    def _points(self, kind: str, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        columns = (
            ("xs", "ts", "names", "descriptions", "sha256s", "sizes") if kind == "ImagePoints" else ("xs", "ys", "ts")
        )
        for s in r["series"]:
            n = len(s["xs"])
            if any(len(s[c]) != n for c in columns):
                raise EventDecodeError(f"{kind} series {s['channel']!r} has columns of different lengths")
        e, session = h["experiment_id"], h["session_id"]
        table = self._table(_POINT_TABLES[kind])
        counts: dict[str, int] = defaultdict(int)
        for s in r["series"]:
            n = len(s["xs"])
            if not n:
                continue
            counts[s["channel"]] += n
            self._row("channels", experiment_id=e, namespace=s["namespace"], channel=s["channel"],
                      type=_POINT_TYPES[kind], generation=s["generation"], ts=h["ts"])  # fmt: skip
            for column, value in (("experiment_id", e), ("namespace", s["namespace"]), ("channel", s["channel"]),
                                  ("generation", s["generation"]), ("session_id", session)):  # fmt: skip
                table[column].extend(value, n)
            table["x"].extend(s["xs"])
            table["ts"].extend(s["ts"])
            if kind == "ImagePoints":
                table["image_name"].extend(v or "" for v in s["names"])
                table["description"].extend(v or "" for v in s["descriptions"])
                table["sha256"].extend(s["sha256s"])
                table["size"].extend(s["sizes"])
            else:
                table["y"].extend(s["ys"])
            if kind == "NumericPoints":
                self.rollups.add(
                    e, s["namespace"], s["channel"], s["generation"], h["event_id"], s["xs"], s["ys"], s["ts"]
                )
        return {"points": dict(counts)}

    def _on_NumericPoints(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        return self._points("NumericPoints", h, r)

    def _on_TextPoints(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        return self._points("TextPoints", h, r)

    def _on_ImagePoints(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        return self._points("ImagePoints", h, r)

    def _on_ChannelReset(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        self._row("channels", experiment_id=h["experiment_id"], namespace=r["namespace"], channel=r["channel"],
                  type=r["type"], generation=r["generation"], ts=h["ts"])  # fmt: skip
        return {"channel": r["channel"], "generation": r["generation"]}

    def _tags(self, h: dict[str, Any], tags: list[str], added: int) -> dict[str, Any]:
        for tag in tags:
            self._row("tags", experiment_id=h["experiment_id"], tag=tag, added=added, ts=h["ts"],
                      session_id=h["session_id"], seq=h["seq"])  # fmt: skip
        return {"tags": tags}

    def _on_TagsAdded(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        return self._tags(h, r["tags"], 1)

    def _on_TagsRemoved(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        return self._tags(h, r["tags"], 0)

    def _property(self, h: dict[str, Any], key: str, value: str, removed: int) -> dict[str, Any]:
        self._row("properties", experiment_id=h["experiment_id"], key=key, value=value, removed=removed, ts=h["ts"],
                  session_id=h["session_id"], seq=h["seq"])  # fmt: skip
        return {"key": key, "value": value} if not removed else {"key": key}

    def _on_PropertySet(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        return self._property(h, r["key"], r["value"], 0)

    def _on_PropertyRemoved(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        return self._property(h, r["key"], "", 1)

    def _on_ArtifactChunk(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        data, offset, size, sha256 = r["data"], r["offset"], r["size"], r["sha256"]
        if offset < 0 or offset + len(data) > size or not SHA256.fullmatch(sha256):
            raise EventDecodeError("ArtifactChunk outside its blob or with a bad digest")
        if offset == 0 and len(data) == size and hashlib.sha256(data).hexdigest() != sha256:
            raise EventDecodeError(f"ArtifactChunk data does not hash to its sha256 {sha256}")
        self.chunks.append((sha256, offset, size, data))
        return {"sha256": sha256, "offset": offset, "bytes": len(data), "size": size}

    def _artifact(self, h: dict[str, Any], path: str, sha256: str, size: int, deleted: int) -> dict[str, Any]:
        path = _clean(clean_artifact_path, "artifact", path)
        if not deleted and (not SHA256.fullmatch(sha256) or size < 0):
            raise EventDecodeError(f"artifact {path!r} with a bad digest or size")
        self._row("artifacts", experiment_id=h["experiment_id"], path=path, sha256=sha256, size=size, deleted=deleted,
                  ts=h["ts"], session_id=h["session_id"], seq=h["seq"])  # fmt: skip
        return {"path": path, "sha256": sha256, "size": size} if not deleted else {"path": path}

    def _on_ArtifactCommitted(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        return self._artifact(h, r["path"], r["sha256"], r["size"], 0)

    def _on_ArtifactDeleted(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        return self._artifact(h, r["path"], "", 0, 1)

    def _on_SourceFiles(self, h: dict[str, Any], r: dict[str, Any]) -> dict[str, Any]:
        paths = [_clean(clean_source_path, "source", f["path"]) for f in r["files"]]  # all checked before any row
        if any(not SHA256.fullmatch(f["sha256"]) for f in r["files"]):
            raise EventDecodeError("SourceFiles with a bad digest")
        for path, f in zip(paths, r["files"], strict=True):
            self._row("sources", experiment_id=h["experiment_id"], path=path, sha256=f["sha256"], size=f["size"],
                      mode=f["mode"], ts=h["ts"])  # fmt: skip
        return {"files": paths}


def _clean(rule: Any, what: str, path: str) -> str:
    """A stored path by ``rule`` (:mod:`expstream.paths`), or EventDecodeError naming why it is refused."""
    try:
        return rule(path)
    except ArtifactPathError as exc:
        raise EventDecodeError(f"{what} path refused: {exc}") from None
