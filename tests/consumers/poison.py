"""A catalogue of poison: records someone could write straight into the events topic.

Each :class:`Poison` is the bytes of one record (well framed or not) and a piece of the reason the
consumer must give when it dead-letters it. Shared by the embedded tests (tests/consumers/test_poison.py)
and the ones against Kafka and a ClickHouse server (tests/distributed/test_poison.py).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import fastavro
from fastavro.schema import parse_schema

from expstream import schemas
from expstream.schemas import HERE, MAGIC, registry


@dataclass(frozen=True)
class Poison:
    name: str
    #: the record's bytes, made for the experiment of that internal id
    build: Callable[[str], bytes]
    #: what the dead letter's reason must contain (lower case)
    reason: str


def header(experiment_id: str, seq: int = 1, **changes: Any) -> dict[str, Any]:
    return {
        "event_id": f"{seq:032x}",
        "experiment_id": experiment_id,
        "session_id": "b" * 32,
        "seq": seq,
        "ts": 1_700_000_000.0 + seq,
        "host": "node-1",
        "pid": 4242,
    } | changes


def numeric(experiment_id: str, xs: list[float], ys: list[float], **series: Any) -> dict[str, Any]:
    return {
        "header": header(experiment_id, 900),
        "series": [{"channel": "loss", "namespace": "user", "generation": 0, "xs": xs, "ys": ys, "ts": xs} | series],
    }


def _with_schema(kind: str, raw_change: Callable[[dict[str, Any]], None], record: dict[str, Any]) -> bytes:
    """``record`` written with a schema that differs from ``kind``'s, under ``kind``'s fingerprint: valid
    framing, a body of the wrong types (what a client built against a forged schema would send)."""
    raw = json.loads((HERE / f"expstream.{kind}.avsc").read_text())
    raw["fields"][0]["type"] = json.loads((HERE / "expstream.Header.avsc").read_text())
    raw_change(raw)
    out = io.BytesIO()
    out.write(MAGIC + registry.fingerprint(kind))
    fastavro.schemaless_writer(out, parse_schema(raw), record)
    return out.getvalue()


def _wrong_types(e: str) -> bytes:
    def value_is_long(raw: dict[str, Any]) -> None:
        raw["fields"][2]["type"] = "long"

    return _with_schema("PropertySet", value_is_long, {"header": header(e), "key": "k", "value": 7})


def _truncated(e: str) -> bytes:
    message = schemas.encode("PropertySet", {"header": header(e), "key": "lr", "value": "0.1"})
    return message[:-5]


def _trailing(e: str) -> bytes:
    return schemas.encode("TagsAdded", {"header": header(e), "tags": ["ok"]}) + b"\x00\x01"


def _unknown_kind(e: str) -> bytes:
    raw = {"type": "record", "name": "Bogus", "namespace": "expstream", "fields": [{"name": "n", "type": "long"}]}
    out = io.BytesIO()
    out.write(MAGIC + bytes.fromhex("0123456789abcdef"))
    fastavro.schemaless_writer(out, parse_schema(raw), {"n": 1})
    return out.getvalue()


def _event(kind: str, **fields: Any) -> Callable[[str], bytes]:
    def build(e: str) -> bytes:
        body = {k: v for k, v in fields.items() if k != "header"}
        return schemas.encode(kind, {"header": header(e) | fields.get("header", {}), **body})

    return build


def _created(e: str, **changes: Any) -> bytes:
    record = {
        "header": header(e),
        "project": "acme/poison",
        "short_id": "POI-7",
        "number": 7,
        "name": "n",
        "description": "",
        "owner": "o",
        "hostname": "h",
        "params": [],
        "properties": {},
        "tags": [],
        "system": {},
    } | changes
    return schemas.encode("ExperimentCreated", record)


CATALOGUE: tuple[Poison, ...] = (
    Poison("garbage bytes", lambda e: b"\x00\xffnot an avro message at all", "bad magic"),
    Poison("empty record", lambda e: b"", "bad magic"),
    Poison("unknown kind", _unknown_kind, "unknown writer schema"),
    Poison("truncated avro", _truncated, "cannot decode"),
    Poison("trailing bytes", _trailing, "trailing bytes"),
    Poison("wrong field types", _wrong_types, "propertyset"),
    Poison(
        "missing experiment id",
        lambda e: schemas.encode("TagsAdded", {"header": header(""), "tags": ["x"]}),
        "experiment_id is missing",
    ),
    Poison(
        "experiment id that is not one",
        lambda e: schemas.encode("TagsAdded", {"header": header("x'); DROP TABLE tags; --"), "tags": ["x"]}),
        "not a uuid",
    ),
    Poison("NaN x", lambda e: schemas.encode("NumericPoints", numeric(e, [1.0, float("nan")], [1.0, 2.0])), "finite"),
    Poison("infinite y", lambda e: schemas.encode("NumericPoints", numeric(e, [1.0], [float("inf")])), "finite"),
    Poison("NaN timestamp", _event("Heartbeat", header={"ts": float("nan")}), "header.ts"),
    Poison("negative pid", _event("Heartbeat", header={"pid": -1}), "header.pid"),
    Poison("negative seq", _event("StateChanged", header={"seq": -5}, state="running", traceback=None), "header.seq"),
    Poison(
        "columns of different lengths",
        lambda e: schemas.encode("NumericPoints", numeric(e, [1.0, 2.0], [1.0])),
        "different lengths",
    ),
    Poison(
        "negative generation",
        lambda e: schemas.encode("NumericPoints", numeric(e, [1.0], [1.0], generation=-1)),
        "generation",
    ),
    Poison("over-long tag", _event("TagsAdded", tags=["ok", "t" * 10_000]), "longer than 128"),
    Poison(
        "unknown namespace",
        _event("ChannelReset", channel="c", namespace="root", type="numeric", generation=1),
        "namespace",
    ),
    Poison("negative experiment number", lambda e: _created(e, number=-3, short_id="POI--3"), "number"),
    Poison(
        "negative source size",
        _event("SourceFiles", files=[{"path": "a.py", "sha256": "0" * 64, "size": -1, "mode": 420}]),
        "size",
    ),
    Poison(
        "artifact path outside", _event("ArtifactCommitted", path="../../etc/passwd", sha256="0" * 64, size=1), "path"
    ),
)
