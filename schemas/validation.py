"""What an event must mean, beyond what Avro checks: the gate between the log and the sinks.

Avro decoding proves a message has the shape of its schema; it does not prove the values make sense.
Anyone who can write to the events topic can send a well-framed event whose experiment id is empty or
``'; DROP``, whose x is NaN, whose pid or size is negative (ClickHouse's unsigned columns would refuse it,
or worse, wrap it around), whose tag is 10,000 characters long. :func:`validate` refuses such an event
with an :class:`~expstream.exceptions.EventValidationError` naming the field, so that the consumer
dead-letters it before any of its rows reaches a table.

The rules are the producer's own (``producer/``, ``expstream/experiments.py``): every event the client
writes passes them, and an event that fails them could not have come from it. Events for an experiment
whose creation has not arrived are valid: the creation may come later, or from a replay.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from expstream.exceptions import EventValidationError

__all__ = ["LIMITS", "validate"]

#: largest values and lengths an event may carry (the producer's limits and the tables' column types)
LIMITS = {
    "id_chars": 64,  # event and session ids: the producer writes 32 hex digits
    "host_chars": 255,  # a DNS name has at most 253
    "tag_chars": 128,  # docs/legacy-behaviour.md#tags
    "uint32": (1 << 32) - 1,
    "avro_int": (1 << 31) - 1,
}

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SHORT_ID = re.compile(r"[A-Z0-9]+-([1-9][0-9]*)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMESPACES = ("user", "system")
_CHANNEL_TYPES = ("numeric", "text", "image")
_PARAMETER_TYPES = ("double", "string")
_STATES = ("running", "succeeded", "failed", "aborted")


def _fail(kind: str, field: str, problem: str) -> EventValidationError:
    return EventValidationError(f"{kind}: {field} {problem}")


def _str(kind: str, field: str, value: Any, *, empty: bool = True, max_chars: int | None = None) -> str:
    if not isinstance(value, str):
        raise _fail(kind, field, f"is not a string but {type(value).__name__}")
    if not empty and not value:
        raise _fail(kind, field, "is empty")
    if max_chars is not None and len(value) > max_chars:
        raise _fail(kind, field, f"is longer than {max_chars} characters ({len(value)})")
    return value


def _int(kind: str, field: str, value: Any, low: int, high: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise _fail(kind, field, f"is not an integer but {type(value).__name__}")
    if not low <= value <= high:
        raise _fail(kind, field, f"is {value}, outside {low}..{high}")
    return int(value)


def _finite(kind: str, field: str, value: Any) -> float:
    if not isinstance(value, (float, int, np.floating, np.integer)) or isinstance(value, bool):
        raise _fail(kind, field, f"is not a number but {type(value).__name__}")
    if not math.isfinite(value):
        raise _fail(kind, field, f"is {value}: a finite number is required")
    return float(value)


def _finite_column(kind: str, field: str, values: Any) -> int:
    """Length of a column of doubles whose every value is finite (one numpy pass, not a Python loop)."""
    try:
        column = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise _fail(kind, field, "is not a column of numbers") from None
    if column.ndim != 1:
        raise _fail(kind, field, "is not a one-dimensional column")
    if not np.isfinite(column).all():
        raise _fail(kind, field, "holds NaN or infinity: finite numbers are required")
    return len(column)


def _list(kind: str, field: str, value: Any) -> Any:
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise _fail(kind, field, f"is not an array but {type(value).__name__}")
    return value


def _one_of(kind: str, field: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise _fail(kind, field, f"is {str(value)[:64]!r}, not one of {', '.join(allowed)}")


def _sha256(kind: str, field: str, value: Any) -> None:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        raise _fail(kind, field, "is not a sha256 (64 lower-case hex digits)")


def _tag(kind: str, field: str, value: Any) -> None:
    _str(kind, field, value, empty=False, max_chars=LIMITS["tag_chars"])
    if _CONTROL.search(value):
        raise _fail(kind, field, "contains control characters")


def _header(kind: str, header: Any) -> None:
    if not isinstance(header, Mapping):
        raise _fail(kind, "header", "is missing")
    experiment_id = header.get("experiment_id")
    if not experiment_id:
        raise _fail(kind, "header.experiment_id", "is missing: every event belongs to an experiment")
    if not isinstance(experiment_id, str) or not _UUID.fullmatch(experiment_id):
        raise _fail(kind, "header.experiment_id", f"{str(experiment_id)[:64]!r} is not a UUID")
    for field in ("event_id", "session_id"):
        value = _str(kind, f"header.{field}", header.get(field), empty=False, max_chars=LIMITS["id_chars"])
        if not _TOKEN.fullmatch(value):
            raise _fail(kind, f"header.{field}", "holds characters an id never has")
    _int(kind, "header.seq", header.get("seq"), 0, (1 << 63) - 1)
    if _finite(kind, "header.ts", header.get("ts")) < 0:
        raise _fail(kind, "header.ts", "is before 1970")
    host = _str(kind, "header.host", header.get("host"), max_chars=LIMITS["host_chars"])
    if _CONTROL.search(host):
        raise _fail(kind, "header.host", "contains control characters")
    _int(kind, "header.pid", header.get("pid"), 0, LIMITS["avro_int"])


def _identity(kind: str, r: Mapping[str, Any]) -> None:
    project = _str(kind, "project", r.get("project"), empty=False)
    namespace, slash, name = project.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise _fail(kind, "project", f"{project[:64]!r} is not 'namespace/name'")
    number = _int(kind, "number", r.get("number"), 1, (1 << 63) - 1)
    match = _SHORT_ID.fullmatch(_str(kind, "short_id", r.get("short_id"), empty=False, max_chars=64))
    if match is None or int(match.group(1)) != number:
        raise _fail(kind, "short_id", f"{r['short_id']!r} is not <KEY>-{number}")


def _experiment_created(kind: str, r: Mapping[str, Any]) -> None:
    _identity(kind, r)
    for field in ("name", "description", "owner", "hostname"):
        _str(kind, field, r.get(field))
    for i, p in enumerate(_list(kind, "params", r.get("params"))):
        _str(kind, f"params[{i}].name", p.get("name"), empty=False)
        _str(kind, f"params[{i}].value", p.get("value"))
        _one_of(kind, f"params[{i}].type", p.get("type"), _PARAMETER_TYPES)
    for field in ("properties", "system"):
        values = r.get(field)
        if not isinstance(values, Mapping):
            raise _fail(kind, field, "is not a map")
        for key, value in values.items():
            _str(kind, f"{field} key", key)
            _str(kind, f"{field}[{str(key)[:64]!r}]", value)
    for i, tag in enumerate(_list(kind, "tags", r.get("tags"))):
        _tag(kind, f"tags[{i}]", tag)


def _state_changed(kind: str, r: Mapping[str, Any]) -> None:
    _one_of(kind, "state", r.get("state"), _STATES)
    if r.get("traceback") is not None:
        _str(kind, "traceback", r["traceback"])


def _channel(kind: str, prefix: str, s: Mapping[str, Any]) -> None:
    _str(kind, f"{prefix}channel", s.get("channel"), empty=False)
    _one_of(kind, f"{prefix}namespace", s.get("namespace"), _NAMESPACES)
    _int(kind, f"{prefix}generation", s.get("generation"), 0, LIMITS["avro_int"])


def _points(kind: str, r: Mapping[str, Any]) -> None:
    for i, s in enumerate(_list(kind, "series", r.get("series"))):
        field = f"series[{i}]"
        if not isinstance(s, Mapping):
            raise _fail(kind, field, "is not a record")
        _channel(kind, f"{field}.", s)
        n = _finite_column(kind, f"{field}.xs", s.get("xs"))
        lengths = {"ts": _finite_column(kind, f"{field}.ts", s.get("ts"))}
        if kind == "NumericPoints":
            lengths["ys"] = _finite_column(kind, f"{field}.ys", s.get("ys"))
        elif kind == "TextPoints":
            ys = _list(kind, f"{field}.ys", s.get("ys"))
            if not all(isinstance(y, str) for y in ys):
                raise _fail(kind, f"{field}.ys", "holds a value that is not a string")
            lengths["ys"] = len(ys)
        else:
            for column in ("names", "descriptions", "sha256s", "sizes"):
                lengths[column] = len(_list(kind, f"{field}.{column}", s.get(column)))
            for j, sha in enumerate(s["sha256s"]):
                _sha256(kind, f"{field}.sha256s[{j}]", sha)
            for j, size in enumerate(s["sizes"]):
                _int(kind, f"{field}.sizes[{j}]", size, 0, (1 << 63) - 1)
            for column in ("names", "descriptions"):
                if not all(v is None or isinstance(v, str) for v in s[column]):
                    raise _fail(kind, f"{field}.{column}", "holds a value that is not a string")
        uneven = {c: m for c, m in lengths.items() if m != n}
        if uneven:
            raise _fail(kind, field, f"{s['channel']!r} has columns of different lengths (xs {n}, {uneven})")


def _channel_reset(kind: str, r: Mapping[str, Any]) -> None:
    _channel(kind, "", r)
    _one_of(kind, "type", r.get("type"), _CHANNEL_TYPES)


def _tags(kind: str, r: Mapping[str, Any]) -> None:
    for i, tag in enumerate(_list(kind, "tags", r.get("tags"))):
        _tag(kind, f"tags[{i}]", tag)


def _property(kind: str, r: Mapping[str, Any]) -> None:
    _str(kind, "key", r.get("key"))
    if kind == "PropertySet":
        _str(kind, "value", r.get("value"))


def _artifact_chunk(kind: str, r: Mapping[str, Any]) -> None:
    _sha256(kind, "sha256", r.get("sha256"))
    size = _int(kind, "size", r.get("size"), 0, (1 << 63) - 1)
    offset = _int(kind, "offset", r.get("offset"), 0, size)
    data = r.get("data")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _fail(kind, "data", "is not bytes")
    if offset + len(data) > size:
        raise _fail(kind, "data", f"ends at {offset + len(data)}, past the blob's size {size}")


def _artifact(kind: str, r: Mapping[str, Any]) -> None:
    _str(kind, "path", r.get("path"), empty=False)  # what a path may be: the materializer's clean_artifact_path
    if kind == "ArtifactCommitted":
        _sha256(kind, "sha256", r.get("sha256"))
        _int(kind, "size", r.get("size"), 0, (1 << 63) - 1)


def _source_files(kind: str, r: Mapping[str, Any]) -> None:
    for i, f in enumerate(_list(kind, "files", r.get("files"))):
        _str(kind, f"files[{i}].path", f.get("path"), empty=False)
        _sha256(kind, f"files[{i}].sha256", f.get("sha256"))
        _int(kind, f"files[{i}].size", f.get("size"), 0, (1 << 63) - 1)
        _int(kind, f"files[{i}].mode", f.get("mode"), 0, LIMITS["uint32"])


_RULES: dict[str, Callable[[str, Mapping[str, Any]], None]] = {
    "ExperimentCreated": _experiment_created,
    "ExperimentIdentified": _identity,
    "StateChanged": _state_changed,
    "Heartbeat": lambda kind, r: None,
    "NumericPoints": _points,
    "TextPoints": _points,
    "ImagePoints": _points,
    "ChannelReset": _channel_reset,
    "TagsAdded": _tags,
    "TagsRemoved": _tags,
    "PropertySet": _property,
    "PropertyRemoved": _property,
    "ArtifactChunk": _artifact_chunk,
    "ArtifactCommitted": _artifact,
    "ArtifactDeleted": _artifact,
    "SourceFiles": _source_files,
}


def validate(kind: str, record: Any) -> None:
    """Raise :class:`EventValidationError` naming the first field of ``record`` that breaks its rules."""
    rule = _RULES.get(kind)
    if rule is None:
        raise EventValidationError(f"unknown event kind {str(kind)[:64]!r}")
    if not isinstance(record, Mapping):
        raise EventValidationError(f"{kind}: the event is not a record")
    _header(kind, record.get("header"))
    try:
        rule(kind, record)
    except (AttributeError, KeyError, TypeError) as exc:  # a nested record that is not one
        raise EventValidationError(f"{kind}: malformed record ({type(exc).__name__}: {exc})") from None
