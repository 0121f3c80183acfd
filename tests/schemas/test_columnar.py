"""The numpy NumericPoints codec: byte for byte what fastavro writes, and it reads any Avro writer."""

from __future__ import annotations

import io
import math
from typing import Any

import fastavro
import numpy as np
import pytest

from expstream import schemas
from expstream.exceptions import EventDecodeError

HEADER: dict[str, Any] = {
    "event_id": "e" * 32,
    "experiment_id": "11111111-2222-3333-4444-555555555555",
    "session_id": "s" * 32,
    "seq": 123456789012,
    "ts": 1.7e9,
    "host": "nöde-1",
    "pid": 99,
}


def _by_fastavro(record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    out.write(schemas.MAGIC + schemas.registry.fingerprint("NumericPoints"))
    fastavro.schemaless_writer(out, schemas.registry.schema("NumericPoints"), record)
    return out.getvalue()


def _series(n: int, channel: str = "loss", generation: int = 0, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "channel": channel,
        "namespace": "user",
        "generation": generation,
        "xs": [float(i) for i in range(n)],
        "ys": rng.normal(size=n).tolist(),
        "ts": (1.7e9 + rng.random(n)).tolist(),
    }


CASES = {
    "no series": [],
    "one empty series": [_series(0)],
    "one point": [_series(1)],
    "many points": [_series(10_000)],
    "several series": [_series(3, "a"), _series(0, "b"), _series(200, "ç/é 📉", generation=7)],
    "extreme values": [
        {
            **_series(6, generation=(1 << 31) - 1),
            "ys": [math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308, -1.5],
        }
    ],
    "negative generation": [_series(2, generation=-(1 << 31))],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_encoding_is_byte_identical_to_fastavro(case: str) -> None:
    record = {"header": HEADER, "series": CASES[case]}
    assert schemas.encode("NumericPoints", record) == _by_fastavro(record)


@pytest.mark.parametrize("case", sorted(CASES))
def test_numpy_columns_encode_like_lists(case: str) -> None:
    record = {"header": HEADER, "series": CASES[case]}
    as_arrays = {
        "header": HEADER,
        "series": [{**s, **{c: np.asarray(s[c]) for c in ("xs", "ys", "ts")}} for s in CASES[case]],
    }
    assert schemas.encode("NumericPoints", as_arrays) == _by_fastavro(record)


def test_strided_columns_of_one_table_encode_correctly() -> None:
    table = np.arange(30, dtype=np.float64).reshape(10, 3)  # what the producer hands over: column views
    series = {"channel": "m", "namespace": "user", "generation": 0, "xs": table[:, 0], "ys": table[:, 1]}
    series["ts"] = table[:, 2]
    message = schemas.encode("NumericPoints", {"header": HEADER, "series": [series]})
    _, record = schemas.decode(message)
    assert record["series"][0]["ys"].tolist() == list(range(1, 30, 3))


@pytest.mark.parametrize("case", sorted(CASES))
def test_decoding_matches_fastavro(case: str) -> None:
    message = _by_fastavro({"header": HEADER, "series": CASES[case]})
    kind, record = schemas.decode(message)
    expected = fastavro.schemaless_reader(io.BytesIO(message[10:]), schemas.registry.schema("NumericPoints"), None)
    assert kind == "NumericPoints"
    assert record["header"] == expected["header"]
    assert len(record["series"]) == len(expected["series"])
    for got, want in zip(record["series"], expected["series"], strict=True):
        for column in ("xs", "ys", "ts"):
            assert got[column].dtype == np.float64
            np.testing.assert_array_equal(got[column], np.asarray(want[column], dtype=np.float64))
        assert {k: got[k] for k in ("channel", "namespace", "generation")} == {
            k: want[k] for k in ("channel", "namespace", "generation")
        }


def test_decoded_columns_are_read_only_views() -> None:
    message = schemas.encode("NumericPoints", {"header": HEADER, "series": [_series(5)]})
    column = schemas.decode(message)[1]["series"][0]["ys"]
    with pytest.raises(ValueError):
        column[0] = 1.0


def _long(n: int) -> bytes:
    z, out = (n << 1) ^ (n >> 63), bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    return bytes(out + bytes([z]))


def _string(s: str) -> bytes:
    return _long(len(s.encode())) + s.encode()


def test_blocked_arrays_of_other_writers_are_read() -> None:
    """Avro lets a writer split arrays into blocks, and prefix a block with a negative count and its
    byte size (Java's encoders do): all of it must decode."""
    header = io.BytesIO()
    fastavro.schemaless_writer(header, fastavro.parse_schema(_header_schema()), HEADER)
    xs = np.arange(5, dtype="<f8")
    body = bytearray(header.getvalue())
    body += _long(-1) + _long(999)  # series: one item, announced with a negative count and a size
    body += _string("m") + _string("user") + _long(2)
    body += _long(2) + xs[:2].tobytes() + _long(-3) + _long(24) + xs[2:].tobytes() + _long(0)  # xs: two blocks
    body += _long(5) + (xs * 2).tobytes() + _long(0)
    body += _long(5) + (xs * 3).tobytes() + _long(0)
    body += _long(0)
    message = schemas.MAGIC + schemas.registry.fingerprint("NumericPoints") + bytes(body)
    _, record = schemas.decode(message)
    (series,) = record["series"]
    assert (series["channel"], series["generation"]) == ("m", 2)
    assert series["xs"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert series["ts"].tolist() == [0.0, 3.0, 6.0, 9.0, 12.0]


def _header_schema() -> dict[str, Any]:
    import json

    return json.loads((schemas.HERE / "expstream.Header.avsc").read_text())


def test_every_truncation_is_a_decode_error() -> None:
    message = schemas.encode("NumericPoints", {"header": HEADER, "series": [_series(3), _series(2, "b")]})
    for cut in range(10, len(message)):
        with pytest.raises(EventDecodeError):
            schemas.decode(message[:cut])


@pytest.mark.parametrize(
    "tail, reason",
    [
        (b"\x00\x00", "trailing bytes"),
        (b"\x02" + _string("m") + _string("user") + b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", "longer"),
        (b"\x02" + _long(2) + b"\xff\xfe" + _string("user"), "UTF-8"),
        (b"\x02" + _string("m") + _string("user") + _long(1 << 40), "not an Avro int"),
    ],
)
def test_malformed_bodies_are_decode_errors(tail: bytes, reason: str) -> None:
    header = io.BytesIO()
    fastavro.schemaless_writer(header, fastavro.parse_schema(_header_schema()), HEADER)
    message = schemas.MAGIC + schemas.registry.fingerprint("NumericPoints") + header.getvalue() + tail
    with pytest.raises(EventDecodeError, match=reason):
        schemas.decode(message)


@pytest.mark.parametrize(
    "change",
    [{"generation": 1 << 31}, {"generation": 1.5}, {"ys": [[1.0], [2.0]]}, {"xs": ["a", "b"]}],
)
def test_values_outside_the_schema_are_refused_when_encoding(change: dict[str, Any]) -> None:
    series = {**_series(2), **change}
    with pytest.raises((TypeError, ValueError)):
        schemas.encode("NumericPoints", {"header": HEADER, "series": [series]})
