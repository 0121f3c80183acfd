"""The public surface: ``expstream.__all__``, the legacy import surface and the legacy signatures.

docs/legacy-behaviour.md#public-surface
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.metadata
import inspect
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import expstream
from expstream import api_exceptions, envs, exceptions, git_info, utils
from expstream.backend import Backend, HostedNeptuneBackend, OfflineBackend, StreamBackend
from expstream.experiments import Experiment
from expstream.projects import Project
from expstream.sessions import Session

# --- expstream.__all__ ----------------------------------------------------------------------------

_ALL = {
    "ANONYMOUS",
    "ANONYMOUS_API_TOKEN",
    "Backend",
    "Experiment",
    "GitInfo",
    "HostedNeptuneBackend",
    "OfflineBackend",
    "Project",
    "Session",
    "Settings",
    "StreamBackend",
    "__version__",
    "api_exceptions",
    "append_tag",
    "append_tags",
    "create_experiment",
    "delete_artifacts",
    "envs",
    "exceptions",
    "get_experiment",
    "init",
    "log_artifact",
    "log_image",
    "log_metric",
    "log_text",
    "project",
    "remove_property",
    "remove_tag",
    "send_artifact",
    "send_image",
    "send_metric",
    "send_text",
    "session",
    "set_project",
    "set_property",
    "stop",
}


def test_all_is_pinned() -> None:
    assert set(expstream.__all__) == _ALL
    assert len(expstream.__all__) == len(_ALL)  # no duplicates


def test_every_name_in_all_resolves() -> None:
    for name in expstream.__all__:
        assert hasattr(expstream, name), name


def test_star_import() -> None:
    namespace: dict[str, Any] = {}
    exec("from expstream import *", namespace)
    assert _ALL <= set(namespace)


def test_top_level_classes_are_the_class_homes() -> None:
    assert expstream.Experiment is Experiment
    assert expstream.Project is Project
    assert expstream.Session is Session
    assert expstream.Backend is Backend
    assert expstream.OfflineBackend is OfflineBackend
    assert expstream.HostedNeptuneBackend is HostedNeptuneBackend
    assert expstream.StreamBackend is StreamBackend
    assert expstream.GitInfo is git_info.GitInfo
    assert expstream.exceptions is exceptions
    assert expstream.api_exceptions is api_exceptions
    assert expstream.envs is envs


def test_constants_and_version() -> None:
    assert expstream.ANONYMOUS == "ANONYMOUS"
    assert isinstance(expstream.ANONYMOUS_API_TOKEN, str) and expstream.ANONYMOUS_API_TOKEN
    assert isinstance(expstream.__version__, str)
    assert expstream.__version__ == importlib.metadata.version("expstream")


def test_globals_are_none_before_init(home: Path) -> None:
    assert expstream.project is None
    assert expstream.session is None


def test_backends() -> None:
    assert inspect.isabstract(Backend)
    with pytest.raises(TypeError):
        Backend()  # type: ignore[abstract]
    for cls in (OfflineBackend, HostedNeptuneBackend, StreamBackend):
        assert issubclass(cls, Backend)
    assert callable(Backend.get_project)


# --- the legacy import surface --------------------------------------------------------------------

#: the legacy ``neptune.exceptions``, with the constructor arguments of each class
_EXCEPTIONS: dict[str, tuple[Any, ...]] = {
    "NeptuneException": (),
    "NeptuneUninitializedException": (),
    "NeptuneNoExperimentContextException": (),
    "NeptuneMissingApiTokenException": (),
    "NeptuneMissingProjectQualifiedNameException": (),
    "NeptuneIncorrectProjectQualifiedNameException": ("bad/name/x",),
    "InvalidNeptuneBackend": ("hosted",),
    "NoChannelValue": (),
    "InvalidChannelValue": ("float", "str"),
    "InvalidChannelX": (float("nan"),),
    "FileNotFound": ("some/path",),
    "NotADirectory": ("some/path",),
    "NotAFile": ("some/path",),
    "InvalidNotebookPath": ("nb.txt",),
    "NeptuneLibraryNotInstalledException": ("torch",),
}

#: the legacy ``neptune.api_exceptions``, with the constructor arguments of each class
_API_EXCEPTIONS: dict[str, tuple[Any, ...]] = {
    "NeptuneApiException": (),
    "SSLError": (),
    "ConnectionLost": (),
    "ServerError": (),
    "Unauthorized": (),
    "Forbidden": (),
    "InvalidApiKey": (),
    "NamespaceNotFound": ("acme",),
    "ProjectNotFound": ("acme/sandbox",),
    "PathInProjectNotFound": ("a/b", "acme/sandbox"),
    "ExperimentNotFound": ("SAN-1", "acme/sandbox"),
    "ExperimentAlreadyFinished": ("SAN-1",),
    "ExperimentLimitReached": (),
    "StorageLimitReached": (),
    "ExperimentValidationError": ("invalid tag",),
    "ChannelAlreadyExists": ("SAN-1", "loss"),
    "ChannelDoesNotExist": ("SAN-1", "loss"),
    "ChannelNotFound": ("channel-id",),
    "ChannelsValuesSendBatchError": ("SAN-1", ["error"]),
    "NotebookNotFound": ("nb-1",),
}


@pytest.mark.parametrize("name", list(_EXCEPTIONS))
def test_legacy_exceptions(name: str) -> None:
    cls = getattr(exceptions, name)
    assert isinstance(cls, type) and issubclass(cls, exceptions.NeptuneException)
    assert issubclass(cls, Exception)
    error = cls(*_EXCEPTIONS[name])
    with pytest.raises(cls):
        raise error
    for argument in _EXCEPTIONS[name]:
        if isinstance(argument, str):
            assert argument in str(error), (name, argument)


@pytest.mark.parametrize("name", list(_API_EXCEPTIONS))
def test_legacy_api_exceptions(name: str) -> None:
    cls = getattr(api_exceptions, name)
    assert cls is getattr(exceptions, name)  # one class, reachable from both modules
    assert issubclass(cls, exceptions.NeptuneException)
    if name == "SSLError":
        assert not issubclass(cls, api_exceptions.NeptuneApiException)  # as legacy
    else:
        assert issubclass(cls, api_exceptions.NeptuneApiException)
    error = cls(*_API_EXCEPTIONS[name])
    for argument in _API_EXCEPTIONS[name]:
        if isinstance(argument, str):
            assert argument in str(error), (name, argument)
    assert name in api_exceptions.__all__


def test_notebook_not_found_takes_an_optional_project() -> None:
    assert "acme/sandbox" in str(api_exceptions.NotebookNotFound("nb-1", project="acme/sandbox"))


def test_artifact_path_error_is_a_value_error() -> None:
    assert issubclass(exceptions.ArtifactPathError, ValueError)
    assert issubclass(exceptions.ArtifactPathError, exceptions.NeptuneException)


def test_envs_constants() -> None:
    assert envs.PROJECT_ENV_NAME == "NEPTUNE_PROJECT"
    assert envs.API_TOKEN_ENV_NAME == "NEPTUNE_API_TOKEN"
    assert envs.NOTEBOOK_ID_ENV_NAME == "NEPTUNE_NOTEBOOK_ID"
    assert envs.NOTEBOOK_PATH_ENV_NAME == "NEPTUNE_NOTEBOOK_PATH"
    assert envs.BACKEND == "NEPTUNE_BACKEND"


def test_git_info() -> None:
    assert expstream.GitInfo is git_info.GitInfo
    info = git_info.GitInfo(
        commit_id="abc123",
        message="msg",
        author_name="Ada",
        author_email="ada@example.com",
        commit_date=dt.datetime(2021, 1, 18, tzinfo=dt.timezone.utc),
        repository_dirty=False,
        active_branch="main",
        remote_urls=["https://example.com/repo.git"],
    )
    assert (info.commit_id, info.active_branch, info.repository_dirty) == ("abc123", "main", False)
    assert info.remote_urls == ["https://example.com/repo.git"]
    with pytest.raises(TypeError):
        git_info.GitInfo(commit_id=None)  # type: ignore[arg-type]


def test_get_git_info(tmp_path: Path) -> None:
    assert utils.get_git_info is git_info.get_git_info
    assert utils.get_git_info(str(tmp_path)) is None  # not a repository
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    try:
        git("init", "-q", "-b", "trunk")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("no usable git binary")
    git("-c", "user.name=Ada", "-c", "user.email=ada@example.com", "commit", "-q", "--allow-empty", "-m", "first")
    info = utils.get_git_info(str(repo))
    assert isinstance(info, git_info.GitInfo)
    assert len(info.commit_id) == 40
    assert (info.message, info.author_name, info.author_email) == ("first", "Ada", "ada@example.com")
    assert info.active_branch == "trunk"
    assert info.repository_dirty is False
    (repo / "untracked.txt").write_text("x")
    dirty = utils.get_git_info(str(repo))
    assert dirty is not None and dirty.repository_dirty is True  # untracked files count


_FRESH_IMPORT = """
import json, sys
import expstream as neptune
out = {
    "exceptions": neptune.exceptions.NeptuneNoExperimentContextException.__name__,
    "api_exceptions": neptune.api_exceptions.ProjectNotFound.__name__,
    "envs": neptune.envs.BACKEND,
}
from expstream.experiments import Experiment
from expstream.projects import Project
from expstream.sessions import Session
from expstream.git_info import GitInfo
from expstream.utils import get_git_info
from expstream.backend import Backend
from expstream import ANONYMOUS, __version__
neptune.init("acme/sandbox")
experiment = neptune.create_experiment(upload_source_files=[], send_hardware_metrics=False)
experiment.log_metric("m", 1.0)
experiment.stop()
out["heavy"] = sorted(m for m in ("chdb", "matplotlib", "torch", "tensorflow") if m in sys.modules)
print(json.dumps(out))
"""


def test_bare_import_gives_the_legacy_modules_and_stays_lean(home: Path) -> None:
    """neptune-contrib reaches ``neptune.exceptions`` after a bare import; logging never loads the query engine."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("NEPTUNE_PROJECT", "EXPSTREAM_PROJECT", "NEPTUNE_BACKEND")}
    env["EXPSTREAM_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-c", _FRESH_IMPORT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {
        "exceptions": "NeptuneNoExperimentContextException",
        "api_exceptions": "ProjectNotFound",
        "envs": "NEPTUNE_BACKEND",
        "heavy": [],
    }


@pytest.mark.parametrize(
    "module", ["expstream.experiments", "expstream.projects", "expstream.sessions", "expstream.backend"]
)
def test_class_modules_import(module: str) -> None:
    assert importlib.import_module(module) is sys.modules[module]


# --- signatures (the legacy API documentation) ---------------------------------------------------


def _params(function: Any) -> list[tuple[str, Any]]:
    """(name, default) of every parameter but ``self``; ``*args`` shows as '*name'."""
    out = []
    for p in inspect.signature(function).parameters.values():
        if p.name == "self":
            continue
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            out.append((f"*{p.name}", None))
        else:
            out.append((p.name, p.default if p.default is not inspect.Parameter.empty else "<required>"))
    return out


R = "<required>"

_EXPERIMENT_METHODS: dict[str, list[tuple[str, Any]]] = {
    "__init__": [("backend", R), ("project", R), ("_id", R), ("internal_id", R)],
    "append_tag": [("tag", R), ("*tags", None)],
    "append_tags": [("tag", R), ("*tags", None)],
    "delete_artifacts": [("path", R)],
    "download_artifact": [("path", R), ("destination_dir", None)],
    "download_artifacts": [("path", None), ("destination_dir", None)],
    "download_sources": [("path", None), ("destination_dir", None)],
    "get_channels": [],
    "get_hardware_utilization": [],
    "get_logs": [],
    "get_numeric_channels_values": [("*channel_names", None)],
    "get_parameters": [],
    "get_properties": [],
    "get_system_properties": [],
    "get_tags": [],
    "log_artifact": [("artifact", R), ("destination", None)],
    "log_image": [
        ("log_name", R),
        ("x", R),
        ("y", None),
        ("image_name", None),
        ("description", None),
        ("timestamp", None),
    ],
    "log_metric": [("log_name", R), ("x", R), ("y", None), ("timestamp", None)],
    "log_text": [("log_name", R), ("x", R), ("y", None), ("timestamp", None)],
    "remove_property": [("key", R)],
    "remove_tag": [("tag", R)],
    "reset_log": [("log_name", R)],
    "send_artifact": [("artifact", R), ("destination", None)],
    "send_image": [
        ("channel_name", R),
        ("x", R),
        ("y", None),
        ("name", None),
        ("description", None),
        ("timestamp", None),
    ],
    "send_metric": [("channel_name", R), ("x", R), ("y", None), ("timestamp", None)],
    "send_text": [("channel_name", R), ("x", R), ("y", None), ("timestamp", None)],
    "set_property": [("key", R), ("value", R)],
    "stop": [("exc_tb", None)],
    "wait": [("timeout", None)],
    "sync": [("timeout", None)],
}


@pytest.mark.parametrize("method", list(_EXPERIMENT_METHODS))
def test_experiment_signatures_follow_the_seed(method: str) -> None:
    assert _params(getattr(Experiment, method)) == _EXPERIMENT_METHODS[method]


def test_experiment_properties_follow_the_seed() -> None:
    for name in ("id", "internal_id", "limits", "name", "state"):
        assert isinstance(inspect.getattr_static(Experiment, name), property), name
    assert Experiment.IMAGE_SIZE_LIMIT_MB == 15
    assert callable(Experiment.__enter__) and callable(Experiment.__exit__)


_CREATE = [
    ("name", None),
    ("description", None),
    ("params", None),
    ("properties", None),
    ("tags", None),
    ("upload_source_files", None),
    ("abort_callback", None),
    ("logger", None),
    ("upload_stdout", True),
    ("upload_stderr", True),
    ("send_hardware_metrics", True),
    ("run_monitoring_thread", True),
    ("handle_uncaught_exceptions", True),
    ("git_info", None),
    ("hostname", None),
    ("notebook_id", None),
]

_FILTERS = [("id", None), ("state", None), ("owner", None), ("tag", None), ("min_running_time", None)]


def _legacy_then_optional(function: Any, legacy: list[tuple[str, Any]]) -> None:
    """The legacy parameters, in order and with their defaults; expstream additions only after them, optional."""
    params = _params(function)
    assert params[: len(legacy)] == legacy
    for name, default in params[len(legacy) :]:
        assert default is None, f"expstream addition {name!r} must be optional"
    kinds = inspect.signature(function).parameters
    assert all(kinds[name].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for name, _ in legacy)


def test_project_signatures() -> None:
    assert _params(Project.__init__) == [("backend", R), ("internal_id", R), ("namespace", R), ("name", R)]
    _legacy_then_optional(Project.create_experiment, [*_CREATE, ("notebook_path", None)])
    assert _params(Project.get_experiments) == _FILTERS
    assert _params(Project.get_leaderboard) == _FILTERS
    assert _params(Project.get_members) == []
    assert isinstance(inspect.getattr_static(Project, "full_id"), property)


def test_session_signatures() -> None:
    assert _params(Session.__init__) == [("api_token", None), ("proxies", None), ("backend", None)]
    assert _params(Session.with_default_backend) == [("api_token", None)]
    assert _params(Session.get_project) == [("project_qualified_name", R)]
    assert _params(Session.get_projects) == [("namespace", R)]


_MODULE_FUNCTIONS: dict[str, list[tuple[str, Any]]] = {
    "init": [("project_qualified_name", None), ("api_token", None), ("proxies", None), ("backend", None)],
    "set_project": [("project_qualified_name", R)],
    "create_experiment": _CREATE,  # no notebook_path at module level, as legacy
    "get_experiment": [],
    "append_tag": [("tag", R), ("*tags", None)],
    "append_tags": [("tag", R), ("*tags", None)],
    "remove_tag": [("tag", R)],
    "set_property": [("key", R), ("value", R)],
    "remove_property": [("key", R)],
    "send_metric": [("channel_name", R), ("x", R), ("y", None), ("timestamp", None)],
    "log_metric": [("log_name", R), ("x", R), ("y", None), ("timestamp", None)],
    "send_text": [("channel_name", R), ("x", R), ("y", None), ("timestamp", None)],
    "log_text": [("log_name", R), ("x", R), ("y", None), ("timestamp", None)],
    "send_image": _EXPERIMENT_METHODS["send_image"],
    "log_image": _EXPERIMENT_METHODS["log_image"],
    "send_artifact": [("artifact", R), ("destination", None)],
    "log_artifact": [("artifact", R), ("destination", None)],
    "delete_artifacts": [("path", R)],
    "stop": [("traceback", None)],
}


@pytest.mark.parametrize("function", list(_MODULE_FUNCTIONS))
def test_module_function_signatures(function: str) -> None:
    if function == "create_experiment":
        _legacy_then_optional(expstream.create_experiment, _CREATE)
        assert "notebook_path" not in inspect.signature(expstream.create_experiment).parameters
    else:
        assert _params(getattr(expstream, function)) == _MODULE_FUNCTIONS[function]
