"""``Project``: creates experiments (numbered ``<KEY>-<N>``) and finds existing ones."""

from __future__ import annotations

import atexit
import logging
import os
import platform
import sys
import threading
import time
import uuid
import weakref
from typing import TYPE_CHECKING, Any

from expstream.exceptions import EventTooLarge
from expstream.execution import ExecutionOptions
from expstream.experiments import Experiment, started_experiment, validate_tags
from expstream.producer import source_files
from expstream.producer.channels import check_text, text_bytes
from expstream.producer.hotpath import ProjectCore
from expstream.producer.numbering import project_key, run_experiment_id
from expstream.producer.stream import ENVELOPE_BYTES, ExperimentStream
from expstream.rules import parameter_text
from expstream.weakhooks import call_if_alive

if TYPE_CHECKING:
    import pandas as pd

    from expstream.backend import StreamBackend
    from expstream.git_info import GitInfo

__all__ = ["Project", "project_internal_id"]

log = logging.getLogger("expstream")

_PROJECT_NAMESPACE = uuid.UUID("5b0f7c1e-7d1e-4c55-9a58-3f1f3c2d8e01")


def project_internal_id(namespace: str, name: str) -> str:
    """A project's id: the same name is the same project in every process, on every machine."""
    return str(uuid.uuid5(_PROJECT_NAMESPACE, f"{namespace}/{name}"))


def _check_creation_fits(
    limit: int, name: str, description: str, hostname: str, params: dict[str, Any], properties: dict[str, Any]
) -> None:
    """The experiment-created event must fit one event: refused before a number is taken."""
    size = sum(map(text_bytes, (name, description, hostname)))
    size += sum(text_bytes(str(k)) + text_bytes(parameter_text(v)[0]) + 16 for k, v in params.items())
    size += sum(text_bytes(str(k)) + text_bytes(str(v)) + 8 for k, v in properties.items())
    if size > limit - ENVELOPE_BYTES:
        raise EventTooLarge(
            f"name, description, parameters and properties of this experiment take {size} bytes, more than one "
            f"event may carry (EXPSTREAM_MAX_EVENT_BYTES={limit} less {ENVELOPE_BYTES} of envelope); "
            "no experiment was created (log large values as artifacts)"
        )


def _process_suffix() -> str:
    """Keeps an attached process's monitoring and output logs apart: ``_rank<RANK>`` or ``_pid<pid>``."""
    rank = os.environ.get("RANK")
    return f"_rank{rank}" if rank and rank.isdigit() else f"_pid{os.getpid()}"


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return value if isinstance(value, list) else [value]


def _filters(id: Any, state: Any, owner: Any, tag: Any, min_running_time: int | None) -> dict[str, Any]:
    """The legacy filter arguments of get_experiments / get_leaderboard as the reader takes them."""
    return {
        "ids": _as_list(id),
        "states": _as_list(state),
        "owners": _as_list(owner),
        "tags": _as_list(tag),
        "min_running_time": min_running_time,
        "now": time.time(),
    }


class Project(ProjectCore):
    """A namespace/name pair; experiments are created and listed through it."""

    def __init__(self, backend: StreamBackend, internal_id: str, namespace: str, name: str) -> None:
        self._backend = backend
        self.internal_id = internal_id
        self.namespace = namespace
        self.name = name
        self._stack: list[Experiment] = []
        self._lock = threading.RLock()
        ref = weakref.ref(self)
        atexit.register(call_if_alive, ref, Project._stop_all)

    @property
    def full_id(self) -> str:
        return f"{self.namespace}/{self.name}"

    def __str__(self) -> str:
        return f"Project({self.full_id})"

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Project) and other.__dict__ == self.__dict__

    def __hash__(self) -> int:
        return hash(self.full_id)

    # --- creating ---------------------------------------------------------------------------

    def create_experiment(
        self,
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
        notebook_path: str | None = None,
        run_id: str | None = None,
    ) -> Experiment:
        """Create a running experiment, make it current, and return it.

        ``run_id`` (or ``EXPSTREAM_RUN_ID``) is an expstream addition: every process that creates an
        experiment with the same run id in a project attaches to one experiment (DDP ranks, a resumed
        job). The first creates it; the others log into it, each with its own monitoring and output
        logs, and only the first one's ``stop()`` finishes it.
        """
        name = "Untitled" if name is None else name
        description = "" if description is None else description
        params = {} if params is None else params
        properties = {} if properties is None else properties
        hostname = platform.node() if hostname is None else hostname
        for label, value, kind in (
            ("name", name, str),
            ("description", description, str),
            ("params", params, dict),
            ("properties", properties, dict),
            ("hostname", hostname, str),
        ):
            if not isinstance(value, kind):
                raise ValueError(f"{label} must be a {kind.__name__}, got {type(value).__name__}")
        for label, text in (("name", name), ("description", description), ("hostname", hostname)):
            check_text(text, label)
        for label, mapping in (("parameter", params), ("property", properties)):
            for key, value in mapping.items():
                check_text(str(key), f"{label} name")
                check_text(str(value), f"{label} value")
        tag_list = validate_tags([] if tags is None else list(tags))
        settings = self._backend.settings
        notebook_id = notebook_id or settings.notebook_id
        notebook_path = notebook_path or settings.notebook_path
        sources = source_files.resolve(upload_source_files)
        system = {"python": sys.version.split()[0], "platform": platform.platform()}
        if sources.entrypoint:
            system["entrypoint"] = sources.entrypoint
        for key, given in (("notebook_id", notebook_id), ("notebook_path", notebook_path)):
            if given:
                system[key] = str(given)
        if git_info is None:
            from expstream.git_info import get_git_info

            git_info = get_git_info()
        if git_info is not None:
            system.update(git_info.to_system_properties())

        _check_creation_fits(settings.max_event_bytes, name, description, hostname, params, properties)
        property_texts = {str(k): str(v) for k, v in properties.items()}
        run_id = run_id or settings.run_id
        if run_id is None:
            number, creator = self._backend.numbering.next_number(self.full_id), True
            internal_id = str(uuid.uuid4())
        else:
            number, creator = self._backend.numbering.number_for_run(self.full_id, str(run_id))
            internal_id = run_experiment_id(self.full_id, str(run_id))
        short_id = f"{project_key(self.name)}-{number}"
        stream = self._backend.writer.open_stream(internal_id)
        if creator:
            self._announce(
                stream, short_id, number, name, description, hostname, params, property_texts, tag_list, system
            )
            source_files.upload(self._backend.writer, stream, sources, self._backend.settings.chunk_bytes)
        options = ExecutionOptions(
            logger=logger,
            upload_stdout=upload_stdout,
            upload_stderr=upload_stderr,
            send_hardware_metrics=send_hardware_metrics,
            run_monitoring_thread=run_monitoring_thread,
            handle_uncaught_exceptions=handle_uncaught_exceptions,
            abort_callback=abort_callback,
            suffix="" if creator else _process_suffix(),
        )
        local = {
            "name": name,
            "tags": set(tag_list),
            "properties": dict(property_texts),
            "artifacts": {},
        }
        experiment = started_experiment(
            self._backend,
            self,
            short_id,
            internal_id,
            stream=stream,
            local=local,
            attached=not creator,
            context=options,
            on_finish=self._forget,
        )
        with self._lock:
            self._stack.append(experiment)
        self._backend.warm_up()
        return experiment

    def _announce(
        self,
        stream: ExperimentStream,
        short_id: str,
        number: int,
        name: str,
        description: str,
        hostname: str,
        params: dict[str, Any],
        properties: dict[str, str],
        tag_list: list[str],
        system: dict[str, str],
    ) -> None:
        """The creating process records the experiment."""
        stream.add_event(
            "ExperimentCreated",
            {
                "project": self.full_id,
                "short_id": short_id,
                "number": number,
                "name": name,
                "description": description,
                "owner": self._backend.settings.owner,
                "hostname": hostname,
                "params": [
                    {"name": str(k), "value": text, "type": kind}
                    for k, (text, kind) in ((k, parameter_text(v)) for k, v in params.items())
                ],
                "properties": properties,
                "tags": tag_list,
                "system": system,
            },
        )
        # a second, small record of who it is: the experiment still shows if the first one is damaged
        stream.add_event("ExperimentIdentified", {"project": self.full_id, "short_id": short_id, "number": number})
        stream.add_event("StateChanged", {"state": "running", "traceback": None})

    def _forget(self, experiment: Experiment) -> None:
        with self._lock:
            if experiment in self._stack:
                self._stack.remove(experiment)

    def _current(self) -> Experiment | None:
        """The newest running experiment; lock-free (one atomic read of the stack's last item)."""
        try:
            return self._stack[-1]
        except IndexError:
            return None

    def _stop_all(self) -> None:
        """The exit hook: stop every experiment still running, newest first, each once.

        Works on a snapshot so that it ends whatever a ``stop()`` raises or leaves behind; an error
        is logged, never propagated out of interpreter shutdown."""
        with self._lock:
            running = list(reversed(self._stack))
        for experiment in running:
            try:
                experiment.stop()
            except Exception:
                log.exception("expstream: stopping %s at exit failed", experiment.id)
            self._forget(experiment)

    # --- reading ----------------------------------------------------------------------------

    def get_members(self) -> list[str]:
        """Everyone who owns an experiment in this project (there are no invitations here)."""
        return self._backend.read().owners(self.full_id)

    def get_experiments(
        self,
        id: str | list[str] | None = None,
        state: str | list[str] | None = None,
        owner: str | list[str] | None = None,
        tag: str | list[str] | None = None,
        min_running_time: int | None = None,
    ) -> list[Experiment]:
        """Experiments matching every filter, by short id; ``tag`` needs all listed tags."""
        rows = self._backend.read().find_experiments(self.full_id, **_filters(id, state, owner, tag, min_running_time))
        return [Experiment(self._backend, self, short_id, internal_id) for short_id, internal_id in rows]

    def get_leaderboard(
        self,
        id: str | list[str] | None = None,
        state: str | list[str] | None = None,
        owner: str | list[str] | None = None,
        tag: str | list[str] | None = None,
        min_running_time: int | None = None,
    ) -> pd.DataFrame:
        """One row per experiment with system columns, ``channel_*``, ``parameter_*``, ``property_*``."""
        return self._backend.read().leaderboard(self.full_id, **_filters(id, state, owner, tag, min_running_time))
