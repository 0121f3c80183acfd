"""The event contract: one Avro schema per kind of change, framed as Avro single-object encoding.

A message is ``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema's
canonical form + the Avro binary body. The fingerprint names the writer schema, so a reader can
decode events written by older versions: every ``*.avsc`` in this folder is the current version of
its kind, and ``history/`` keeps the earlier versions that may still sit in logs and topics.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from expstream.exceptions import EventDecodeError
from expstream.schemas.columnar import read_numeric_points, write_numeric_points

__all__ = [
    "KINDS",
    "MAGIC",
    "Registry",
    "decode",
    "encode",
    "registry",
]

MAGIC = b"\xc3\x01"
HERE = Path(__file__).parent
NAMESPACE = "expstream"

#: Event kinds, in the order a reader meets them in the docs.
KINDS = (
    "ExperimentCreated",
    "ExperimentIdentified",
    "StateChanged",
    "Heartbeat",
    "NumericPoints",
    "TextPoints",
    "ImagePoints",
    "ChannelReset",
    "TagsAdded",
    "TagsRemoved",
    "PropertySet",
    "PropertyRemoved",
    "ArtifactChunk",
    "ArtifactCommitted",
    "ArtifactDeleted",
    "SourceFiles",
)


@dataclass(frozen=True)
class _Version:
    kind: str
    parsed: Any
    fingerprint: bytes  # 8 bytes, little-endian, as on the wire


def _fingerprint(parsed: Any) -> bytes:
    # fastavro gives the bytes in the order the spec puts them on the wire: little-endian
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


class Registry:
    """Knows every schema version: writes with the current one, reads with any known one."""

    def __init__(self, folder: Path = HERE) -> None:
        header = json.loads((folder / f"{NAMESPACE}.Header.avsc").read_text())
        self._header = parse_schema(header)
        self._current: dict[str, _Version] = {}
        self._by_fingerprint: dict[bytes, _Version] = {}
        for kind in KINDS:
            self._add(json.loads((folder / f"{NAMESPACE}.{kind}.avsc").read_text()), header, current=True)
        for path in sorted((folder / "history").glob("*.avsc")):
            self._add(json.loads(path.read_text()), header, current=False)

    def _add(self, raw: dict[str, Any], header: dict[str, Any], *, current: bool) -> None:
        named: dict[str, Any] = {}
        parse_schema(header, named_schemas=named)
        # The fingerprint names the whole writer schema: its canonical form must be standalone, with
        # the Header written out (Avro spec), or a change of Header would keep every fingerprint.
        standalone = parse_schema(raw, named_schemas=dict(named), expand=True)
        parsed = parse_schema(raw, named_schemas=named)
        kind = raw["name"]
        version = _Version(kind, parsed, _fingerprint(standalone))
        self._by_fingerprint[version.fingerprint] = version
        if current:
            self._current[kind] = version

    def add_version(self, raw: dict[str, Any]) -> None:
        """Teach the registry an older writer schema (used by tests and by imports of old files)."""
        header = json.loads((HERE / f"{NAMESPACE}.Header.avsc").read_text())
        self._add(raw, header, current=False)

    def schema(self, kind: str) -> Any:
        return self._current[kind].parsed

    def fingerprint(self, kind: str) -> bytes:
        return self._current[kind].fingerprint

    def encode(self, kind: str, record: dict[str, Any]) -> bytes:
        version = self._current[kind]
        out = io.BytesIO()
        out.write(MAGIC)
        out.write(version.fingerprint)
        if kind == "NumericPoints":
            write_numeric_points(out, self._header, record)
        else:
            fastavro.schemaless_writer(out, version.parsed, record)
        return out.getvalue()

    def kind_of(self, message: bytes) -> str | None:
        """The event kind a message says it is (from its fingerprint), without decoding it."""
        if len(message) < 10 or message[:2] != MAGIC:
            return None
        writer = self._by_fingerprint.get(bytes(message[2:10]))
        return None if writer is None else writer.kind

    def decode(self, message: bytes) -> tuple[str, dict[str, Any]]:
        """Return ``(kind, record)``, the record resolved to the current version of its kind.

        The columns of a current NumericPoints event come back as read-only float64 arrays."""
        if len(message) < 10 or message[:2] != MAGIC:
            raise EventDecodeError("not an Avro single-object message (bad magic)")
        writer = self._by_fingerprint.get(bytes(message[2:10]))
        if writer is None:
            raise EventDecodeError(f"unknown writer schema fingerprint {bytes(message[2:10]).hex()}")
        reader = self._current.get(writer.kind, writer)
        if reader is writer and writer.kind == "NumericPoints":
            return writer.kind, read_numeric_points(message, 10, self._header)
        body = io.BytesIO(message[10:])
        try:
            if reader is writer:
                record = fastavro.schemaless_reader(body, writer.parsed, None)
            else:
                record = fastavro.schemaless_reader(body, writer.parsed, reader.parsed)
        except Exception as exc:  # fastavro raises many kinds on garbage: one type for callers
            raise EventDecodeError(f"cannot decode {writer.kind}: {exc}") from exc
        if body.tell() != len(message) - 10:
            raise EventDecodeError(f"trailing bytes after {writer.kind} body")
        return writer.kind, record  # type: ignore[return-value]


registry = Registry()
encode = registry.encode
decode = registry.decode
