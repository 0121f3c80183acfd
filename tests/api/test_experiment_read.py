"""The read side of ``Experiment``: getters, identity, state, downloads, sync/wait, and a second reading process."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import expstream as neptune
from expstream.backend import StreamBackend
from expstream.exceptions import FileNotFound, NotADirectory
from expstream.experiments import Experiment
from expstream.projects import Project

Sync = Callable[..., None]

_SYSTEM_KEYS = {
    "id",
    "name",
    "created",
    "finished",
    "running_time",
    "owner",
    "storage_size",
    "channels_size",
    "size",
    "tags",
    "notes",
    "description",
    "hostname",
}


# --- identity -------------------------------------------------------------------------------------


def test_identity(exp: Experiment, project: Project) -> None:
    assert exp.id == "SAN-1"
    assert exp.name == "exp"
    assert uuid.UUID(exp.internal_id)
    assert str(exp) == repr(exp) == "Experiment(SAN-1)"
    assert exp.limits == {"channels": {"numeric": 1000, "text": 100, "image": 100}}  # docs/legacy-behaviour.md#limits
    assert Experiment.IMAGE_SIZE_LIMIT_MB == exp.IMAGE_SIZE_LIMIT_MB == 15
    assert exp == exp
    twin = Experiment(exp._backend, project, exp.id, exp.internal_id)
    assert twin == exp and hash(twin) == hash(exp)
    assert Experiment(exp._backend, project, "SAN-2", exp.internal_id) != exp
    assert Experiment(exp._backend, project, exp.id, str(uuid.uuid4())) != exp
    other_project = neptune.Session(backend=exp._backend).get_project("acme/sandbox")
    assert Experiment(exp._backend, other_project, exp.id, exp.internal_id) != exp
    assert exp != "Experiment(SAN-1)"


def test_limits_are_not_enforced(exp: Experiment, sync: Sync) -> None:
    for i in range(105):
        exp.log_text(f"text-{i}", "x")
    sync(exp)
    assert len(exp.get_logs()) == 105


# --- state ----------------------------------------------------------------------------------------


def test_state_running_then_succeeded(project: Project, sync: Sync) -> None:
    exp = project.create_experiment(upload_source_files=[])
    assert exp.state == "running"
    sync(exp)
    system = exp.get_system_properties()
    assert system["finished"] is None
    assert project.get_experiments(id=exp.id)[0].state == "running"
    time.sleep(0.01)
    exp.stop()
    assert exp.state == "succeeded"
    exp.stop()  # idempotent
    exp.stop("a traceback after the fact")  # finished states are final
    assert exp.state == "succeeded"
    sync(exp)
    (found,) = project.get_experiments(id=exp.id)
    assert found.state == "succeeded"
    system = exp.get_system_properties()
    assert isinstance(system["finished"], dt.datetime) and system["finished"].tzinfo is not None
    assert system["finished"] >= system["created"]


def test_stop_with_a_traceback_fails(project: Project, sync: Sync) -> None:
    exp = project.create_experiment(upload_source_files=[])
    exp.stop("Traceback (most recent call last):\n  boom")
    assert exp.state == "failed"
    sync(exp)
    assert project.get_experiments(id=exp.id)[0].state == "failed"


def test_with_block(project: Project, sync: Sync) -> None:
    with project.create_experiment(upload_source_files=[]) as fine:
        assert isinstance(fine, Experiment)
        fine.log_metric("m", 1.0)
        assert fine.state == "running"
    assert fine.state == "succeeded"

    class Boom(Exception):
        pass

    with pytest.raises(Boom, match="bang"), project.create_experiment(upload_source_files=[]) as failing:
        raise Boom("bang")
    assert failing.state == "failed"
    sync(fine, failing)
    assert {e.id: e.state for e in project.get_experiments()} == {fine.id: "succeeded", failing.id: "failed"}
    with pytest.raises(neptune.exceptions.NeptuneNoExperimentContextException):
        neptune.get_experiment()


def test_stop_restores_the_excepthook(project: Project) -> None:
    before = sys.excepthook
    exp = project.create_experiment(upload_source_files=[])
    assert sys.excepthook is not before
    exp.stop()
    assert sys.excepthook is before
    quiet = project.create_experiment(upload_source_files=[], handle_uncaught_exceptions=False)
    assert sys.excepthook is before
    quiet.stop()
    assert sys.excepthook is before  # never set to None (docs/legacy-behaviour.md#execution-context)


# --- getters --------------------------------------------------------------------------------------


def test_system_properties(owner: str, home: Path, sync: Sync) -> None:
    project = neptune.init("acme/sandbox")
    before = dt.datetime.now(dt.timezone.utc)
    exp = project.create_experiment(
        "sysprops", description="the description", tags=["z", "y"], hostname="host-1", upload_source_files=[]
    )
    exp.log_metric("m", 1.0)
    exp.log_text("t", "abc")
    exp.log_artifact(io.BytesIO(b"12345"), "five.bin")
    sync(exp)
    system = exp.get_system_properties()
    assert set(system) == _SYSTEM_KEYS
    assert system["id"] == "SAN-1"
    assert system["name"] == "sysprops"
    assert system["notes"] == system["description"] == "the description"
    assert system["owner"] == owner == "alice"
    assert system["hostname"] == "host-1"
    assert system["tags"] == ["y", "z"]
    created = system["created"]
    assert isinstance(created, dt.datetime) and created.tzinfo is not None
    assert before - dt.timedelta(seconds=5) <= created <= dt.datetime.now(dt.timezone.utc)
    assert system["finished"] is None
    assert isinstance(system["running_time"], int) and system["running_time"] >= 0
    assert system["storage_size"] == 5
    assert isinstance(system["channels_size"], int) and system["channels_size"] > 0
    assert system["size"] == system["storage_size"] + system["channels_size"]
    exp.stop()
    sync(exp)
    finished = exp.get_system_properties()["finished"]
    assert isinstance(finished, dt.datetime) and finished.tzinfo is not None and finished >= created


def test_get_hardware_utilization_is_empty_when_nothing_was_monitored(project: Project, sync: Sync) -> None:
    exp = project.create_experiment(upload_source_files=[], send_hardware_metrics=False)
    exp.log_metric("cpu", 50.0)  # a user log of that name is not hardware monitoring
    exp.log_metric("ram", 1.0)
    sync(exp)
    frame = exp.get_hardware_utilization()
    assert isinstance(frame, pd.DataFrame)
    assert frame.empty and list(frame.columns) == []
    exp.stop()


def test_get_hardware_utilization_when_monitored(exp: Experiment, sync: Sync) -> None:
    """The default experiment monitors CPU and RAM; the series pair up as x_<series>, y_<series>."""
    deadline = time.time() + 10
    while True:
        sync(exp)
        frame = exp.get_hardware_utilization()
        if not frame.empty or time.time() > deadline:
            break
        time.sleep(0.2)
    assert list(frame.columns)[:4] == ["x_ram", "y_ram", "x_cpu", "y_cpu"]
    assert (frame["y_ram"].dropna() > 0).all()
    assert frame["y_cpu"].dropna().between(0, 100).all()


def test_get_logs(project: Project, sync: Sync, reading: StreamBackend) -> None:
    from PIL import Image

    # created here, not in a fixture: pytest swaps sys.stdout between the setup and call phases
    exp = project.create_experiment(upload_source_files=[])
    exp.log_metric("loss", 0.5)
    exp.log_metric("loss", 7, 0.25)
    exp.log_text("notes", "hello")
    exp.log_image("pics", Image.new("L", (2, 2)), image_name="first")
    exp.log_image("pics", Image.new("L", (2, 2)), image_name="second")
    print("a line mirrored into the system log 'stdout'")  # system logs are not user logs
    sys.stderr.write("and one into 'stderr'\n")
    sync(exp)
    logs = exp.get_logs()
    assert exp.get_channels() == logs
    assert list(logs) == ["loss", "notes", "pics"]
    loss, notes, pics = logs["loss"], logs["notes"], logs["pics"]
    for name, log in logs.items():
        assert log.name == name
        assert isinstance(log.id, str) and log.id
    assert len({log.id for log in logs.values()}) == 3
    assert (loss.channelType, loss.x, loss.y, loss.lastX) == ("numeric", 7.0, 0.25, 7.0)
    assert (notes.channelType, notes.x, notes.y, notes.lastX) == ("text", 0.0, "hello", 0.0)
    assert (pics.channelType, pics.x, pics.lastX) == ("image", 1.0, 1.0)
    assert exp.get_logs()["loss"].id == loss.id  # ids are stable
    system = {c.name for c in reading.reader.channels(exp.internal_id, "system")}
    assert {"stdout", "stderr"} <= system  # they exist, in the system namespace
    with pytest.raises(KeyError):  # and cannot be read as user logs
        exp.get_numeric_channels_values("stdout")
    exp.stop()


def test_get_logs_of_a_new_experiment_is_empty(exp: Experiment, sync: Sync) -> None:
    sync(exp)
    assert exp.get_logs() == {}
    assert exp.get_channels() == {}


# --- get_numeric_channels_values ------------------------------------------------------------------


def test_get_numeric_channels_values(exp: Experiment, sync: Sync) -> None:
    exp.log_metric("epoch_loss", 0.3, 2.5)
    exp.log_metric("epoch_loss", 1, 2)
    exp.log_metric("b", 0, 10.0)
    exp.log_metric("b", 2, 12.0)
    exp.log_metric("a", 1, 100.0)
    exp.log_text("text", "not numeric")
    sync(exp)

    single = exp.get_numeric_channels_values("epoch_loss")
    assert list(single.columns) == ["x", "epoch_loss"]
    assert single.values.tolist() == [[0.3, 2.5], [1.0, 2.0]]  # the legacy unit-test example
    assert (single.dtypes == np.float64).all()

    frame = exp.get_numeric_channels_values("b", "epoch_loss", "a")
    assert list(frame.columns) == ["x", "b", "epoch_loss", "a"]  # x, then the requested order
    assert (frame.dtypes == np.float64).all()
    assert frame["x"].tolist() == [0.0, 0.3, 1.0, 2.0]  # sorted union of all x
    expected = {
        "b": [10.0, None, None, 12.0],
        "epoch_loss": [None, 2.5, 2.0, None],
        "a": [None, None, 100.0, None],
    }
    for name, column in expected.items():
        got = frame[name].tolist()
        assert [None if np.isnan(v) else v for v in got] == column, name
    assert list(exp.get_numeric_channels_values("a", "b").columns) == ["x", "a", "b"]
    assert list(exp.get_numeric_channels_values("a", "a").columns) == ["x", "a"]  # distinct names

    with pytest.raises(KeyError):
        exp.get_numeric_channels_values("unknown")
    with pytest.raises(KeyError):
        exp.get_numeric_channels_values("a", "unknown")
    with pytest.raises(neptune.exceptions.NeptuneException):
        exp.get_numeric_channels_values("text")
    with pytest.raises(ValueError):
        exp.get_numeric_channels_values()


_ODD_NAMES = [
    "it's",
    'say "hi"',
    "back\\slash",
    "trailing\\",
    "semi;colon; DROP TABLE points_numeric; --",
    "ünïcödé Ωμέγα 日本語",
    "with spaces  and\ttab",
    "nested/m1",
    "val_acc/dataloader_idx_0",
    "{e:String}",
    "%s %(x)s {}",
    "`backtick`",
    "new\nline",
]


def test_channel_names_round_trip(exp: Experiment, sync: Sync) -> None:
    for i, name in enumerate(_ODD_NAMES):
        exp.log_metric(name, i, float(i))
    exp.log_text("text 'quoted'; \\", "value 'with' \"quotes\"; \\")
    sync(exp)
    logs = exp.get_logs()
    assert set(logs) == {*_ODD_NAMES, "text 'quoted'; \\"}
    assert logs["text 'quoted'; \\"].y == "value 'with' \"quotes\"; \\"
    frame = exp.get_numeric_channels_values(*_ODD_NAMES)
    assert list(frame.columns) == ["x", *_ODD_NAMES]
    for i, name in enumerate(_ODD_NAMES):
        column = frame[name]
        assert column[frame["x"] == i].tolist() == [float(i)], name
        assert column.notna().sum() == 1, name
    for name in _ODD_NAMES:
        assert exp.get_numeric_channels_values(name)[name].tolist() == [float(_ODD_NAMES.index(name))]
    exp.reset_log("semi;colon; DROP TABLE points_numeric; --")
    sync(exp)
    assert exp.get_numeric_channels_values("it's")["it's"].tolist() == [0.0]


# --- downloads ------------------------------------------------------------------------------------


@pytest.fixture
def with_artifacts(exp: Experiment, sync: Sync, tmp_path: Path) -> Experiment:
    exp.log_artifact(io.BytesIO(b"model bytes"), "model.pkl")
    exp.log_artifact(io.BytesIO(b"A"), "data/images/a.png")
    exp.log_artifact(io.BytesIO(b"B"), "data/images/sub/b.png")
    exp.log_artifact(io.BytesIO(b"C"), "data/other.csv")
    exp.log_artifact(io.BytesIO(b"D"), "data/images-not/d.png")
    sync(exp)
    return exp


def test_download_artifact(with_artifacts: Experiment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = with_artifacts
    target = tmp_path / "new" / "nested"
    assert exp.download_artifact("data/images/sub/b.png", str(target)) is None  # the folder is created
    assert (target / "b.png").read_bytes() == b"B"
    exp.download_artifact("/model.pkl", target)  # a leading '/' and a Path
    assert (target / "model.pkl").read_bytes() == b"model bytes"
    monkeypatch.chdir(tmp_path)
    exp.download_artifact("model.pkl")  # default: the current directory
    assert (tmp_path / "model.pkl").read_bytes() == b"model bytes"

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(NotADirectory):
        exp.download_artifact("model.pkl", str(a_file))
    for missing in ("missing.bin", "data/images", "../model.pkl", ""):
        with pytest.raises(FileNotFound):
            exp.download_artifact(missing, str(target))
    assert sorted(p.name for p in target.iterdir()) == ["b.png", "model.pkl"]


def test_download_artifacts(with_artifacts: Experiment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = with_artifacts

    def entries(path: Path) -> dict[str, bytes]:
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in archive.namelist()}

    monkeypatch.chdir(tmp_path)
    assert exp.download_artifacts() is None
    assert entries(tmp_path / "output.zip") == {
        "data/images-not/d.png": b"D",
        "data/images/a.png": b"A",
        "data/images/sub/b.png": b"B",
        "data/other.csv": b"C",
        "model.pkl": b"model bytes",
    }
    out = tmp_path / "out"
    exp.download_artifacts("data/images", str(out))
    assert entries(out / "images.zip") == {"images/a.png": b"A", "images/sub/b.png": b"B"}
    exp.download_artifacts("data/images/", str(out))
    assert entries(out / "images.zip") == {"images/a.png": b"A", "images/sub/b.png": b"B"}
    exp.download_artifacts("data", str(out))
    assert sorted(entries(out / "data.zip")) == [
        "data/images-not/d.png",
        "data/images/a.png",
        "data/images/sub/b.png",
        "data/other.csv",
    ]
    exp.download_artifacts("model.pkl", str(out))
    assert entries(out / "model.pkl.zip") == {"model.pkl": b"model bytes"}
    exp.download_artifacts(destination_dir=str(out))
    assert len(entries(out / "output.zip")) == 5
    with pytest.raises(FileNotFound):
        exp.download_artifacts("data/missing", str(out))
    with pytest.raises(FileNotFound):
        exp.download_artifacts("data/imag", str(out))  # a prefix of a name is not a directory
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(NotADirectory):
        exp.download_artifacts(destination_dir=str(a_file))


def test_download_sources(home: Path, sync: Sync, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    (work / "pkg").mkdir(parents=True)
    (work / "train.py").write_text("print('train')\n")
    (work / "utils.py").write_text("X = 1\n")
    (work / "notes.txt").write_text("not a python file")
    (work / "pkg" / "deep.py").write_text("# not matched by *.py\n")
    monkeypatch.chdir(work)
    project = neptune.init("acme/sandbox")
    exp = project.create_experiment(upload_source_files=["*.py"])
    everything = project.create_experiment(upload_source_files=["**/*.py", "notes.txt"])
    sync(exp, everything)

    out = tmp_path / "out"
    assert exp.download_sources(destination_dir=str(out)) is None
    with zipfile.ZipFile(out / "source.zip") as archive:
        assert archive.namelist() == ["train.py", "utils.py"]
        assert archive.read("train.py") == b"print('train')\n"
    exp.download_sources("utils.py", str(out))
    with zipfile.ZipFile(out / "utils.py.zip") as archive:
        assert archive.namelist() == ["utils.py"]
    with pytest.raises(FileNotFound):
        exp.download_sources("pkg", str(out))

    everything.download_sources("pkg", str(out))
    with zipfile.ZipFile(out / "pkg.zip") as archive:
        assert archive.namelist() == ["pkg/deep.py"]
    everything.download_sources(destination_dir=str(out))
    with zipfile.ZipFile(out / "source.zip") as archive:
        assert sorted(archive.namelist()) == ["notes.txt", "pkg/deep.py", "train.py", "utils.py"]
    exp.stop()
    everything.stop()


def test_default_sources_are_the_entry_script(
    home: Path, sync: Sync, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "main_script.py").write_text("import expstream\n")
    (work / "other.py").write_text("nope\n")
    monkeypatch.chdir(work)
    monkeypatch.setattr(sys, "argv", ["main_script.py", "--flag"])
    project = neptune.init("acme/sandbox")
    exp = project.create_experiment()
    sync(exp)
    exp.download_sources(destination_dir=str(tmp_path / "out"))
    with zipfile.ZipFile(tmp_path / "out" / "source.zip") as archive:
        assert archive.namelist() == ["main_script.py"]
    exp.stop()


# --- wait and sync --------------------------------------------------------------------------------


def test_wait_and_sync_with_a_timeout(exp: Experiment, sync: Sync) -> None:
    exp.log_metric("m", 1.0)
    assert exp.wait(timeout=10) is None
    assert exp.wait() is None
    exp.log_metric("m", 2.0)
    assert exp.sync(timeout=30) is None
    assert exp.get_numeric_channels_values("m")["m"].tolist() == [1.0, 2.0]


def test_sync_in_a_process_that_has_not_read_yet(home: Path) -> None:
    """A logging process does not load the query engine: sync() materializes in a consumer process."""
    project = neptune.init("acme/sandbox")
    exp = project.create_experiment("fresh", params={"p": 2}, upload_source_files=[])
    exp.log_metric("m", 3.0)
    backend = exp._backend
    assert not backend.reader_is_open
    exp.sync(timeout=120)
    assert not backend.reader_is_open
    assert exp.get_parameters() == {"p": 2.0}
    assert exp.get_numeric_channels_values("m")["m"].tolist() == [3.0]
    exp.stop()


# --- a second process reads what this one logs ----------------------------------------------------

_READER = """
import json, sys
import expstream as neptune
project = neptune.init("acme/sandbox")
(exp,) = project.get_experiments(id=sys.argv[1])
frame = exp.get_numeric_channels_values("loss", "acc")
print(json.dumps({
    "state": exp.state,
    "name": exp.name,
    "params": exp.get_parameters(),
    "tags": exp.get_tags(),
    "x": frame["x"].tolist(),
    "loss": frame["loss"].tolist(),
    "acc": [None if v != v else v for v in frame["acc"].tolist()],
    "text": exp.get_logs()["notes"].y,
}))
"""


def test_second_process_reads_while_this_one_logs(project: Project, home: Path) -> None:
    exp = project.create_experiment("live", params={"lr": 0.1}, tags=["live"], upload_source_files=[])
    for step in range(5):
        exp.log_metric("loss", 1.0 / (step + 1))
    exp.log_metric("acc", 2, 0.75)
    exp.log_text("notes", "halfway")
    exp.sync(timeout=120)

    env = {k: v for k, v in os.environ.items() if k not in ("NEPTUNE_PROJECT", "EXPSTREAM_PROJECT", "NEPTUNE_BACKEND")}
    env["EXPSTREAM_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-c", _READER, exp.id], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "state": "running",
        "name": "live",
        "params": {"lr": 0.1},
        "tags": ["live"],
        "x": [0.0, 1.0, 2.0, 3.0, 4.0],
        "loss": [1.0, 0.5, 1.0 / 3, 0.25, 0.2],
        "acc": [None, None, 0.75, None, None],
        "text": "halfway",
    }
    exp.log_metric("loss", 0.1)  # still logging after the other process read
    exp.stop()
    exp.sync(timeout=120)
    assert exp.get_numeric_channels_values("loss")["loss"].tolist()[-1] == 0.1
