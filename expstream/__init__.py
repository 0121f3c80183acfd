"""expstream: a self-hosted experiment tracker that speaks the legacy Neptune client API.

Change one line of a legacy script, ``import expstream as neptune``, and it runs: every log point,
tag and property change becomes an Avro event; consumers materialize them into ClickHouse tables
(chdb, embedded, when no services are configured) and the query side reads them back.

The module-level functions below only delegate to the current ``Project`` / ``Experiment``.
"""

from __future__ import annotations

import os
import threading
from typing import Any

# In a source checkout the subpackages are the top-level folders beside this one (producer/,
# consumers/, query/, schemas/, deploy/; pyproject.toml maps them into this namespace when
# installing). Let imports find them there too, so that code run from the repository root gets a
# whole `expstream` whether or not it is installed.
_checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if os.path.isfile(os.path.join(_checkout, "pyproject.toml")) and os.path.isdir(os.path.join(_checkout, "producer")):
    __path__.append(_checkout)

from expstream import api_exceptions, envs, exceptions
from expstream.backend import Backend, HostedNeptuneBackend, OfflineBackend, StreamBackend
from expstream.config import Settings, load_settings
from expstream.exceptions import (
    InvalidNeptuneBackend,
    NeptuneMissingProjectQualifiedNameException,
    NeptuneNoExperimentContextException,
    NeptuneUninitializedException,
)
from expstream.experiments import Experiment
from expstream.git_info import GitInfo
from expstream.producer.hotpath import module_log_metric
from expstream.projects import Project
from expstream.sessions import Session

__version__ = "0.1.0"

__all__ = [
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
]

#: accepted for compatibility; expstream needs no token (docs/legacy-behaviour.md#api-token)
ANONYMOUS = "ANONYMOUS"
ANONYMOUS_API_TOKEN = "expstream-needs-no-api-token"

session: Session | None = None
project: Project | None = None
_lock = threading.RLock()
_backends: dict[Settings, StreamBackend] = {}


def _default_backend(api_token: str | None, proxies: Any) -> Backend:
    settings = load_settings()
    if settings.backend == "offline":
        return OfflineBackend(selected_by=f"{envs.BACKEND}=offline")
    if settings.backend:
        raise InvalidNeptuneBackend(settings.backend)
    backend = _backends.get(settings)
    if backend is None:
        backend = _backends[settings] = HostedNeptuneBackend(api_token, proxies, settings=settings)
    return backend


def init(
    project_qualified_name: str | None = None,
    api_token: str | None = None,
    proxies: Any = None,
    backend: Backend | None = None,
) -> Project:
    """Choose the project that later calls work in; returns it."""
    global session, project
    with _lock:
        if project_qualified_name is None:
            project_qualified_name = load_settings().project
        session = Session(backend=backend if backend is not None else _default_backend(api_token, proxies))
        if project_qualified_name is None:
            raise NeptuneMissingProjectQualifiedNameException()
        project = session.get_project(project_qualified_name)
        return project


def set_project(project_qualified_name: str) -> Project:
    """Switch to another project (a fresh experiment stack, as in the legacy client)."""
    global project
    with _lock:
        if session is None:
            return init(project_qualified_name)
        project = session.get_project(project_qualified_name)
        return project


def create_experiment(
    name: str | None = None,
    description: str | None = None,
    params: dict[str, Any] | None = None,
    properties: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    upload_source_files: str | list[str] | None = None,
    abort_callback: Any = None,
    logger: Any = None,
    upload_stdout: bool = True,
    upload_stderr: bool = True,
    send_hardware_metrics: bool = True,
    run_monitoring_thread: bool = True,
    handle_uncaught_exceptions: bool = True,
    git_info: GitInfo | None = None,
    hostname: str | None = None,
    notebook_id: str | None = None,
    run_id: str | None = None,
) -> Experiment:
    """Create an experiment in the current project; see ``Project.create_experiment``."""
    with _lock:
        if project is None:
            raise NeptuneUninitializedException()
        return project.create_experiment(
            name=name,
            description=description,
            params=params,
            properties=properties,
            tags=tags,
            upload_source_files=upload_source_files,
            abort_callback=abort_callback,
            logger=logger,
            upload_stdout=upload_stdout,
            upload_stderr=upload_stderr,
            send_hardware_metrics=send_hardware_metrics,
            run_monitoring_thread=run_monitoring_thread,
            handle_uncaught_exceptions=handle_uncaught_exceptions,
            git_info=git_info,
            hostname=hostname,
            notebook_id=notebook_id,
            run_id=run_id,
        )


def get_experiment() -> Experiment:
    """The most recently created experiment that is still running.

    Lock-free: every module-level ``log_*`` call passes here, and reading the global and the top of
    the project's stack are single atomic reads (``init`` and ``set_project`` replace the global whole).
    """
    current_project = project
    if current_project is None:
        raise NeptuneUninitializedException()
    if isinstance(current_project, Project):
        current = current_project._current()
        if current is None:
            raise NeptuneNoExperimentContextException()
        return current
    return current_project  # offline NoopObject answers everything


def append_tag(tag: str | list[str], *tags: str) -> None:
    get_experiment().append_tag(tag, *tags)


def append_tags(tag: str | list[str], *tags: str) -> None:
    get_experiment().append_tag(tag, *tags)


def remove_tag(tag: str) -> None:
    get_experiment().remove_tag(tag)


def set_property(key: str, value: Any) -> None:
    get_experiment().set_property(key, value)


def remove_property(key: str) -> None:
    get_experiment().remove_property(key)


def send_metric(channel_name: str, x: Any, y: Any = None, timestamp: Any = None) -> None:
    return get_experiment().send_metric(channel_name, x, y, timestamp)


def _log_metric_general(log_name: str, x: Any, y: Any = None, timestamp: Any = None) -> None:
    """The module-level ``log_metric`` when there is no open stream to go to: it opens one, or raises."""
    get_experiment().log_metric(log_name, x, y, timestamp)


#: ``exp.log_metric`` of the current experiment. Legacy training loops call this millions of times, so the
#: common case (a project whose current experiment has its stream open) goes straight to that stream in one
#: C call, as ``exp.log_metric`` does (producer/hotpath.py); anything else takes :func:`_log_metric_general`.
log_metric = module_log_metric(globals(), _log_metric_general)


def send_text(channel_name: str, x: Any, y: Any = None, timestamp: Any = None) -> None:
    get_experiment().send_text(channel_name, x, y, timestamp)


def log_text(log_name: str, x: Any, y: Any = None, timestamp: Any = None) -> None:
    get_experiment().send_text(log_name, x, y, timestamp)


def send_image(
    channel_name: str,
    x: Any,
    y: Any = None,
    name: str | None = None,
    description: str | None = None,
    timestamp: Any = None,
) -> None:
    get_experiment().send_image(channel_name, x, y, name, description, timestamp)


def log_image(
    log_name: str,
    x: Any,
    y: Any = None,
    image_name: str | None = None,
    description: str | None = None,
    timestamp: Any = None,
) -> None:
    get_experiment().send_image(log_name, x, y, image_name, description, timestamp)


def send_artifact(artifact: Any, destination: str | None = None) -> None:
    get_experiment().log_artifact(artifact, destination)


def log_artifact(artifact: Any, destination: str | None = None) -> None:
    get_experiment().log_artifact(artifact, destination)


def delete_artifacts(path: str | list[str]) -> None:
    get_experiment().delete_artifacts(path)


def stop(traceback: str | None = None) -> None:
    get_experiment().stop(traceback)
