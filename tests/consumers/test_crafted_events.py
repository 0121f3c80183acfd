"""Events crafted by anything that can write to the log, on both backends: the embedded log and the Kafka topics.

A crafted event is written straight into the store (the local log's partitions, the real Kafka topics),
past every check of the client. What must hold, exactly: the genuine upload's bytes are intact, the
crafted events are dead-lettered (and counted), no file is placed or named outside the experiment,
and downloads write nothing outside ``destination_dir`` and never through a link already there.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import expstream
from expstream import schemas
from expstream.config import Settings
from expstream.consumers.sinks.chdb import ChdbTables
from expstream.consumers.warm.tables import WarmTables
from expstream.eventlog.records import BLOBS, EVENTS

CHUNK = 1024
GENUINE = hashlib.sha512(b"the model").digest() * 40  # 2,560 bytes: three chunks of 1 KiB, the last short
NOTES = b"genuine notes\n"


@dataclass
class Deployment:
    """One backend: how to write raw messages into its log and how many records it dead-lettered."""

    name: str
    inject: Callable[[str, str, list[bytes]], None]
    dead_letters: Callable[[], list[bytes]]


def _embedded(home: Path) -> Deployment:
    from expstream.eventlog.local_log import LocalLog
    from expstream.producer.transports.local_log import LocalLogTransport

    def inject(topic: str, key: str, messages: list[bytes]) -> None:
        transport = LocalLogTransport(LocalLog(home / "log"))
        try:
            transport.send(topic, key, messages)
            transport.flush(30)
        finally:
            transport.close()

    def dead_letters() -> list[bytes]:
        folder = home / "dead-letter"
        return [p.read_bytes() for p in sorted(folder.glob("*.bin"))] if folder.exists() else []

    return Deployment("embedded", inject, dead_letters)


def _cluster(settings: Settings) -> Deployment:
    from kafka import KafkaConsumer, KafkaProducer

    from expstream.eventlog.kafka import kafka_options, physical_topic

    def inject(topic: str, key: str, messages: list[bytes]) -> None:
        producer = KafkaProducer(**kafka_options(settings))
        try:
            for message in messages:
                producer.send(physical_topic(settings, topic), key=key.encode(), value=message).get(timeout=30)
            producer.flush()
        finally:
            producer.close()

    def dead_letters() -> list[bytes]:
        consumer = KafkaConsumer(
            physical_topic(settings, "expstream.dead-letter"),
            **kafka_options(settings),
            auto_offset_reset="earliest",
            consumer_timeout_ms=5000,
        )
        try:
            return [m.value for m in consumer]
        finally:
            consumer.close()

    return Deployment("cluster", inject, dead_letters)


@pytest.fixture(params=["embedded", "cluster"])
def deployment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    if request.param == "embedded":
        home = request.getfixturevalue("home")
        made = _embedded(home)
    else:
        settings = request.getfixturevalue("cluster")
        request.getfixturevalue("consumer")
        made = _cluster(settings)
    monkeypatch.setenv("EXPSTREAM_CHUNK_BYTES", str(CHUNK))
    yield made


class Crafter:
    """Hand-made events of a hostile writer: valid Avro, any content."""

    def __init__(self, experiment_id: str) -> None:
        self.experiment_id = experiment_id
        self.session_id = uuid.uuid4().hex
        self.seq = 0

    def __call__(self, kind: str, **fields: Any) -> bytes:
        self.seq += 1
        header = {
            "event_id": uuid.uuid4().hex,
            "experiment_id": self.experiment_id,
            "session_id": self.session_id,
            "seq": self.seq,
            "ts": time.time(),
            "host": "mallory",
            "pid": 666,
        }
        return schemas.encode(kind, {"header": header, **fields})


HOSTILE_PATHS = ["../escape.txt", "/etc/escape.txt", "a/../../escape.txt", "C:\\escape.txt", "..\\escape.txt"]


def test_crafted_chunks_and_paths_lose_nothing_genuine(
    deployment: Deployment, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expstream.init("acme/crafted")
    exp = expstream.create_experiment("victim", upload_source_files=[], send_hardware_metrics=False)
    exp.wait(timeout=60)
    genuine_sha = hashlib.sha256(GENUINE).hexdigest()
    craft = Crafter(exp.internal_id)
    evil = b"E" * len(GENUINE)
    blobs = [
        # one chunk claiming the genuine digest: its bytes do not hash to it
        craft("ArtifactChunk", sha256=genuine_sha, offset=0, size=len(GENUINE), data=evil),
        # a whole crafted chunk set claiming it, in the genuine upload's spans, sent before the genuine one
        *(
            craft("ArtifactChunk", sha256=genuine_sha, offset=o, size=len(GENUINE), data=evil[o : o + CHUNK])
            for o in range(0, len(GENUINE), CHUNK)
        ),
    ]
    deployment.inject(BLOBS, exp.internal_id, blobs)
    events = [craft("ArtifactCommitted", path=path, sha256=genuine_sha, size=len(GENUINE)) for path in HOSTILE_PATHS]
    events.append(craft("ArtifactCommitted", path="sub\\theirs.bin", sha256=genuine_sha, size=len(GENUINE)))
    events.append(
        craft("SourceFiles", files=[{"path": "../../evil.py", "sha256": genuine_sha, "size": 1, "mode": 0o644}])
    )
    deployment.inject(EVENTS, exp.internal_id, events)

    exp.log_artifact(_stream(GENUINE), "model.bin")  # three chunks on the blobs topic, then the commit
    exp.log_artifact(_stream(NOTES), "notes.txt")
    exp.stop()
    exp.sync(timeout=180)

    # dead-lettered, exactly: the one-chunk forgery, the last chunk of the forged set, five hostile paths,
    # the hostile source path; the backslash path is normalized inside the experiment and kept
    letters = _eventually(lambda: deployment.dead_letters(), 8)
    assert sorted(letters) == sorted([blobs[0], blobs[-1], *events[: len(HOSTILE_PATHS)], events[-1]])

    out = tmp_path / "out"
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"not yours")
    out.mkdir()
    (out / "model.bin").symlink_to(outside)  # a link already at the destination is replaced, not written through
    exp.download_artifact("model.bin", str(out))
    assert (out / "model.bin").read_bytes() == GENUINE and not (out / "model.bin").is_symlink()
    assert outside.read_bytes() == b"not yours"
    exp.download_artifacts(destination_dir=str(out))
    with zipfile.ZipFile(out / "output.zip") as archive:
        assert archive.namelist() == ["model.bin", "notes.txt", "sub/theirs.bin"]
        assert archive.read("model.bin") == GENUINE
        assert archive.read("notes.txt") == NOTES
        assert archive.read("sub/theirs.bin") == GENUINE  # it named the genuine digest: the genuine bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "out", "outside.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["model.bin", "output.zip"]
    assert exp.get_properties() == {}  # nothing else came of the crafted events
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("expstream")]


def test_unsafe_paths_already_in_the_store_are_skipped_by_downloads(
    deployment: Deployment, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows written before the consumer checked paths: the safe files are written, the others warned about."""
    expstream.init("acme/crafted")
    exp = expstream.create_experiment("old store", upload_source_files=[], send_hardware_metrics=False)
    exp.log_artifact(_stream(NOTES), "notes.txt")
    exp.stop()
    exp.sync(timeout=180)
    tables = exp._backend.read().tables
    if isinstance(tables, WarmTables):  # the query side only reads: write the old rows into chdb itself
        tables = ChdbTables(exp._backend.settings.home.absolute() / "chdb")
    sha = hashlib.sha256(NOTES).hexdigest()
    unsafe = ["../escape.txt", "/abs/escape.txt", "a\\..\\..\\escape.txt", "a//b.txt", "x/../../escape.txt"]
    n = len(unsafe)
    with tables.hold():
        tables.insert(
            "artifacts",
            {
                "experiment_id": [exp.internal_id] * n, "path": unsafe, "sha256": [sha] * n, "size": [len(NOTES)] * n,
                "deleted": [0] * n, "ts": [time.time()] * n, "session_id": ["old"] * n, "seq": list(range(1, n + 1)),
            },
        )  # fmt: skip
        tables.insert(
            "sources",
            {
                "experiment_id": [exp.internal_id] * 2, "path": ["../../evil.py", "train.py"], "sha256": [sha] * 2,
                "size": [len(NOTES)] * 2, "mode": [0o644] * 2, "ts": [time.time()] * 2,
            },
        )  # fmt: skip
    tables.close()  # the warm materializer takes the folder back
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="expstream"):
        exp.download_artifacts(destination_dir=str(out))
        exp.download_sources(destination_dir=str(out))
    with zipfile.ZipFile(out / "output.zip") as archive:
        assert archive.namelist() == ["notes.txt"]
        assert archive.read("notes.txt") == NOTES
    with zipfile.ZipFile(out / "source.zip") as archive:
        assert archive.namelist() == ["train.py"]
    skipped = [r.getMessage() for r in caplog.records if "is not downloaded" in r.getMessage()]
    assert len(skipped) == n + 1
    assert all(repr(p) in " ".join(skipped) for p in [*unsafe, "../../evil.py"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "out"]
    assert sorted(p.name for p in out.iterdir()) == ["output.zip", "source.zip"]


def _stream(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def _eventually(read: Callable[[], list[bytes]], count: int, timeout: float = 60.0) -> list[bytes]:
    """Dead letters are written by the consumer after the data it wrote: wait for ``count`` of them."""
    deadline = time.monotonic() + timeout
    got = read()
    while len(got) < count and time.monotonic() < deadline:
        time.sleep(0.5)
        got = read()
    return got


def test_the_genuine_blob_key_holds_the_genuine_bytes_only(deployment: Deployment) -> None:
    """A forged single chunk sent *after* the genuine blob never replaces it."""
    expstream.init("acme/crafted")
    exp = expstream.create_experiment("late forgery", upload_source_files=[], send_hardware_metrics=False)
    exp.log_artifact(_stream(NOTES), "notes.txt")
    exp.sync(timeout=180)
    sha = hashlib.sha256(NOTES).hexdigest()
    craft = Crafter(exp.internal_id)
    forged = craft("ArtifactChunk", sha256=sha, offset=0, size=len(NOTES), data=b"X" * len(NOTES))
    deployment.inject(BLOBS, exp.internal_id, [forged])
    exp.stop()
    exp.sync(timeout=180)
    assert _eventually(lambda: deployment.dead_letters(), 1) == [forged]
    assert exp._backend.read().blob(sha) == NOTES
