"""Nothing ever waits behind an event too large to deliver: limits at the call, batches cut by bytes.

Run on both backends: the limits are the same (a log written embedded can be replayed into Kafka).
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import pytest

import expstream
from expstream import schemas
from expstream.config import Settings
from expstream.eventlog.records import EVENTS
from expstream.exceptions import EventTooLarge
from tests.conftest import QUIET

LIMIT = 4 << 20  # EXPSTREAM_MAX_EVENT_BYTES by default


def _large_and_many(exp: expstream.Experiment) -> None:
    with pytest.raises(EventTooLarge, match="nothing of this call was recorded"):
        exp.log_text("notes", "x" * (10 << 20))  # 10 MB in one point
    with pytest.raises(EventTooLarge):
        exp.log_text("notes", "é" * (3 << 20))  # 6 MB of UTF-8 in 3 M characters
    with pytest.raises(EventTooLarge):
        exp.log_image("pictures", _png(), image_name="n" * (5 << 20))
    for x in range(10_000):  # 20 MB of text in what would be one batch of 10,000 points
        exp.log_text("lines", x, f"{x:06d}" + "y" * 2042)
    exp.log_text("notes", "after the large ones")
    exp.log_metric("loss", 1.5)


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, format="PNG")
    return out.getvalue()


def test_limits_embedded(home: Path) -> None:
    exp = expstream.init("acme/sandbox").create_experiment(name="sizes", **QUIET)
    _large_and_many(exp)
    exp.wait()
    _assert_read_back(exp)


def _assert_read_back(exp: expstream.Experiment) -> None:
    assert exp.get_numeric_channels_values("loss")["loss"].tolist() == [1.5]
    logs = exp.get_logs()
    assert set(logs) == {"lines", "notes", "loss"}  # the refused image left no log behind
    assert logs["notes"].y == "after the large ones"  # the refused points were never recorded
    texts = _text_points(exp, "substring(y, 1, 6) AS head, length(y) AS n", "user", "lines")
    assert texts["head"].tolist() == [f"{x:06d}" for x in range(10_000)]  # all 10,000, once, in order
    assert set(texts["n"]) == {2048}


def _text_points(exp: expstream.Experiment, columns: str, namespace: str, channel: str):  # type: ignore[no-untyped-def]
    """``columns`` of one text log's points in x order, read after the tables caught up."""
    reader = exp._backend.read()
    reader.refresh()
    return reader.tables.query_df(
        f"SELECT {columns} FROM points_text FINAL WHERE experiment_id = {{e:String}} "
        "AND namespace = {ns:String} AND channel = {ch:String} ORDER BY x",
        {"e": exp.internal_id, "ns": namespace, "ch": channel},
    )


def test_creation_too_large_takes_no_number(home: Path) -> None:
    project = expstream.init("acme/sandbox")
    with pytest.raises(EventTooLarge, match="no experiment was created"):
        project.create_experiment(name="big", description="d" * (5 << 20), **QUIET)
    with pytest.raises(EventTooLarge):
        project.create_experiment(name="big", params={f"p{i}": "v" * 1000 for i in range(5000)}, **QUIET)
    exp = project.create_experiment(name="small", **QUIET)
    assert exp.id == "SAN-1"
    assert [e.id for e in project.get_experiments()] == ["SAN-1"]


def test_captured_line_too_large_is_truncated(home: Path) -> None:
    exp = expstream.init("acme/sandbox").create_experiment(name="prints", **{**QUIET, "upload_stdout": True})
    exp._backend.writer.flush()
    exp._stream.append_system("stdout", "text", 0.0, "z" * (6 << 20), time.time())  # what capture appends
    exp._stream.append_system("stdout", "text", 1.0, "the line after", time.time())
    exp.stop()
    lines = _text_points(exp, "x, length(y) AS n, endsWith(y, 'than one event may be]') AS cut", "system", "stdout")
    assert lines["x"].tolist() == [0.0, 1.0]
    assert lines["cut"].tolist() == [1, 0]
    assert 1 << 20 < lines["n"][0] < LIMIT


def test_limits_distributed(cluster: Settings, consumer: object) -> None:
    exp = expstream.init("acme/sandbox").create_experiment(name="sizes", **QUIET)
    _large_and_many(exp)
    exp.sync(timeout=120)
    _assert_read_back(exp)


def test_broker_refusing_an_event_does_not_block_the_rest(
    cluster: Settings, consumer: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Topics made elsewhere with a small max.message.bytes: the large event is set aside, the rest flows."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    from expstream.eventlog.kafka import kafka_options, physical_topic

    admin = KafkaAdminClient(**kafka_options(cluster))  # the consumer made the topics: shrink them
    small = {"max.message.bytes": str(300_000)}
    admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, physical_topic(cluster, EVENTS), small)])
    admin.close()
    exp = expstream.init("acme/sandbox").create_experiment(name="small topics", **QUIET)
    noise = base64.b64encode(os.urandom(750_000)).decode()  # 1 MB that compression cannot shrink enough
    exp.log_text("notes", noise)  # fits EXPSTREAM_MAX_EVENT_BYTES, not the topic
    for x in range(100):
        exp.log_metric("loss", x, x / 2.0)
    exp.sync(timeout=120)  # returns: nothing waits behind the refused event
    assert exp.get_numeric_channels_values("loss")["loss"].tolist() == [x / 2.0 for x in range(100)]
    aside = Path(cluster.home) / "undeliverable"
    notes = [json.loads(p.read_text()) for p in aside.glob("*.json")]
    assert len(notes) == 1 and notes[0]["topic"] == EVENTS and "max.message.bytes" in notes[0]["reason"]
    kind, event = schemas.decode(next(aside.glob("*.avro")).read_bytes())
    assert kind == "TextPoints" and event["series"][0]["ys"] == [noise]
