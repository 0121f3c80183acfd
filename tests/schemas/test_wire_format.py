"""The event contract on the wire: pinned bytes, the single-object frame, evolution and bad input.

The golden messages below were computed once and are committed on purpose: a change of any ``.avsc``
file, of the framing or of the encoder that alters a single byte fails here, because events already
sitting in logs and topics must stay readable.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import pytest
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from expstream import schemas
from expstream.consumers.materializer import Materializer
from expstream.exceptions import EventDecodeError

SCHEMA_DIR = Path(schemas.__file__).parent

HEADER: dict[str, Any] = {
    "event_id": "0123456789abcdef0123456789abcdef",
    "experiment_id": "11111111-2222-3333-4444-555555555555",
    "session_id": "fedcba9876543210fedcba9876543210",
    "seq": 7,
    "ts": 1700000000.5,
    "host": "node-1",
    "pid": 4242,
}

#: case name -> (kind, record); the golden messages encode exactly these
GOLDEN_RECORDS: dict[str, tuple[str, dict[str, Any]]] = {
    "PropertySet": ("PropertySet", {"header": HEADER, "key": "lr", "value": "0.001"}),
    "NumericPoints": (
        "NumericPoints",
        {
            "header": HEADER,
            "series": [
                {
                    "channel": "loss",
                    "namespace": "user",
                    "generation": 0,
                    "xs": [0.0, 1.0, 2.0],
                    "ys": [1.5, 0.75, -0.25],
                    "ts": [1700000000.0, 1700000001.0, 1700000002.0],
                }
            ],
        },
    ),
    "TextPoints": (
        "TextPoints",
        {
            "header": HEADER,
            "series": [
                {
                    "channel": "notes",
                    "namespace": "user",
                    "generation": 1,
                    "xs": [3.0],
                    "ys": ["héllo"],
                    "ts": [1700000003.0],
                },
            ],
        },
    ),
    "StateChanged_ok": ("StateChanged", {"header": HEADER, "state": "succeeded", "traceback": None}),
    "StateChanged_tb": ("StateChanged", {"header": HEADER, "state": "failed", "traceback": "Traceback: boom"}),
    "ArtifactChunk": (
        "ArtifactChunk",
        {"header": HEADER, "sha256": "ab" * 32, "offset": 0, "size": 4, "data": b"\x00\x01\xfe\xff"},
    ),
    "ExperimentCreated": (
        "ExperimentCreated",
        {
            "header": HEADER,
            "project": "acme/sandbox",
            "short_id": "SAN-1",
            "number": 1,
            "name": "run",
            "description": "d",
            "owner": "alice",
            "hostname": "node-1",
            "params": [{"name": "lr", "value": "0.1", "type": "double"}],
            "properties": {"k": "v"},
            "tags": ["a", "b"],
            "system": {"python": "3.11.0"},
        },
    ),
}

GOLDEN_HEX: dict[str, str] = {
    "PropertySet": (
        "c3018db34ab880643c2c4030313233343536373839616263646566303132333435363738396162636465664831313131"
        "313131312d323232322d333333332d343434342d35353535353535353535353540666564636261393837363534333231"
        "30666564636261393837363534333231300e00002040fc54d9410c6e6f64652d31a442046c720a302e303031"
    ),
    "NumericPoints": (
        "c30140ad6f4e3297a1644030313233343536373839616263646566303132333435363738396162636465664831313131"
        "313131312d323232322d333333332d343434342d35353535353535353535353540666564636261393837363534333231"
        "30666564636261393837363534333231300e00002040fc54d9410c6e6f64652d31a44202086c6f737308757365720006"
        "0000000000000000000000000000f03f00000000000000400006000000000000f83f000000000000e83f000000000000"
        "d0bf000600000040fc54d94100004040fc54d94100008040fc54d9410000"
    ),
    "TextPoints": (
        "c3014f1993533c42fcf44030313233343536373839616263646566303132333435363738396162636465664831313131"
        "313131312d323232322d333333332d343434342d35353535353535353535353540666564636261393837363534333231"
        "30666564636261393837363534333231300e00002040fc54d9410c6e6f64652d31a442020a6e6f746573087573657202"
        "02000000000000084000020c68c3a96c6c6f00020000c040fc54d9410000"
    ),
    "StateChanged_ok": (
        "c301d435127a49413f854030313233343536373839616263646566303132333435363738396162636465664831313131"
        "313131312d323232322d333333332d343434342d35353535353535353535353540666564636261393837363534333231"
        "30666564636261393837363534333231300e00002040fc54d9410c6e6f64652d31a4420200"
    ),
    "StateChanged_tb": (
        "c301d435127a49413f854030313233343536373839616263646566303132333435363738396162636465664831313131"
        "313131312d323232322d333333332d343434342d35353535353535353535353540666564636261393837363534333231"
        "30666564636261393837363534333231300e00002040fc54d9410c6e6f64652d31a44204021e54726163656261636b3a"
        "20626f6f6d"
    ),
    "ArtifactChunk": (
        "c30154f49a6fca9944444030313233343536373839616263646566303132333435363738396162636465664831313131"
        "313131312d323232322d333333332d343434342d35353535353535353535353540666564636261393837363534333231"
        "30666564636261393837363534333231300e00002040fc54d9410c6e6f64652d31a44280016162616261626162616261"
        "626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261"
        "62616261620008080001feff"
    ),
    "ExperimentCreated": (
        "c301a324157d1c0fd6b84030313233343536373839616263646566303132333435363738396162636465664831313131"
        "313131312d323232322d333333332d343434342d35353535353535353535353540666564636261393837363534333231"
        "30666564636261393837363534333231300e00002040fc54d9410c6e6f64652d31a4421861636d652f73616e64626f78"
        "0a53414e2d31020672756e02640a616c6963650c6e6f64652d3102046c7206302e310c646f75626c650002026b027600"
        "040261026200020c707974686f6e0c332e31312e3000"
    ),
}

#: the 64-bit CRC-64-AVRO fingerprint of each kind's standalone canonical form, as committed
FINGERPRINTS: dict[str, int] = {
    "ExperimentCreated": 0xB8D60F1C7D1524A3,
    "StateChanged": 0x853F41497A1235D4,
    "NumericPoints": 0x64A197324E6FAD40,
    "TextPoints": 0xF4FC423C5393194F,
    "PropertySet": 0x2C3C6480B84AB38D,
    "ArtifactChunk": 0x444499CA6F9AF454,
}


# --- helpers: an independent reading of the spec -------------------------------------------------


def _header_schema() -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / "expstream.Header.avsc").read_text())


def _inline_header(node: Any, header: dict[str, Any]) -> Any:
    """The schema with the Header written out where it is referenced: a standalone writer schema."""
    if node == "expstream.Header":
        return header
    if isinstance(node, dict):
        return {k: _inline_header(v, header) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_header(v, header) for v in node]
    return node


def _standalone(raw: dict[str, Any]) -> dict[str, Any]:
    return _inline_header(raw, _header_schema())


def _current_raw(kind: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"expstream.{kind}.avsc").read_text())


def _canonical(raw: dict[str, Any]) -> str:
    return to_parsing_canonical_form(parse_schema(_standalone(raw)))


_EMPTY = 0xC15D213AA4D7A795


def _crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO as the Avro specification writes it out (Rabin fingerprint)."""
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY if fp & 1 else 0)
        table.append(fp)
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def _plain(value: Any) -> Any:
    """A decoded event with its numpy columns as lists, to compare with literals."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _message(raw: dict[str, Any], record: dict[str, Any]) -> bytes:
    """A single-object message written by hand with ``raw`` as the writer schema."""
    parsed = parse_schema(_standalone(raw))
    out = io.BytesIO()
    out.write(b"\xc3\x01")
    out.write(_crc64_avro(_canonical(raw).encode()).to_bytes(8, "little"))
    fastavro.schemaless_writer(out, parsed, record)
    return out.getvalue()


# --- golden bytes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(GOLDEN_RECORDS))
def test_encoding_matches_the_committed_bytes(case: str) -> None:
    kind, record = GOLDEN_RECORDS[case]
    golden = bytes.fromhex(GOLDEN_HEX[case])
    assert schemas.encode(kind, record).hex() == golden.hex()
    assert _plain(schemas.decode(golden)) == (kind, record)


@pytest.mark.parametrize("case", sorted(GOLDEN_RECORDS))
def test_frame_is_magic_then_little_endian_crc64_of_the_canonical_form(case: str) -> None:
    kind, _ = GOLDEN_RECORDS[case]
    golden = bytes.fromhex(GOLDEN_HEX[case])
    assert golden[:2] == b"\xc3\x01"
    canonical = _canonical(_current_raw(kind))
    # the canonical form is standalone: the Header is part of what the fingerprint names
    assert '"name":"expstream.Header","type":"record"' in canonical
    by_fastavro = bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))  # the spec's byte order
    assert by_fastavro == _crc64_avro(canonical.encode()).to_bytes(8, "little")
    assert _crc64_avro(canonical.encode()) == FINGERPRINTS[kind]
    assert golden[2:10] == by_fastavro == FINGERPRINTS[kind].to_bytes(8, "little")
    assert schemas.registry.fingerprint(kind) == golden[2:10]


def test_crc64_avro_reference_matches_the_spec_vectors_and_fastavro() -> None:
    # values of apache/avro share/test/data/schema-tests.txt (signed longs there)
    assert _crc64_avro(b'"null"') == 7195948357588979594
    assert _crc64_avro(b'"int"') == 8247732601305521295
    assert _crc64_avro(b'"string"') == -8142146995180207161 % 2**64
    # the single-object header of "int" as Avro's own tests pin it: the fingerprint little-endian
    assert b"\xc3\x01" + _crc64_avro(b'"int"').to_bytes(8, "little") == bytes.fromhex("c3018f5c393f1ad57572")
    for text in ('"null"', '"int"', '{"type":"array","items":"string"}', '{"name":"a.B","type":"fixed","size":4}'):
        assert _crc64_avro(text.encode()).to_bytes(8, "little") == bytes.fromhex(fingerprint(text, "CRC-64-AVRO"))


def test_a_header_change_changes_every_fingerprint_so_old_messages_are_refused_not_misread(tmp_path: Path) -> None:
    folder = tmp_path / "schemas"
    folder.mkdir()
    for path in SCHEMA_DIR.glob("*.avsc"):
        shutil.copy(path, folder / path.name)
    header = _header_schema()
    header["fields"].insert(1, {"name": "zone", "type": "string", "default": ""})
    (folder / "expstream.Header.avsc").write_text(json.dumps(header))
    changed = schemas.Registry(folder)
    for kind in schemas.KINDS:
        assert changed.fingerprint(kind) != schemas.registry.fingerprint(kind), kind
    with pytest.raises(EventDecodeError, match="unknown writer schema fingerprint"):
        changed.decode(bytes.fromhex(GOLDEN_HEX["PropertySet"]))


# --- every kind round-trips -----------------------------------------------------------------------


def _valid_records() -> dict[str, dict[str, Any]]:
    h = HEADER
    numeric = {
        "channel": "loss",
        "namespace": "user",
        "generation": 2,
        "xs": [1.0, 2.0],
        "ys": [0.5, -1e300],
        "ts": [1.5, 2.5],
    }
    return {
        "ExperimentCreated": GOLDEN_RECORDS["ExperimentCreated"][1],
        "ExperimentIdentified": {"header": h, "project": "acme/sandbox", "short_id": "SAN-1", "number": 1},
        "StateChanged": {"header": h, "state": "aborted", "traceback": "tb ✓"},
        "Heartbeat": {"header": h},
        "NumericPoints": {
            "header": h,
            "series": [numeric, {**numeric, "channel": "acc", "xs": [], "ys": [], "ts": []}],
        },
        "TextPoints": {
            "header": h,
            "series": [
                {
                    "channel": "log",
                    "namespace": "system",
                    "generation": 0,
                    "xs": [1.0],
                    "ys": ["line\nwith ünïcode"],
                    "ts": [3.0],
                }
            ],
        },
        "ImagePoints": {
            "header": h,
            "series": [
                {
                    "channel": "img",
                    "namespace": "user",
                    "generation": 0,
                    "xs": [1.0, 2.0],
                    "ts": [1.0, 2.0],
                    "names": ["a.png", None],
                    "descriptions": [None, "second"],
                    "sha256s": ["0" * 64, "1" * 64],
                    "sizes": [10, 20],
                },
            ],
        },
        "ChannelReset": {"header": h, "channel": "loss", "namespace": "user", "type": "numeric", "generation": 3},
        "TagsAdded": {"header": h, "tags": ["x", "y"]},
        "TagsRemoved": {"header": h, "tags": ["x"]},
        "PropertySet": {"header": h, "key": "k", "value": "v'\"\\;"},
        "PropertyRemoved": {"header": h, "key": "k"},
        "ArtifactChunk": {"header": h, "sha256": "f" * 64, "offset": 8, "size": 16, "data": bytes(range(8))},
        "ArtifactCommitted": {"header": h, "path": "model/weights.bin", "sha256": "f" * 64, "size": 16},
        "ArtifactDeleted": {"header": h, "path": "model"},
        "SourceFiles": {"header": h, "files": [{"path": "train.py", "sha256": "e" * 64, "size": 3, "mode": 0o644}]},
    }


def test_valid_records_cover_every_kind() -> None:
    assert set(_valid_records()) == set(schemas.KINDS)


@pytest.mark.parametrize("kind", schemas.KINDS)
def test_decode_inverts_encode_for_every_kind(kind: str) -> None:
    record = _valid_records()[kind]
    message = schemas.encode(kind, record)
    assert message[:2] == schemas.MAGIC
    assert message[2:10] == schemas.registry.fingerprint(kind)
    assert _plain(schemas.decode(message)) == (kind, record)


def test_every_kind_has_its_own_fingerprint() -> None:
    assert len({schemas.registry.fingerprint(kind) for kind in schemas.KINDS}) == len(schemas.KINDS)


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"\xc3",
        b"\xc3\x01",
        b"\xc3\x01\x00\x00\x00",
        b"garbage garbage garbage",
        b"\x00" * 64,
        b"\xc3\x02" + bytes.fromhex(GOLDEN_HEX["PropertySet"])[2:],
        b'{"key": "lr"}',
    ],
    ids=["empty", "one-byte", "magic-only", "short-fingerprint", "text", "zeros", "wrong-magic-version", "json"],
)
def test_garbage_raises_event_decode_error(message: bytes) -> None:
    with pytest.raises(EventDecodeError):
        schemas.decode(message)


@pytest.mark.parametrize("case", sorted(GOLDEN_RECORDS))
def test_garbage_body_after_a_known_fingerprint_raises_event_decode_error(case: str) -> None:
    frame = bytes.fromhex(GOLDEN_HEX[case])[:10]
    for body in (b"\xff" * 40, b"\x00" * 40, bytes(range(256)), b"\x01"):
        with pytest.raises(EventDecodeError):
            schemas.decode(frame + body)


@pytest.mark.parametrize("case", sorted(GOLDEN_RECORDS))
def test_every_truncation_raises_event_decode_error(case: str) -> None:
    golden = bytes.fromhex(GOLDEN_HEX[case])
    for n in range(len(golden)):
        with pytest.raises(EventDecodeError):
            schemas.decode(golden[:n])


def test_unknown_fingerprint_raises_event_decode_error() -> None:
    golden = bytes.fromhex(GOLDEN_HEX["PropertySet"])
    unknown = golden[:2] + bytes(b ^ 0x5A for b in golden[2:10]) + golden[10:]
    with pytest.raises(EventDecodeError, match="unknown writer schema fingerprint"):
        schemas.decode(unknown)


@pytest.mark.parametrize("extra", [b"\x00", b"\xff" * 3, None], ids=["zero", "ff", "second-message"])
def test_trailing_bytes_raise_event_decode_error(extra: bytes | None) -> None:
    golden = bytes.fromhex(GOLDEN_HEX["StateChanged_ok"])
    with pytest.raises(EventDecodeError, match="trailing bytes"):
        schemas.decode(golden + (golden if extra is None else extra))


def test_a_huge_array_count_is_refused_quickly() -> None:
    golden = bytes.fromhex(GOLDEN_HEX["NumericPoints"])
    header_end = golden.index(bytes.fromhex("a442")) + 2  # pid 4242 is the header's last field
    huge = (2**62 - 1) << 1  # zig-zag varint of a block count far beyond the message
    varint = bytearray()
    while huge > 0x7F:
        varint.append((huge & 0x7F) | 0x80)
        huge >>= 7
    varint.append(huge)
    with pytest.raises(EventDecodeError):
        schemas.decode(golden[:header_end] + bytes(varint) + b"\x02a")


# --- evolution --------------------------------------------------------------------------------------


def _state_changed_v1() -> dict[str, Any]:
    """StateChanged as an older producer wrote it: before ``traceback`` existed."""
    raw = _current_raw("StateChanged")
    raw["fields"] = [f for f in raw["fields"] if f["name"] != "traceback"]
    assert [f["name"] for f in raw["fields"]] == ["header", "state"]
    return raw


def test_an_older_writer_schema_is_resolved_to_the_current_one() -> None:
    old = _state_changed_v1()
    message = _message(old, {"header": HEADER, "state": "failed"})
    assert message[2:10] != schemas.registry.fingerprint("StateChanged")
    with pytest.raises(EventDecodeError, match="unknown writer schema fingerprint"):
        schemas.decode(message)  # the shared registry was never taught this version

    registry = schemas.Registry()
    registry.add_version(old)
    kind, record = registry.decode(message)
    assert (kind, record) == ("StateChanged", {"header": HEADER, "state": "failed", "traceback": None})
    # the current version still reads as before next to the old one
    assert registry.decode(bytes.fromhex(GOLDEN_HEX["StateChanged_tb"])) == GOLDEN_RECORDS["StateChanged_tb"]
    # and the resolved record materializes like a current one
    batch = Materializer()
    batch.add(kind, record)
    states = batch.columns()["states"]
    assert list(states["state"]) == ["failed"]
    assert list(states["traceback"]) == [""]


def test_a_writer_lacking_a_field_the_reader_needs_is_refused_cleanly() -> None:
    old = _current_raw("PropertySet")
    old["fields"] = [f for f in old["fields"] if f["name"] != "value"]  # current 'value' has no default
    registry = schemas.Registry()
    registry.add_version(old)
    with pytest.raises(EventDecodeError, match="PropertySet"):
        registry.decode(_message(old, {"header": HEADER, "key": "lr"}))


def test_an_enum_symbol_the_reader_does_not_know_is_refused_cleanly() -> None:
    newer = _current_raw("StateChanged")
    newer["fields"][1]["type"]["symbols"] = [*newer["fields"][1]["type"]["symbols"], "paused"]
    registry = schemas.Registry()
    registry.add_version(newer)
    with pytest.raises(EventDecodeError, match="StateChanged"):
        registry.decode(_message(newer, {"header": HEADER, "state": "paused", "traceback": None}))
    # symbols both sides know still resolve through the same writer schema
    assert registry.decode(_message(newer, {"header": HEADER, "state": "running", "traceback": None})) == (
        "StateChanged",
        {"header": HEADER, "state": "running", "traceback": None},
    )
