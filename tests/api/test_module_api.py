"""Module-level API: init, set_project, create/get_experiment, the wrappers, the experiment stack, ids."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import expstream as neptune
from expstream.backend import NoopObject, StreamBackend
from expstream.exceptions import (
    InvalidNeptuneBackend,
    NeptuneIncorrectProjectQualifiedNameException,
    NeptuneMissingProjectQualifiedNameException,
    NeptuneNoExperimentContextException,
    NeptuneUninitializedException,
    ProjectNotFound,
)
from expstream.projects import Project
from expstream.sessions import Session

# --- init -----------------------------------------------------------------------------------------


def test_init_with_argument_sets_both_globals(home: Path) -> None:
    assert neptune.project is None and neptune.session is None
    project = neptune.init("acme/sandbox")
    assert isinstance(project, Project)
    assert (project.namespace, project.name, project.full_id) == ("acme", "sandbox", "acme/sandbox")
    assert neptune.project is project
    assert isinstance(neptune.session, Session)


@pytest.mark.parametrize("variable", ["NEPTUNE_PROJECT", "EXPSTREAM_PROJECT"])
def test_init_reads_the_project_from_the_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "team/from-env")
    project = neptune.init()
    assert project.full_id == "team/from-env"


def test_init_argument_wins_over_the_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEPTUNE_PROJECT", "team/from-env")
    monkeypatch.setenv("EXPSTREAM_PROJECT", "team/from-env-too")
    assert neptune.init("acme/sandbox").full_id == "acme/sandbox"


def test_init_without_any_project_name_is_missing(home: Path) -> None:
    with pytest.raises(NeptuneMissingProjectQualifiedNameException):
        neptune.init()
    assert neptune.project is None


@pytest.mark.parametrize("name", ["sandbox", "acme/sandbox/extra", "/sandbox", "acme/", "a//b"])
def test_init_with_a_malformed_name(home: Path, name: str) -> None:
    with pytest.raises(NeptuneIncorrectProjectQualifiedNameException):
        neptune.init(name)
    assert neptune.project is None


def test_init_with_an_empty_name_is_project_not_found(home: Path) -> None:
    with pytest.raises(ProjectNotFound):
        neptune.init("")


@pytest.mark.parametrize("token", ["ANONYMOUS", neptune.ANONYMOUS, "not-a-valid-token", None])
def test_init_accepts_any_api_token(home: Path, token: str | None) -> None:
    project = neptune.init("acme/sandbox", api_token=token)
    assert project.full_id == "acme/sandbox"


def test_api_token_is_never_recorded(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A token is accepted (argument or NEPTUNE_API_TOKEN) and never written into events or reprs.

    docs/legacy-behaviour.md#api-token
    """
    secret = "sEcReT-t0ken-4711"
    monkeypatch.setenv("NEPTUNE_API_TOKEN", secret + "-env")
    project = neptune.init("acme/sandbox", api_token=secret)
    experiment = neptune.create_experiment("token", params={"p": 1}, upload_source_files=[])
    experiment.log_metric("m", 1.0)
    experiment.stop()
    assert secret not in repr(project) + repr(experiment) + repr(neptune.session)
    written = [p for p in home.rglob("*") if p.is_file()]
    assert written, "the experiment should have written its event log"
    for path in written:
        assert secret.encode() not in path.read_bytes(), path


def test_neptune_backend_offline_gives_the_noop_project(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEPTUNE_BACKEND", "offline")
    project = neptune.init("dry-run/project")
    assert isinstance(project, NoopObject)
    assert not home.exists(), "offline mode must not write anything"


@pytest.mark.parametrize("value", ["hosted", "OFFLINE", "off-line"])
def test_neptune_backend_with_an_unknown_value(home: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NEPTUNE_BACKEND", value)
    with pytest.raises(InvalidNeptuneBackend, match=value):
        neptune.init("acme/sandbox")


def test_init_backend_argument_is_used(home: Path, backend: StreamBackend) -> None:
    project = neptune.init("acme/sandbox", backend=backend)
    assert project._backend is backend


# --- set_project ----------------------------------------------------------------------------------


def test_set_project_before_init_behaves_like_init(home: Path) -> None:
    project = neptune.set_project("acme/sandbox")
    assert isinstance(project, Project) and project.full_id == "acme/sandbox"
    assert neptune.project is project
    assert isinstance(neptune.session, Session)


def test_set_project_keeps_the_session_and_starts_an_empty_stack(home: Path) -> None:
    neptune.init("acme/sandbox")
    session = neptune.session
    first = neptune.create_experiment(upload_source_files=[])
    project = neptune.set_project("acme/other")
    assert neptune.session is session
    assert neptune.project is project and project.full_id == "acme/other"
    with pytest.raises(NeptuneNoExperimentContextException):
        neptune.get_experiment()
    second = neptune.create_experiment(upload_source_files=[])
    assert second.id == "OTH-1"
    assert neptune.get_experiment() is second
    assert first.state == "running"
    first.stop()
    second.stop()


@pytest.mark.parametrize("name", ["bad", "a/b/c"])
def test_set_project_validates_the_name(home: Path, name: str) -> None:
    neptune.init("acme/sandbox")
    with pytest.raises(NeptuneIncorrectProjectQualifiedNameException):
        neptune.set_project(name)


# --- create_experiment / get_experiment and the wrappers without context --------------------------


_WRAPPER_CALLS: dict[str, Callable[[], Any]] = {
    "get_experiment": lambda: neptune.get_experiment(),
    "append_tag": lambda: neptune.append_tag("a"),
    "append_tags": lambda: neptune.append_tags("a", "b"),
    "remove_tag": lambda: neptune.remove_tag("a"),
    "set_property": lambda: neptune.set_property("k", "v"),
    "remove_property": lambda: neptune.remove_property("k"),
    "send_metric": lambda: neptune.send_metric("m", 1.0),
    "log_metric": lambda: neptune.log_metric("m", 1.0),
    "send_text": lambda: neptune.send_text("t", "x"),
    "log_text": lambda: neptune.log_text("t", "x"),
    "send_image": lambda: neptune.send_image("i", Image.new("RGB", (2, 2))),
    "log_image": lambda: neptune.log_image("i", Image.new("RGB", (2, 2))),
    "send_artifact": lambda: neptune.send_artifact(io.BytesIO(b"x"), "x.bin"),
    "log_artifact": lambda: neptune.log_artifact(io.BytesIO(b"x"), "x.bin"),
    "delete_artifacts": lambda: neptune.delete_artifacts("x.bin"),
    "stop": lambda: neptune.stop(),
}


def test_create_experiment_before_init(home: Path) -> None:
    with pytest.raises(NeptuneUninitializedException):
        neptune.create_experiment()


@pytest.mark.parametrize("call", list(_WRAPPER_CALLS))
def test_wrappers_before_init_are_uninitialized(home: Path, call: str) -> None:
    with pytest.raises(NeptuneUninitializedException):
        _WRAPPER_CALLS[call]()


@pytest.mark.parametrize("call", list(_WRAPPER_CALLS))
def test_wrappers_without_an_experiment_have_no_context(home: Path, call: str) -> None:
    neptune.init("acme/sandbox")
    with pytest.raises(NeptuneNoExperimentContextException):
        _WRAPPER_CALLS[call]()


def test_module_create_experiment_has_no_notebook_path(project: Project) -> None:
    with pytest.raises(TypeError):
        neptune.create_experiment(notebook_path="nb.ipynb")  # type: ignore[call-arg]


# --- the wrappers act on the current experiment ---------------------------------------------------


def test_every_wrapper_delegates_to_the_current_experiment(
    project: Project, reading: StreamBackend, sync: Callable[..., None], tmp_path: Path
) -> None:
    older = neptune.create_experiment("older", upload_source_files=[])
    current = neptune.create_experiment("current", upload_source_files=[])
    assert neptune.get_experiment() is current

    results = [
        neptune.append_tag("a"),
        neptune.append_tags("b", "c"),
        neptune.append_tags(["d"]),
        neptune.remove_tag("c"),
        neptune.set_property("kept", 7),
        neptune.set_property("dropped", "x"),
        neptune.remove_property("dropped"),
        neptune.send_metric("m", 1.0),
        neptune.log_metric("m", 5, 2.0),
        neptune.log_metric("m", 3.0, timestamp=1_600_000_000.5),
        neptune.send_text("t", "one"),
        neptune.log_text("t", "two"),
        neptune.send_image("i", Image.new("RGB", (3, 2), "red"), name="sent", description="d1"),
        neptune.log_image("i", 4, Image.new("RGB", (2, 3), "blue"), image_name="logged", description="d2"),
        neptune.send_artifact(io.BytesIO(b"first"), "a/first.bin"),
        neptune.log_artifact(io.BytesIO(b"second"), "a/second.bin"),
        neptune.log_artifact(io.BytesIO(b"third"), "third.bin"),
        neptune.delete_artifacts("third.bin"),
    ]
    assert results == [None] * len(results)  # set_property's experiment is discarded at module level
    sync(current, older)

    assert current.get_tags() == ["a", "b", "d"]
    assert current.get_properties() == {"kept": "7"}
    values = current.get_numeric_channels_values("m")
    assert values["x"].tolist() == [0.0, 5.0, 6.0]
    assert values["m"].tolist() == [1.0, 2.0, 3.0]
    logs = current.get_logs()
    assert (logs["t"].channelType, logs["t"].x, logs["t"].y) == ("text", 1.0, "two")
    assert (logs["i"].channelType, logs["i"].x, logs["i"].y) == ("image", 4.0, "logged")
    current.download_artifacts(destination_dir=str(tmp_path / "dl"))
    with zipfile.ZipFile(tmp_path / "dl" / "output.zip") as archive:
        assert archive.namelist() == ["a/first.bin", "a/second.bin"]
        assert archive.read("a/second.bin") == b"second"

    # the older experiment saw none of it
    assert older.get_tags() == []
    assert older.get_properties() == {}
    assert older.get_logs() == {}

    assert neptune.stop() is None
    assert current.state == "succeeded"
    assert neptune.get_experiment() is older
    neptune.stop("Traceback: boom")
    assert older.state == "failed"
    sync(current, older)
    states = {e.id: e.state for e in project.get_experiments()}
    assert states == {older.id: "failed", current.id: "succeeded"}


# --- the experiment stack -------------------------------------------------------------------------


def test_stop_makes_the_previous_experiment_current_again(project: Project) -> None:
    first = neptune.create_experiment(upload_source_files=[])
    second = neptune.create_experiment(upload_source_files=[])
    third = neptune.create_experiment(upload_source_files=[])
    assert neptune.get_experiment() is third
    third.stop()
    assert neptune.get_experiment() is second
    first.stop()  # stopping one below the top leaves the top current
    assert neptune.get_experiment() is second
    second.stop()
    with pytest.raises(NeptuneNoExperimentContextException):
        neptune.get_experiment()


def test_module_log_metric_follows_the_stack_on_its_fast_path(
    project: Project, reading: StreamBackend, sync: Callable[..., None]
) -> None:
    """Module-level log_metric goes straight to the current experiment's open stream; a stop moves it to the one
    below (whose stream the first call opens), and with none left it raises like every wrapper."""
    older = neptune.create_experiment("older", upload_source_files=[])
    newer = neptune.create_experiment("newer", upload_source_files=[])
    for value in (1.0, 2.0):
        neptune.log_metric("m", value)  # the first call opens newer's stream, the second takes the fast path
    newer.stop()
    for value in (3.0, 4.0):
        neptune.log_metric("m", value)
    older.stop()
    with pytest.raises(NeptuneNoExperimentContextException):
        neptune.log_metric("m", 5.0)
    sync(newer, older)
    assert newer.get_numeric_channels_values("m")["m"].tolist() == [1.0, 2.0]
    assert older.get_numeric_channels_values("m")["m"].tolist() == [3.0, 4.0]


def test_project_create_experiment_pushes_on_the_same_stack(project: Project) -> None:
    experiment = project.create_experiment(upload_source_files=[])
    assert neptune.get_experiment() is experiment
    experiment.stop()


def test_init_again_replaces_the_project_with_an_empty_stack(project: Project) -> None:
    old = neptune.create_experiment(upload_source_files=[])
    again = neptune.init("acme/sandbox")
    assert again is not project
    assert neptune.project is again
    with pytest.raises(NeptuneNoExperimentContextException):
        neptune.get_experiment()
    assert old.state == "running"  # it keeps running; the old project still knows it
    assert project._current() is old
    new = neptune.create_experiment(upload_source_files=[])
    assert new.id == "SAN-2"
    old.stop()
    new.stop()


# --- ids ------------------------------------------------------------------------------------------


def test_ids_count_from_one_per_project(project: Project) -> None:
    ids = [neptune.create_experiment(upload_source_files=[]).id for _ in range(3)]
    assert ids == ["SAN-1", "SAN-2", "SAN-3"]
    neptune.set_project("team/3d-vision")
    assert neptune.create_experiment(upload_source_files=[]).id == "3DV-1"
    neptune.set_project("team/ml")
    assert neptune.create_experiment(upload_source_files=[]).id == "ML-1"
    neptune.set_project("acme/sandbox")
    assert neptune.create_experiment(upload_source_files=[]).id == "SAN-4"


_CREATOR = """
import json, sys
import expstream as neptune
neptune.init("acme/sandbox")
ids = []
for _ in range(5):
    experiment = neptune.create_experiment(upload_source_files=[], handle_uncaught_exceptions=False)
    ids.append(experiment.id)
    experiment.stop()
print(json.dumps(ids))
"""


def test_ids_have_no_gaps_or_duplicates_across_processes(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("NEPTUNE_PROJECT", "EXPSTREAM_PROJECT", "NEPTUNE_BACKEND")}
    env["EXPSTREAM_HOME"] = str(home)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _CREATOR], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    ids: list[str] = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        ids.extend(json.loads(out.strip().splitlines()[-1]))
    assert len(ids) == 15
    assert all(i.startswith("SAN-") for i in ids)
    assert sorted(int(i.split("-")[1]) for i in ids) == list(range(1, 16))
    neptune.init("acme/sandbox")
    later = neptune.create_experiment(upload_source_files=[])
    assert later.id == "SAN-16"
    later.stop()
