"""The write side of ``Experiment``: tags, properties, log_metric/log_text/log_image, reset_log, artifacts."""

from __future__ import annotations

import io
import logging
import math
import pathlib
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from expstream.backend import StreamBackend
from expstream.exceptions import ArtifactPathError, ChannelDoesNotExist, FileNotFound
from expstream.experiments import Experiment
from expstream.projects import Project

Sync = Callable[..., None]


def _messages(caplog: pytest.LogCaptureFixture, level: int = logging.WARNING) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= level]


def _values(exp: Experiment, name: str) -> list[tuple[float, float]]:
    df = exp.get_numeric_channels_values(name)
    return list(zip(df["x"].tolist(), df[name].tolist(), strict=True))


def _points(backend: StreamBackend, exp: Experiment, table: str, columns: str) -> list[tuple[object, ...]]:
    """Rows of a points table for this experiment (what the API does not expose: timestamps, image blobs)."""
    reader = backend.reader
    with reader.tables.hold():
        reader.refresh()
        df = reader.tables.query_df(
            f"SELECT {columns} FROM {table} FINAL WHERE experiment_id = {{e:String}} ORDER BY channel, x",
            {"e": exp.internal_id},
        )
    return [tuple(row) for row in df.itertuples(index=False)]


def _artifact_listing(exp: Experiment, folder: Path) -> dict[str, bytes]:
    exp.download_artifacts(destination_dir=str(folder))
    with zipfile.ZipFile(folder / "output.zip") as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# --- tags -----------------------------------------------------------------------------------------


def test_tags(exp: Experiment, sync: Sync) -> None:
    assert exp.append_tag("single") is None
    exp.append_tag("several-1", "several-2", "Several-3")
    exp.append_tag(["list-b", "list-a"])
    exp.append_tags("alias")
    exp.append_tags(["alias-list"])
    exp.append_tag("single")  # idempotent
    exp.append_tag(["from-list"], "ignored-extra")  # legacy: a list is the whole set, extras are ignored
    exp.remove_tag("several-2")
    exp.remove_tag("never-there")  # silently ignored
    sync(exp)
    tags = exp.get_tags()
    assert tags == sorted(tags)  # docs/legacy-behaviour.md#tag-order
    assert tags == [
        "Several-3",
        "alias",
        "alias-list",
        "from-list",
        "list-a",
        "list-b",
        "several-1",
        "single",
    ]
    assert exp.get_system_properties()["tags"] == tags


def test_tag_removed_then_added_again(exp: Experiment, sync: Sync) -> None:
    exp.append_tag("t")
    exp.remove_tag("t")
    exp.append_tag("t")
    exp.append_tag("u")
    exp.remove_tag("u")
    sync(exp)
    assert exp.get_tags() == ["t"]


# --- properties -----------------------------------------------------------------------------------


def test_set_and_remove_property(exp: Experiment, sync: Sync) -> None:
    assert exp.set_property("model", "LightGBM") is exp
    exp.set_property("magic-number", 7)
    exp.set_property("list", [1, 2, 3])
    exp.set_property("nested/key", 0.5)
    exp.set_property("model", "XGBoost")  # overwrite
    exp.set_property("gone", "soon")
    assert exp.remove_property("gone") is None
    sync(exp)
    assert exp.get_properties() == {
        "model": "XGBoost",
        "magic-number": "7",
        "list": "[1, 2, 3]",
        "nested/key": "0.5",
    }
    with pytest.raises(KeyError):
        exp.remove_property("gone")
    with pytest.raises(KeyError):
        exp.remove_property("never-set")


def test_remove_property_set_at_creation(project: Project, sync: Sync) -> None:
    exp = project.create_experiment(properties={"a": 1, "b": 2}, upload_source_files=[])
    exp.remove_property("a")
    sync(exp)
    assert exp.get_properties() == {"b": "2"}
    exp.stop()


def test_remove_property_on_a_looked_up_experiment(project: Project, sync: Sync) -> None:
    exp = project.create_experiment(properties={"a": 1}, upload_source_files=[])
    sync(exp)
    (found,) = project.get_experiments(id=exp.id)
    with pytest.raises(KeyError):
        found.remove_property("b")
    found.remove_property("a")
    sync(found)
    assert exp.get_properties() == {}
    exp.stop()


# --- log_metric -----------------------------------------------------------------------------------


def test_log_metric_forms_and_auto_x(exp: Experiment, sync: Sync, reading: StreamBackend) -> None:
    """The first automatic x is 0, later ones last x + 1, also after an explicit x.

    docs/legacy-behaviour.md#automatic-x
    """
    before = time.time()
    exp.log_metric("loss", 0.9)  # x = 0
    exp.log_metric("loss", 0.8)  # x = 1
    exp.log_metric("loss", 10, 0.7)  # explicit
    exp.log_metric("loss", 0.6)  # x = 11
    exp.log_metric("loss", 12.5, 0.5)  # fractional explicit x
    exp.log_metric("loss", 0.4, timestamp=1_600_000_000.25)  # x = 13.5
    exp.log_metric("loss", x=20, y=0.3, timestamp=1_600_000_001)
    exp.log_metric("loss", None, 0.2)  # x=None with y: y is the value, x automatic
    exp.send_metric("loss", 0.1)  # alias
    exp.log_metric("other", 5)  # an int value
    after = time.time()
    sync(exp)
    assert _values(exp, "loss") == [
        (0.0, 0.9),
        (1.0, 0.8),
        (10.0, 0.7),
        (11.0, 0.6),
        (12.5, 0.5),
        (13.5, 0.4),
        (20.0, 0.3),
        (21.0, 0.2),
        (22.0, 0.1),
    ]
    assert _values(exp, "other") == [(0.0, 5.0)]
    stamps = dict(((c, x), ts) for c, x, ts in _points(reading, exp, "points_numeric", "channel, x, ts"))
    assert stamps[("loss", 13.5)] == pytest.approx(1_600_000_000.25, abs=1e-3)
    assert stamps[("loss", 20.0)] == pytest.approx(1_600_000_001, abs=1e-3)
    for key in (("loss", 0.0), ("loss", 10.0), ("other", 0.0)):  # no timestamp: time.time() at the call
        assert before - 0.01 <= stamps[key] <= after + 0.01, key


def test_log_metric_x_not_increasing_is_dropped_with_a_warning(
    exp: Experiment, sync: Sync, caplog: pytest.LogCaptureFixture
) -> None:
    exp.log_metric("acc", 1, 0.1)
    exp.log_metric("acc", 2, 0.2)
    with caplog.at_level(logging.WARNING, logger="expstream"):
        exp.log_metric("acc", 2, 0.25)  # equal: dropped
        exp.log_metric("acc", 1.5, 0.3)  # smaller: dropped
    assert any("acc" in m and "increasing" in m for m in _messages(caplog))
    exp.log_metric("acc", 3, 0.4)
    exp.log_metric("acc", 0.5)  # automatic: 4
    sync(exp)
    assert _values(exp, "acc") == [(1.0, 0.1), (2.0, 0.2), (3.0, 0.4), (4.0, 0.5)]


_NAN_OR_INF_CALLS = [
    (math.nan,),
    (math.inf,),
    (-math.inf,),
    (7, math.nan),
    (math.nan, 0.5),
    (math.inf, 0.5),
    (-math.inf, 0.5),
    (np.float32("nan"),),
    (np.float64("inf"), 0.5),
]


def test_log_metric_nan_or_inf_is_dropped_with_a_warning(
    exp: Experiment, sync: Sync, caplog: pytest.LogCaptureFixture
) -> None:
    names = [f"m{i}" for i in range(len(_NAN_OR_INF_CALLS))]
    for name, args in zip(names, _NAN_OR_INF_CALLS, strict=True):
        exp.log_metric(name, 0, 1.0)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="expstream"):
            assert exp.log_metric(name, *args) is None
        assert any(repr(name) in m for m in _messages(caplog)), (args, caplog.text)
        exp.log_metric(name, 2.0)  # the dropped point took no x
    sync(exp)
    for name in names:
        assert _values(exp, name) == [(0.0, 1.0), (1.0, 2.0)], name


def test_log_metric_accepts_bool_and_numpy_scalars(exp: Experiment, sync: Sync) -> None:
    exp.log_metric("m", True)
    exp.log_metric("m", False)
    exp.log_metric("m", np.float32(0.5))
    exp.log_metric("m", np.float64(1.5))
    exp.log_metric("m", np.int64(3))
    exp.log_metric("m", np.int32(10), np.float16(2.0))
    exp.log_metric("m", np.array(4.25))  # a 0-d array has __float__
    sync(exp)
    assert _values(exp, "m") == [(0.0, 1.0), (1.0, 0.0), (2.0, 0.5), (3.0, 1.5), (4.0, 3.0), (10.0, 2.0), (11.0, 4.25)]
    assert exp.get_numeric_channels_values("m")["m"].dtype == np.float64


# --- log_text -------------------------------------------------------------------------------------


def test_log_text(exp: Experiment, sync: Sync, reading: StreamBackend) -> None:
    exp.log_text("notes", "first")  # x = 0
    exp.log_text("notes", 5, "explicit")
    exp.log_text("notes", float("nan"), "nan x is auto-assigned")  # x = 6, kept
    exp.log_text("notes", float("inf"), "inf x too")  # x = 7
    exp.send_text("notes", "alias")  # x = 8
    exp.log_text("notes", x="keyword", timestamp=1_560_430_912)  # x = 9
    exp.log_text("notes", "")  # empty string is a value
    exp.log_text("notes", "ünïcödé ✓\nsecond line")
    sync(exp)
    rows = _points(reading, exp, "points_text", "x, y, ts")
    assert [(x, y) for x, y, _ in rows] == [
        (0.0, "first"),
        (5.0, "explicit"),
        (6.0, "nan x is auto-assigned"),
        (7.0, "inf x too"),
        (8.0, "alias"),
        (9.0, "keyword"),
        (10.0, ""),
        (11.0, "ünïcödé ✓\nsecond line"),
    ]
    assert rows[5][2] == pytest.approx(1_560_430_912, abs=1e-3)
    log = exp.get_logs()["notes"]
    assert (log.channelType, log.x, log.y, log.lastX) == ("text", 11.0, "ünïcödé ✓\nsecond line", 11.0)


def test_log_text_x_not_increasing_is_dropped(exp: Experiment, sync: Sync, caplog: pytest.LogCaptureFixture) -> None:
    exp.log_text("t", 3, "a")
    with caplog.at_level(logging.WARNING, logger="expstream"):
        exp.log_text("t", 3, "dropped")
    assert any("'t'" in m for m in _messages(caplog))
    exp.log_text("t", "b")
    sync(exp)
    log = exp.get_logs()["t"]
    assert (log.x, log.y) == (4.0, "b")


# --- log_image ------------------------------------------------------------------------------------


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_log_image_kinds(exp: Experiment, sync: Sync, reading: StreamBackend, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    pil = Image.new("RGB", (6, 4), color="red")
    gray = np.linspace(0.0, 1.0, 12).reshape(3, 4)
    rgb = np.full((2, 3, 3), 0.5)
    rgba = np.full((2, 2, 4), 0.25)
    gray3 = np.full((2, 2, 1), 1.0)
    gray_before = gray.copy()
    path = tmp_path / "picture.jpg"
    path.write_bytes(b"\xff\xd8 not really a jpeg, stored as it is")
    figure, axes = pyplot.subplots(figsize=(1, 1))
    axes.plot([1, 2, 3])

    exp.log_image("pics", pil, image_name="pil", description="a red PIL image")  # x = 0
    exp.log_image("pics", gray)
    exp.log_image("pics", 10, rgb, image_name="rgb")
    exp.log_image("pics", rgba)
    exp.log_image("pics", gray3)
    exp.log_image("pics", str(path), image_name="file")
    exp.log_image("pics", pathlib.Path(path))
    exp.log_image("pics", figure, image_name="figure")
    exp.log_image("pics", float("nan"), pil, image_name="nan-x")  # x auto-assigned, kept
    exp.send_image("pics", pil, name="sent", description="via alias")
    pyplot.close(figure)
    # the caller's array is not modified (docs/legacy-behaviour.md#logged-values)
    assert np.array_equal(gray, gray_before)

    sync(exp)
    rows = _points(reading, exp, "points_image", "x, image_name, description, sha256, size")
    assert [(x, name, description) for x, name, description, _, _ in rows] == [
        (0.0, "pil", "a red PIL image"),
        (1.0, "", ""),
        (10.0, "rgb", ""),
        (11.0, "", ""),
        (12.0, "", ""),
        (13.0, "file", ""),
        (14.0, "", ""),
        (15.0, "figure", ""),
        (16.0, "nan-x", ""),
        (17.0, "sent", "via alias"),
    ]
    blobs = [reading.reader.blob(sha) for _, _, _, sha, _ in rows]
    assert [len(b) for b in blobs] == [size for *_, size in rows]
    assert blobs[0] == _png(pil)
    assert blobs[5] == blobs[6] == path.read_bytes()  # a path is stored byte for byte
    decoded = [Image.open(io.BytesIO(b)) for i, b in enumerate(blobs) if i not in (5, 6)]
    assert all(img.format == "PNG" for img in decoded)
    assert Image.open(io.BytesIO(blobs[1])).size == (4, 3)
    assert Image.open(io.BytesIO(blobs[1])).mode == "L"
    assert Image.open(io.BytesIO(blobs[2])).mode == "RGB"
    assert Image.open(io.BytesIO(blobs[3])).mode == "RGBA"
    assert Image.open(io.BytesIO(blobs[4])).mode == "L"
    assert np.asarray(Image.open(io.BytesIO(blobs[1])))[0].tolist() == [0, 23, 46, 69]
    log = exp.get_logs()["pics"]
    assert (log.channelType, log.x, log.lastX) == ("image", 17.0, 17.0)


def test_log_image_over_the_size_limit_is_dropped_with_a_warning(
    exp: Experiment, sync: Sync, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    assert Experiment.IMAGE_SIZE_LIMIT_MB == 15
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * (15 * 1024 * 1024 + 1))
    with caplog.at_level(logging.WARNING, logger="expstream"):
        assert exp.log_image("pics", str(big)) is None
    assert any("15" in m and "limit" in m for m in _messages(caplog)), caplog.text
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="expstream"):
        exp.log_image("pics", str(empty))
    assert _messages(caplog)
    exp.log_image("pics", Image.new("L", (2, 2)), image_name="small")
    sync(exp)
    log = exp.get_logs()["pics"]
    assert (log.x, log.y) == (0.0, "small")  # the dropped images took no x


# --- type clashes and finished experiments --------------------------------------------------------


def test_type_clash_is_dropped_with_a_logged_error(
    exp: Experiment, sync: Sync, caplog: pytest.LogCaptureFixture
) -> None:
    exp.log_metric("num", 1.0)
    exp.log_text("txt", "a")
    exp.log_image("img", Image.new("L", (2, 2)))
    with caplog.at_level(logging.WARNING, logger="expstream"):
        assert exp.log_text("num", "not a number") is None
        assert exp.log_metric("txt", 2.0) is None
        assert exp.log_image("num", Image.new("L", (2, 2))) is None
        assert exp.log_metric("img", 3.0) is None
    errors = _messages(caplog, logging.ERROR)
    for name in ("num", "txt", "img"):
        assert any(repr(name) in m for m in errors), (name, caplog.text)
    exp.log_metric("num", 4.0)
    sync(exp)
    logs = exp.get_logs()
    assert {n: log.channelType for n, log in logs.items()} == {"num": "numeric", "txt": "text", "img": "image"}
    assert _values(exp, "num") == [(0.0, 1.0), (1.0, 4.0)]
    assert (logs["txt"].x, logs["txt"].y) == (0.0, "a")


def test_logging_after_stop_records_nothing_and_warns_once_per_log(
    exp: Experiment, sync: Sync, caplog: pytest.LogCaptureFixture
) -> None:
    exp.log_metric("m", 1.0)
    exp.stop()
    with caplog.at_level(logging.WARNING, logger="expstream"):
        for _ in range(3):
            assert exp.log_metric("m", 2.0) is None
            exp.send_metric("m", 5, 3.0)
            exp.log_metric("new", 1.0)
            exp.log_text("t", "x")
            exp.log_image("i", Image.new("L", (2, 2)))
    warned = _messages(caplog)
    for name in ("m", "new", "t", "i"):
        assert sum(repr(name) in m for m in warned) == 1, (name, warned)
    assert len(warned) == 4
    sync(exp)
    assert list(exp.get_logs()) == ["m"]
    assert _values(exp, "m") == [(0.0, 1.0)]
    assert exp.state == "succeeded"


# --- reset_log ------------------------------------------------------------------------------------


def test_reset_log(exp: Experiment, sync: Sync) -> None:
    for value in (0.5, 0.4, 0.3):
        exp.log_metric("loss", value)
    exp.log_text("notes", 7, "seven")
    sync(exp)
    assert exp.reset_log("loss") is None
    exp.reset_log("notes")
    sync(exp)
    logs = exp.get_logs()
    assert set(logs) == {"loss", "notes"}  # the logs are kept, empty
    loss = logs["loss"]
    assert (loss.channelType, loss.x, loss.y, loss.lastX) == ("numeric", None, None, None)
    assert logs["loss"].id == exp.get_logs()["loss"].id
    values = exp.get_numeric_channels_values("loss")
    assert list(values.columns) == ["x", "loss"] and values.empty
    exp.log_metric("loss", 0.2)  # auto x restarts at 0
    exp.log_metric("loss", 0.1)
    exp.log_text("notes", 1, "again")  # x checks restart too: 1 < 7 is fine now
    sync(exp)
    assert _values(exp, "loss") == [(0.0, 0.2), (1.0, 0.1)]
    assert (exp.get_logs()["notes"].x, exp.get_logs()["notes"].y) == (1.0, "again")
    with pytest.raises(ChannelDoesNotExist):
        exp.reset_log("never-logged")


def test_reset_log_keeps_the_type(exp: Experiment, sync: Sync, caplog: pytest.LogCaptureFixture) -> None:
    exp.log_metric("m", 1.0)
    exp.reset_log("m")
    with caplog.at_level(logging.WARNING, logger="expstream"):
        exp.log_text("m", "text into a numeric log")
    assert _messages(caplog)
    exp.log_metric("m", 2.0)
    sync(exp)
    assert exp.get_logs()["m"].channelType == "numeric"
    assert _values(exp, "m") == [(0.0, 2.0)]


def test_reset_log_of_unflushed_points(exp: Experiment, sync: Sync) -> None:
    exp.log_metric("m", 1.0)
    exp.log_metric("m", 2.0)
    exp.reset_log("m")  # nothing was synced yet
    exp.log_metric("m", 3.0)
    sync(exp)
    assert _values(exp, "m") == [(0.0, 3.0)]


def test_reset_log_on_a_looked_up_experiment(project: Project, sync: Sync) -> None:
    exp = project.create_experiment(upload_source_files=[])
    exp.log_metric("m", 1.0)
    exp.log_metric("m", 2.0)
    sync(exp)
    (found,) = project.get_experiments(id=exp.id)
    with pytest.raises(ChannelDoesNotExist):
        found.reset_log("unknown")
    found.reset_log("m")
    found.log_metric("m", 9.0)
    sync(found)
    assert _values(exp, "m") == [(0.0, 9.0)]
    exp.stop()


# --- artifacts ------------------------------------------------------------------------------------


def test_log_artifact_kinds(exp: Experiment, sync: Sync, tmp_path: Path) -> None:
    model = tmp_path / "model.pkl"
    model.write_bytes(b"\x80\x04 pickled")
    folder = tmp_path / "results"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.csv").write_text("a,b\n1,2\n")
    (folder / "sub" / "b.txt").write_text("b")
    binary = io.BytesIO(b"\x00\x01 binary")
    text = io.StringIO("zażółć ✓")
    half = io.BytesIO(b"skip|keep")
    half.seek(5)

    assert exp.log_artifact(str(model)) is None  # basename
    exp.log_artifact(str(model), "models/best.pkl")
    exp.log_artifact(str(folder))  # a directory, recursively, under its name
    exp.log_artifact(str(folder), "copy")
    exp.log_artifact(binary, "streams/binary.bin")
    exp.log_artifact(text, "streams/text.txt")
    exp.log_artifact(half, "streams/half.bin")  # read from the current position
    exp.log_artifact(pathlib.Path(model), "pathlib.pkl")
    exp.send_artifact(io.BytesIO(b"alias"), "alias.bin")
    exp.log_artifact(io.BytesIO(b"v1"), "over.bin")
    exp.log_artifact(io.BytesIO(b"v2"), "over.bin")  # overwrites
    exp.log_artifact(str(model), "win\\style\\path.pkl")  # OS separators become '/'
    for stream in (binary, text, half):
        assert not stream.closed  # the caller's stream is left open (docs/legacy-behaviour.md#artifacts-and-sources)
    binary.seek(0)
    assert binary.read() == b"\x00\x01 binary"

    sync(exp)
    assert _artifact_listing(exp, tmp_path / "dl") == {
        "alias.bin": b"alias",
        "copy/a.csv": b"a,b\n1,2\n",
        "copy/sub/b.txt": b"b",
        "model.pkl": b"\x80\x04 pickled",
        "models/best.pkl": b"\x80\x04 pickled",
        "over.bin": b"v2",
        "pathlib.pkl": b"\x80\x04 pickled",
        "results/a.csv": b"a,b\n1,2\n",
        "results/sub/b.txt": b"b",
        "streams/binary.bin": b"\x00\x01 binary",
        "streams/half.bin": b"keep",
        "streams/text.txt": "zażółć ✓".encode(),
        "win/style/path.pkl": b"\x80\x04 pickled",
    }
    system = exp.get_system_properties()
    assert system["storage_size"] == sum(len(v) for v in _artifact_listing(exp, tmp_path / "dl2").values())


def test_log_artifact_errors_log_nothing(exp: Experiment, sync: Sync, tmp_path: Path) -> None:
    source = tmp_path / "file.txt"
    source.write_text("x")
    with pytest.raises(ValueError, match="destination"):
        exp.log_artifact(io.BytesIO(b"x"))
    with pytest.raises(FileNotFound):
        exp.log_artifact(str(tmp_path / "missing.txt"))
    with pytest.raises(FileNotFound):
        exp.log_artifact(tmp_path / "missing-too.txt")
    for destination in ("../x", "a/../../x", "/abs/x", "", "."):
        with pytest.raises(ArtifactPathError) as info:
            exp.log_artifact(str(source), destination)
        assert isinstance(info.value, ValueError)
        with pytest.raises(ArtifactPathError):
            exp.log_artifact(io.BytesIO(b"x"), destination)
    with pytest.raises(ValueError):
        exp.log_artifact(12345)
    exp.log_artifact(str(source), "ok/../fine.txt")  # normalises inside the root: accepted as fine.txt
    sync(exp)
    assert _artifact_listing(exp, tmp_path / "dl") == {"fine.txt": b"x"}


def test_delete_artifacts(exp: Experiment, sync: Sync, tmp_path: Path) -> None:
    for name in ("keep.txt", "a.txt", "b.txt", "dir/one.txt", "dir/sub/two.txt", "dirty/not-in-dir.txt", "c.txt"):
        exp.log_artifact(io.BytesIO(name.encode()), name)
    assert exp.delete_artifacts("a.txt") is None
    exp.delete_artifacts("dir")  # a whole directory, not its sibling 'dirty'
    exp.delete_artifacts(["b.txt", "/c.txt"])  # a list; a leading '/' is allowed
    sync(exp)
    assert sorted(_artifact_listing(exp, tmp_path / "dl")) == ["dirty/not-in-dir.txt", "keep.txt"]


def test_delete_artifacts_checks_every_path_first(exp: Experiment, sync: Sync, tmp_path: Path) -> None:
    exp.log_artifact(io.BytesIO(b"1"), "one.txt")
    exp.log_artifact(io.BytesIO(b"2"), "two.txt")
    with pytest.raises(FileNotFound):
        exp.delete_artifacts("missing.txt")  # docs/legacy-behaviour.md#deleting-artifacts
    with pytest.raises(FileNotFound):
        exp.delete_artifacts(["one.txt", "missing.txt"])
    for bad in ("..", "../x", "a/../../x", "", ".", "/", ["one.txt", "../two.txt"], ["one.txt", ""]):
        with pytest.raises(ValueError):
            exp.delete_artifacts(bad)
    with pytest.raises(ValueError):
        exp.delete_artifacts(None)  # type: ignore[arg-type]
    sync(exp)
    assert _artifact_listing(exp, tmp_path / "dl") == {"one.txt": b"1", "two.txt": b"2"}


def test_deleted_artifact_can_be_logged_again(exp: Experiment, sync: Sync, tmp_path: Path) -> None:
    exp.log_artifact(io.BytesIO(b"old"), "x.bin")
    exp.delete_artifacts("x.bin")
    with pytest.raises(FileNotFound):
        exp.delete_artifacts("x.bin")
    exp.log_artifact(io.BytesIO(b"new"), "x.bin")
    sync(exp)
    assert _artifact_listing(exp, tmp_path / "dl") == {"x.bin": b"new"}


def test_metric_values_are_stored_as_float(exp: Experiment, sync: Sync) -> None:
    exp.log_metric("big", 2**53 + 1)
    exp.log_metric("tiny", 1e-300)
    exp.log_metric("neg", -0.0)
    sync(exp)
    assert _values(exp, "big") == [(0.0, float(2**53 + 1))]
    assert _values(exp, "tiny") == [(0.0, 1e-300)]
    assert math.copysign(1.0, _values(exp, "neg")[0][1]) in (1.0, -1.0)


def test_tags_and_properties_after_stop_are_recorded(
    exp: Experiment, sync: Sync, caplog: pytest.LogCaptureFixture
) -> None:
    """Only log points stop at stop(); tags and properties of a finished experiment can still change.

    docs/legacy-behaviour.md#finished-experiments
    """
    exp.append_tag("before")
    exp.set_property("phase", "training")
    exp.stop()
    exp.append_tag("after", "reviewed")
    exp.remove_tag("before")
    exp.set_property("phase", "done")
    exp.set_property("score", 0.9)
    with caplog.at_level(logging.WARNING, logger="expstream"):
        exp.log_metric("late", 1.0)
    assert any("'late'" in m for m in _messages(caplog))
    sync(exp)
    assert exp.get_tags() == ["after", "reviewed"]
    assert exp.get_properties() == {"phase": "done", "score": "0.9"}
    assert exp.get_logs() == {}
    assert exp.state == "succeeded"
