"""``Project`` and ``Session``: identity, create_experiment, parameter typing, get_experiments."""

from __future__ import annotations

import logging
import platform
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import expstream as neptune
from expstream.api_exceptions import NamespaceNotFound
from expstream.backend import StreamBackend
from expstream.exceptions import NeptuneIncorrectProjectQualifiedNameException, ProjectNotFound
from expstream.experiments import Experiment
from expstream.projects import Project
from expstream.sessions import Session

# --- identity -------------------------------------------------------------------------------------


def test_project_identity(project: Project) -> None:
    assert (project.namespace, project.name, project.full_id) == ("acme", "sandbox", "acme/sandbox")
    assert str(project) == repr(project) == "Project(acme/sandbox)"
    assert uuid.UUID(project.internal_id)
    assert project == project
    other = neptune.Session(backend=project._backend).get_project("acme/sandbox")
    assert other.internal_id == project.internal_id  # the same project, deterministically
    assert other != project  # each object holds its own lock: only the same object is equal (legacy)


# --- create_experiment ----------------------------------------------------------------------------


def test_create_experiment_defaults(project: Project, sync: Callable[..., None]) -> None:
    experiment = project.create_experiment(upload_source_files=[])
    assert isinstance(experiment, Experiment)
    assert experiment.name == "Untitled"
    assert experiment.state == "running"
    assert neptune.get_experiment() is experiment
    sync(experiment)
    assert experiment.get_parameters() == {}
    assert experiment.get_properties() == {}
    assert experiment.get_tags() == []
    system = experiment.get_system_properties()
    assert (system["name"], system["description"], system["notes"]) == ("Untitled", "", "")
    assert system["hostname"] == platform.node()
    assert system["tags"] == []


def test_create_experiment_with_everything(project: Project, sync: Callable[..., None]) -> None:
    experiment = neptune.create_experiment(
        name="full",
        description="what it does",
        params={"lr": 0.01},
        properties={"data": "v2"},
        tags=["b-tag", "a-tag"],
        upload_source_files=[],
        hostname="trainer-7",
        send_hardware_metrics=False,
        run_monitoring_thread=False,
        handle_uncaught_exceptions=False,
        upload_stdout=False,
        upload_stderr=False,
        notebook_id="nb-1",
    )
    sync(experiment)
    system = experiment.get_system_properties()
    assert (system["name"], system["description"], system["notes"]) == ("full", "what it does", "what it does")
    assert system["hostname"] == "trainer-7"
    assert system["tags"] == ["a-tag", "b-tag"]
    assert experiment.get_parameters() == {"lr": 0.01}
    assert experiment.get_properties() == {"data": "v2"}
    experiment.stop()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": 1},
        {"name": b"bytes"},
        {"description": 3.5},
        {"hostname": 42},
        {"params": [("lr", 0.1)]},
        {"params": "lr=0.1"},
        {"properties": ["a"]},
        {"properties": 1},
    ],
    ids=lambda kw: f"{next(iter(kw))}={next(iter(kw.values()))!r}",
)
def test_create_experiment_value_errors_create_nothing(project: Project, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        project.create_experiment(upload_source_files=[], **kwargs)
    with pytest.raises(neptune.exceptions.NeptuneNoExperimentContextException):
        neptune.get_experiment()
    assert project.create_experiment(upload_source_files=[]).id == "SAN-1"  # no number was used up


def test_parameter_typing(project: Project, sync: Callable[..., None]) -> None:
    """Finite numbers come back as float, everything else as the stored string.

    docs/legacy-behaviour.md#parameter-typing
    """
    params = {
        "flag": True,
        "off": False,
        "batch": 128,
        "lr": 0.5,
        "negative": -3,
        "nan": float("nan"),
        "inf": float("inf"),
        "ninf": float("-inf"),
        "layers": [64, 32],
        "optimizer": "adam",
        "nothing": None,
        "nested": {"a": 1},
    }
    experiment = project.create_experiment(params=params, upload_source_files=[])
    sync(experiment)
    assert experiment.get_parameters() == {
        "flag": "True",
        "off": "False",
        "batch": 128.0,
        "lr": 0.5,
        "negative": -3.0,
        "nan": "NaN",
        "inf": "Infinity",
        "ninf": "-Infinity",
        "layers": "[64, 32]",
        "optimizer": "adam",
        "nothing": "None",
        "nested": "{'a': 1}",
    }
    got = experiment.get_parameters()
    assert type(got["batch"]) is float and type(got["flag"]) is str


def test_properties_are_stored_as_str(project: Project, sync: Callable[..., None]) -> None:
    experiment = project.create_experiment(
        properties={"n": 42, "lst": [1, 2, 3], "s": "text", "f": 0.25, "b": True, "nested/key": None},
        upload_source_files=[],
    )
    sync(experiment)
    assert experiment.get_properties() == {
        "n": "42",
        "lst": "[1, 2, 3]",
        "s": "text",
        "f": "0.25",
        "b": "True",
        "nested/key": "None",
    }


# --- get_experiments ------------------------------------------------------------------------------


@pytest.fixture
def three(home: Path, sync: Callable[..., None]) -> list[Experiment]:
    """SAN-1 succeeded with tags a, b; SAN-2 failed with tag a; SAN-3 running, no tags; owner alice."""
    project = neptune.init("acme/sandbox")
    first = project.create_experiment("first", params={"p": 1}, tags=["a", "b"], upload_source_files=[])
    second = project.create_experiment("second", tags=["a"], upload_source_files=[])
    third = project.create_experiment("third", upload_source_files=[])
    first.stop()
    second.stop("Traceback (most recent call last): boom")
    sync(first, second, third)
    return [first, second, third]


def _ids(found: list[Experiment]) -> list[str]:
    return [e.id for e in found]


def test_get_experiments_filters(owner: str, three: list[Experiment]) -> None:
    project = neptune.project
    assert isinstance(project, Project)
    assert _ids(project.get_experiments()) == ["SAN-1", "SAN-2", "SAN-3"]
    # id
    assert _ids(project.get_experiments(id="SAN-2")) == ["SAN-2"]
    assert _ids(project.get_experiments(id=["SAN-3", "SAN-1"])) == ["SAN-1", "SAN-3"]
    assert _ids(project.get_experiments(id="SAN-99")) == []
    # state
    assert _ids(project.get_experiments(state="succeeded")) == ["SAN-1"]
    assert _ids(project.get_experiments(state=["failed", "running"])) == ["SAN-2", "SAN-3"]
    assert _ids(project.get_experiments(state="aborted")) == []
    # owner
    assert _ids(project.get_experiments(owner="alice")) == ["SAN-1", "SAN-2", "SAN-3"]
    assert _ids(project.get_experiments(owner=["bob", "alice"])) == ["SAN-1", "SAN-2", "SAN-3"]
    assert _ids(project.get_experiments(owner="bob")) == []
    # tag: all listed tags are needed
    assert _ids(project.get_experiments(tag="a")) == ["SAN-1", "SAN-2"]
    assert _ids(project.get_experiments(tag=["a", "b"])) == ["SAN-1"]
    assert _ids(project.get_experiments(tag=["b", "zzz"])) == []
    # min_running_time, in seconds
    assert _ids(project.get_experiments(min_running_time=0)) == ["SAN-1", "SAN-2", "SAN-3"]
    assert _ids(project.get_experiments(min_running_time=3600)) == []
    time.sleep(1.1)  # SAN-1 and SAN-2 finished at once; SAN-3 keeps running
    assert _ids(project.get_experiments(min_running_time=1)) == ["SAN-3"]
    # filters are ANDed
    assert _ids(project.get_experiments(tag="a", state="failed")) == ["SAN-2"]
    assert _ids(project.get_experiments(id=["SAN-1", "SAN-2"], state="running")) == []
    assert project.get_members() == ["alice"]


def test_get_experiments_returns_readable_experiments(three: list[Experiment]) -> None:
    project = neptune.project
    assert isinstance(project, Project)
    found = project.get_experiments()
    assert found == three  # same id, internal id and project
    assert all(a is not b for a, b in zip(found, three, strict=True))
    first, second, third = found
    assert [e.state for e in found] == ["succeeded", "failed", "running"]  # read from the tables
    assert [e.name for e in found] == ["first", "second", "third"]
    assert first.get_parameters() == {"p": 1.0}
    assert first.get_tags() == ["a", "b"]
    assert second.get_tags() == ["a"]
    assert first.get_system_properties()["finished"] is not None
    assert third.get_system_properties()["finished"] is None
    # not pushed on the experiment stack: the running one created last is still current
    assert neptune.get_experiment() is three[2]


def test_experiment_from_get_experiments_can_write(three: list[Experiment], sync: Callable[..., None]) -> None:
    """Legacy scripts tag and annotate finished experiments they look up."""
    project = neptune.project
    assert isinstance(project, Project)
    (found,) = project.get_experiments(id="SAN-1")
    found.append_tag("best")
    found.set_property("verdict", "keep")
    found.remove_tag("b")
    sync(found)
    assert found.get_tags() == ["a", "best"]
    assert found.get_properties() == {"verdict": "keep"}
    assert _ids(project.get_experiments(tag="best")) == ["SAN-1"]
    assert found.state == "succeeded"


def test_looked_up_finished_experiment_stays_finished(
    three: list[Experiment], sync: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    """Finished states are final and a finished experiment records no points, also when looked up.

    docs/legacy-behaviour.md#finished-experiments
    """
    project = neptune.project
    assert isinstance(project, Project)
    (failed,) = project.get_experiments(id="SAN-2")
    (succeeded,) = project.get_experiments(id="SAN-1")
    with caplog.at_level(logging.WARNING, logger="expstream"):
        failed.log_metric("late", 1.0)
        failed.log_text("late-text", "x")
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "'late'" in warned and "'late-text'" in warned
    failed.stop()
    succeeded.stop("a traceback")
    sync(failed, succeeded)
    assert failed.state == "failed"
    assert succeeded.state == "succeeded"
    assert [e.state for e in project.get_experiments()] == ["succeeded", "failed", "running"]
    assert failed.get_logs() == {}


def test_looked_up_running_experiment_can_be_stopped(three: list[Experiment], sync: Callable[..., None]) -> None:
    project = neptune.project
    assert isinstance(project, Project)
    (running,) = project.get_experiments(id="SAN-3")
    running.log_metric("m", 1.0)
    running.stop()
    sync(running)
    assert running.state == "succeeded"
    assert running.get_numeric_channels_values("m")["m"].tolist() == [1.0]


def test_looked_up_experiment_continues_automatic_x(project: Project, sync: Callable[..., None]) -> None:
    exp = project.create_experiment(upload_source_files=[])
    exp.log_metric("m", 1.0)
    exp.log_metric("m", 2.0)
    sync(exp)
    (found,) = project.get_experiments(id=exp.id)
    found.log_metric("m", 3.0)
    sync(found)
    values = exp.get_numeric_channels_values("m")
    assert values["x"].tolist() == [0.0, 1.0, 2.0]
    assert values["m"].tolist() == [1.0, 2.0, 3.0]


def test_get_members_without_experiments_is_empty(project: Project, reading: StreamBackend) -> None:
    assert project.get_members() == []
    assert project.get_experiments() == []


def test_get_experiments_does_not_mix_projects(project: Project, sync: Callable[..., None]) -> None:
    here = project.create_experiment(upload_source_files=[])
    other_project = neptune.Session(backend=project._backend).get_project("acme/other")
    there = other_project.create_experiment(upload_source_files=[])
    sync(here, there)
    assert _ids(project.get_experiments()) == ["SAN-1"]
    assert _ids(other_project.get_experiments()) == ["OTH-1"]
    there.stop()


# --- Session --------------------------------------------------------------------------------------


def test_session_get_project_and_get_projects(backend: StreamBackend, sync: Callable[..., None]) -> None:
    session = Session(backend=backend)
    project = session.get_project("acme/sandbox")
    assert isinstance(project, Project) and project.full_id == "acme/sandbox"
    experiments = [
        project.create_experiment(upload_source_files=[]),
        session.get_project("acme/zoo").create_experiment(upload_source_files=[]),
        session.get_project("other/thing").create_experiment(upload_source_files=[]),
    ]
    sync(*experiments)
    projects = session.get_projects("acme")
    assert isinstance(projects, OrderedDict)
    assert list(projects) == ["acme/sandbox", "acme/zoo"]
    assert all(isinstance(p, Project) and p.full_id == name for name, p in projects.items())
    assert list(session.get_projects("other")) == ["other/thing"]
    for experiment in experiments:
        experiment.stop()


def test_session_get_projects_of_an_unknown_namespace(backend: StreamBackend, sync: Callable[..., None]) -> None:
    session = Session(backend=backend)
    experiment = session.get_project("acme/sandbox").create_experiment(upload_source_files=[])
    sync(experiment)
    with pytest.raises(NamespaceNotFound):
        session.get_projects("nobody")
    experiment.stop()


def test_session_get_project_validates_names(backend: StreamBackend) -> None:
    session = Session(backend=backend)
    with pytest.raises(ProjectNotFound):
        session.get_project("")
    with pytest.raises(NeptuneIncorrectProjectQualifiedNameException):
        session.get_project("no-slash")
    with pytest.raises(NeptuneIncorrectProjectQualifiedNameException):
        session.get_project("a/b/c")
