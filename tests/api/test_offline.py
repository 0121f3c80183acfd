"""Offline mode: everything is accepted, nothing is recorded, getters are empty and iteration ends.

docs/legacy-behaviour.md#offline-mode
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import expstream as neptune
from expstream.backend import NoopObject, OfflineBackend
from expstream.exceptions import (
    NeptuneIncorrectProjectQualifiedNameException,
    NeptuneMissingProjectQualifiedNameException,
    ProjectNotFound,
)


@pytest.fixture(params=["argument", "environment"])
def offline(request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """``init`` in offline mode, through ``init(backend=OfflineBackend())`` or ``NEPTUNE_BACKEND=offline``."""
    if request.param == "argument":
        project = neptune.init("dry-run/project", backend=OfflineBackend())
    else:
        monkeypatch.setenv("NEPTUNE_BACKEND", "offline")
        project = neptune.init("tests/dry-run")
    yield project
    assert not home.exists(), "offline mode must not write anything"


def test_offline_backend_warns_twice(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="expstream"):
        OfflineBackend()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "offline" in warnings[0].getMessage().lower()


def test_explicit_offline_backend_does_not_claim_the_environment_variable(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEPTUNE_BACKEND", raising=False)
    with caplog.at_level(logging.WARNING, logger="expstream"):
        neptune.init("dry-run/project", backend=OfflineBackend())
    first = next(r for r in caplog.records if r.levelno == logging.WARNING).getMessage()
    assert "NEPTUNE_BACKEND" not in first
    assert "OfflineBackend()" in first


def test_offline_by_environment_says_so(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEPTUNE_BACKEND", "offline")
    with caplog.at_level(logging.WARNING, logger="expstream"):
        neptune.init("dry-run/project")
    first = next(r for r in caplog.records if r.levelno == logging.WARNING).getMessage()
    assert "NEPTUNE_BACKEND=offline" in first


def test_init_returns_a_noop_project(offline: object) -> None:
    assert isinstance(offline, NoopObject)
    assert neptune.project is offline
    assert isinstance(neptune.session, neptune.Session)


def test_get_experiment_never_raises(offline: object) -> None:
    assert isinstance(neptune.get_experiment(), NoopObject)  # even before create_experiment
    neptune.create_experiment()
    assert isinstance(neptune.get_experiment(), NoopObject)
    neptune.stop()
    assert isinstance(neptune.get_experiment(), NoopObject)


def test_everything_is_accepted(offline: object, tmp_path: Path) -> None:
    excepthook, stdout, stderr = sys.excepthook, sys.stdout, sys.stderr
    exp = neptune.create_experiment(
        name=123, params="not a dict", tags=["not a valid tag"], upload_source_files=["*.py"]
    )  # arguments are not validated offline
    assert isinstance(exp, NoopObject)
    assert (sys.excepthook, sys.stdout, sys.stderr) == (excepthook, stdout, stderr)  # nothing started
    exp.log_metric("m", "abc")
    exp.log_metric("m", None, None)
    exp.log_metric("m", y=0.5)
    exp.log_text("t", 5)
    exp.log_image("i", object())
    exp.send_metric("m", 1)
    exp.send_text("t", "x")
    exp.send_image("i", "missing.png", name="n")
    exp.append_tag("bad tag")
    exp.append_tags(["a", "b"])
    exp.remove_tag("never")
    exp.set_property("k", object())
    exp.remove_property("missing")
    exp.log_artifact(str(tmp_path / "missing.bin"))
    exp.log_artifact(io.BytesIO(b"x"))
    exp.send_artifact("x", "../escape")
    exp.delete_artifacts("")
    exp.reset_log("never-logged")
    exp.download_artifact("missing", str(tmp_path / "dl"))
    exp.download_artifacts()
    exp.download_sources()
    exp.wait()
    exp.sync()
    exp.stop("traceback")
    exp.stop()
    with exp as inside:
        inside.log_metric("m", 1.0)
    with neptune.create_experiment() as block:
        assert isinstance(block, NoopObject)
    neptune.send_metric("m", "abc")  # returns what the method returns (legacy: the no-op object offline)
    for call in (
        lambda: neptune.log_metric("m", "abc"),
        lambda: neptune.log_text("t", 5),
        lambda: neptune.send_text("t", "x"),
        lambda: neptune.log_image("i", object(), image_name="n"),
        lambda: neptune.send_image("i", object(), name="n"),
        lambda: neptune.append_tag("bad tag", "x"),
        lambda: neptune.append_tags(["a"]),
        lambda: neptune.remove_tag("a"),
        lambda: neptune.set_property("k", 1),
        lambda: neptune.remove_property("missing"),
        lambda: neptune.log_artifact("missing.bin"),
        lambda: neptune.send_artifact("missing.bin"),
        lambda: neptune.delete_artifacts(".."),
        lambda: neptune.stop(),
    ):
        assert call() is None
    assert not (tmp_path / "dl").exists()  # downloads did nothing


def test_getters_are_empty(offline: object) -> None:
    exp = neptune.create_experiment()
    exp.log_metric("m", 1.0)
    assert exp.get_parameters() == {}
    assert exp.get_properties() == {}
    assert exp.get_system_properties() == {}
    assert exp.get_tags() == []
    assert exp.get_logs() == {}
    assert exp.get_channels() == {}
    for frame in (
        exp.get_numeric_channels_values("m"),
        exp.get_numeric_channels_values(),
        exp.get_hardware_utilization(),
        offline.get_leaderboard(),  # type: ignore[attr-defined]
        offline.get_leaderboard(state="running"),  # type: ignore[attr-defined]
    ):
        assert isinstance(frame, pd.DataFrame) and frame.empty
    assert offline.get_experiments() == []  # type: ignore[attr-defined]
    assert offline.get_experiments(id="X-1", tag=["a"]) == []  # type: ignore[attr-defined]
    assert offline.get_members() == []  # type: ignore[attr-defined]


def test_iteration_ends(offline: object) -> None:
    exp = neptune.create_experiment()
    assert list(exp) == []
    assert len(exp) == 0
    assert set(exp.get_logs().keys()) == set()
    assert [t for t in exp.get_tags()] == []
    assert list(exp["anything"]) == []
    assert list(exp.some.attribute.chain()) == []
    assert dict(exp.get_parameters()) == {}
    assert bool(exp) is True  # `if experiment:` still takes the branch


def test_offline_still_needs_a_well_formed_project_name(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NeptuneMissingProjectQualifiedNameException):
        neptune.init(backend=OfflineBackend())
    with pytest.raises(NeptuneIncorrectProjectQualifiedNameException):
        neptune.init("no-slash", backend=OfflineBackend())
    with pytest.raises(ProjectNotFound):
        neptune.init("", backend=OfflineBackend())
    monkeypatch.setenv("NEPTUNE_BACKEND", "offline")
    with pytest.raises(NeptuneMissingProjectQualifiedNameException):
        neptune.init()
    with pytest.raises(NeptuneIncorrectProjectQualifiedNameException):
        neptune.init("a/b/c")
    monkeypatch.setenv("NEPTUNE_PROJECT", "dry-run/project")
    assert isinstance(neptune.init(), NoopObject)
    assert not home.exists()


def test_session_with_the_offline_backend(home: Path) -> None:
    session = neptune.Session(backend=OfflineBackend())
    project = session.get_project("dry-run/project")
    assert isinstance(project, NoopObject)
    exp = project.create_experiment("anything")
    exp.log_metric("m", 1.0)
    assert exp.get_logs() == {}
    assert session.get_projects("dry-run") == {}
    with pytest.raises(NeptuneIncorrectProjectQualifiedNameException):
        session.get_project("bad")
    assert not home.exists()


def test_set_project_in_offline_mode(offline: object) -> None:
    other = neptune.set_project("dry-run/other")
    assert isinstance(other, NoopObject)
    assert neptune.project is other
    assert isinstance(neptune.get_experiment(), NoopObject)
