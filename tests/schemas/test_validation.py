"""The meaning of an event (schemas/validation.py): what the producer writes passes, poison does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from expstream import schemas
from expstream.config import Settings
from expstream.eventlog.memory import MemoryLog
from expstream.exceptions import EventDecodeError, EventValidationError
from expstream.producer.transports.memory import MemoryTransport
from expstream.producer.writer import Writer
from expstream.schemas.validation import _RULES, validate
from tests.consumers import poison

E = "0a0a0a0a-0000-4000-8000-000000000001"


def test_every_kind_has_rules_and_an_unknown_kind_is_refused() -> None:
    assert set(_RULES) == set(schemas.KINDS)
    with pytest.raises(EventValidationError, match="unknown event kind 'Bogus'"):
        validate("Bogus", {"header": poison.header(E)})


def test_what_the_producer_writes_passes(tmp_path: Path) -> None:
    log = MemoryLog(partitions=1)
    writer = Writer(MemoryTransport(log), Settings(home=tmp_path))
    try:
        stream = writer.open_stream(E)
        stream.log_metric("loss", None, 0.5, None)
        stream.log_metric("loss", 3.0, 0.25, 1_700_000_000.0)
        stream.log_text("notes", None, "a line ✓", None)
    finally:
        writer.close()
    kinds = []
    for record in log.read("expstream.events", 0, 0, 100):
        kind, event = schemas.decode(record.value)
        validate(kind, event)
        kinds.append(kind)
    assert {"NumericPoints", "TextPoints"} <= set(kinds)


def test_a_valid_hand_made_event_of_every_shape_passes() -> None:
    h = poison.header(E)
    validate("NumericPoints", poison.numeric(E, [0.0, 1.0], [1.0, 2.0]))
    validate("TagsAdded", {"header": h, "tags": ["t" * 128]})
    validate("StateChanged", {"header": h, "state": "failed", "traceback": "Traceback ..."})
    validate("ArtifactChunk", {"header": h, "sha256": "a" * 64, "offset": 0, "size": 3, "data": b"abc"})


@pytest.mark.parametrize("item", poison.CATALOGUE, ids=lambda p: p.name)
def test_every_poison_is_refused_before_any_sink(item: poison.Poison) -> None:
    """Each is refused by the decoder, the validator or (a path) the materializer's own check, with
    an EventDecodeError: the runner dead-letters it and no row of it is written."""
    from expstream.consumers.materializer import Materializer

    with pytest.raises(EventDecodeError) as caught:
        kind, event = schemas.decode(item.build(E))
        validate(kind, event)
        Materializer().add(kind, event)
    assert item.reason in str(caught.value).lower()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"event_id": ""}, "header.event_id is empty"),
        ({"session_id": "s" * 65}, "longer than 64"),
        ({"session_id": "a b"}, "characters an id never has"),
        ({"ts": -1.0}, "before 1970"),
        ({"host": "h\x00"}, "control characters"),
        ({"pid": 1 << 31}, "header.pid"),
    ],
)
def test_header_rules(change: dict[str, object], problem: str) -> None:
    with pytest.raises(EventValidationError, match=problem):
        validate("Heartbeat", {"header": poison.header(E) | change})


def test_image_and_identity_rules() -> None:
    h = poison.header(E)
    series = {"channel": "c", "namespace": "user", "generation": 0, "xs": [1.0], "ts": [1.0], "names": [None],
              "descriptions": ["d"], "sha256s": ["nope"], "sizes": [1]}  # fmt: skip
    with pytest.raises(EventValidationError, match="sha256"):
        validate("ImagePoints", {"header": h, "series": [series]})
    with pytest.raises(EventValidationError, match="not <KEY>-2"):
        validate("ExperimentIdentified", {"header": h, "project": "a/b", "short_id": "B-3", "number": 2})
    with pytest.raises(EventValidationError, match="namespace/name"):
        validate("ExperimentIdentified", {"header": h, "project": "ab", "short_id": "AB-2", "number": 2})
