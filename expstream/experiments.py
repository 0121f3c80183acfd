"""``Experiment``: the legacy front door. Writes go to the producer stream, reads to the query side."""

from __future__ import annotations

import logging
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from expstream.exceptions import (
    ChannelDoesNotExist,
    ExperimentNotFound,
    ExperimentValidationError,
    ExpstreamIOError,
    FileNotFound,
)
from expstream.execution import ExecutionOptions, Undo, start_execution_context
from expstream.paths import clean_artifact_path, clean_source_path
from expstream.producer import blobs, uploads
from expstream.producer.channels import IMAGE, check_text, resolve_x, text_bytes, to_timestamp, utf8_problem
from expstream.producer.hotpath import ExperimentCore
from expstream.producer.stream import ExperimentStream
from expstream.query import archives

if TYPE_CHECKING:
    import pandas as pd

    from expstream.backend import StreamBackend

__all__ = ["Experiment", "ProjectRef", "split_tags", "started_experiment", "validate_tags"]

log = logging.getLogger("expstream")

#: seconds stop() waits for the event log to take everything (Kafka may be down: events stay spooled)
STOP_FLUSH_TIMEOUT = 10.0

#: a tag as legacy accepted it: 1-128 characters, no control characters (docs/legacy-behaviour.md#tags)
_TAG_MAX = 128
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _tag_problem(tag: Any) -> str | None:
    """Why ``tag`` is not a tag, or None when it is one."""
    if not isinstance(tag, str):
        return f"not a str but {type(tag).__name__}"
    if not tag:
        return "empty"
    if len(tag) > _TAG_MAX:
        return f"longer than {_TAG_MAX} characters"
    return _content_problem(tag)


def _content_problem(tag: str) -> str | None:
    """Characters no tag may hold: control characters, or what UTF-8 cannot encode (lone surrogates)."""
    if _CONTROL.search(tag):
        return "contains control characters"
    problem = utf8_problem(tag)
    return None if problem is None else f"cannot be encoded as UTF-8 ({problem})"


def split_tags(tags: Iterable[Any]) -> tuple[list[str], list[tuple[Any, str]]]:
    """The valid tags (in order, each once) and the invalid ones with the reason."""
    valid: dict[str, None] = {}
    invalid: list[tuple[Any, str]] = []
    for tag in tags:
        problem = _tag_problem(tag)
        if problem is None:
            valid[tag] = None
        else:
            invalid.append((tag, problem))
    return list(valid), invalid


def tag_error(invalid: list[tuple[Any, str]]) -> ExperimentValidationError:
    """One error naming every invalid tag of a call."""
    named = "; ".join(f"{tag!r} ({problem})" for tag, problem in invalid)
    return ExperimentValidationError(
        f"Invalid tag{'s' if len(invalid) > 1 else ''} {named}: a tag is a non-empty str of at most "
        f"{_TAG_MAX} characters without control characters."
    )


def validate_tags(tags: Iterable[Any]) -> list[str]:
    """All of ``tags``, checked: any invalid one makes the whole call an error naming them all (nothing is sent)."""
    valid, invalid = split_tags(tags)
    if invalid:
        raise tag_error(invalid)
    return valid


class ProjectRef(Protocol):
    """What an experiment needs of its project: the name it reads under (and an identity for ``==``)."""

    @property
    def full_id(self) -> str: ...


def started_experiment(
    backend: StreamBackend,
    project: ProjectRef,
    short_id: str,
    internal_id: str,
    *,
    stream: ExperimentStream,
    local: dict[str, Any],
    attached: bool,
    context: ExecutionOptions,
    on_finish: Callable[[Experiment], None],
) -> Experiment:
    """An experiment this process just created (or attached to), running its execution context.

    The creating project hands over what it knows (``local``: name, tags, properties, artifacts; the
    ``stream`` it announced the experiment on), whether this process only ``attached`` to it, and
    ``on_finish``, told once the experiment ends (it is no longer the current one).
    """
    experiment = Experiment(backend, project, short_id, internal_id)
    experiment._stream = stream
    experiment._local = local
    experiment._attached = attached
    experiment._on_finish = on_finish
    experiment._teardown = start_execution_context(stream, context, stop=experiment.stop, abort=experiment._abort)
    return experiment


class Experiment(ExperimentCore):
    """A run: log metrics, text, images and artifacts into it, read them back as DataFrames.

    Users never construct it: ``Project.create_experiment`` (through :func:`started_experiment`) and
    ``Project.get_experiments`` do. The constructor keeps the legacy signature.
    """

    IMAGE_SIZE_LIMIT_MB = 15

    def __init__(self, backend: StreamBackend, project: ProjectRef, _id: str, internal_id: str) -> None:
        self._backend = backend
        self._project = project
        self._id = _id
        self._internal_id = internal_id
        self._stream: ExperimentStream | None = None
        self._lock = threading.RLock()
        # what this object knows without asking the query side (it created the experiment)
        self._local: dict[str, Any] | None = None
        self._finished_state: str | None = None
        #: attached to an experiment another process created (same run id): stop() does not finish it
        self._attached = False
        self._on_finish: Callable[[Experiment], None] | None = None
        self._teardown: list[Undo] = []

    # --- identity ---------------------------------------------------------------------------

    @property
    def id(self) -> str:
        """Short id ``<PROJECT_KEY>-<N>``, e.g. ``SAN-12``."""
        return self._id

    @property
    def internal_id(self) -> str:
        return self._internal_id

    @property
    def limits(self) -> dict[str, dict[str, int]]:
        """Reported as the legacy server did; not enforced (docs/legacy-behaviour.md#limits)."""
        return {"channels": {"numeric": 1000, "text": 100, "image": 100}}

    @property
    def name(self) -> str:
        if self._local is not None:
            return str(self._local["name"])
        return str(self._row()["name"])

    @property
    def state(self) -> str:
        """``running``, ``succeeded``, ``failed`` or ``aborted``."""
        if self._local is not None:
            return self._finished_state or "running"
        return str(self._row()["state"])

    def __str__(self) -> str:
        return f"Experiment({self._id})"

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Experiment)
            and other._id == self._id
            and other._internal_id == self._internal_id
            and other._project == self._project
        )

    def __hash__(self) -> int:
        return hash((self._id, self._internal_id))

    # --- the write side ---------------------------------------------------------------------

    def _writable(self) -> ExperimentStream:
        stream = self._stream
        if stream is None:
            with self._lock:
                if self._stream is None:
                    self._learn_finished_state()
                    self._stream = self._backend.writer.open_stream(self._internal_id)
                    if self._finished_state is not None:
                        self._stream.close()
                    elif self._local is None:
                        self._continue_channels(self._stream)
                stream = self._stream
        return stream

    def _continue_channels(self, stream: ExperimentStream) -> None:
        """A looked-up experiment continues its logs: same type and generation, auto x after the last."""
        for info in self._backend.read().channels(self._internal_id):
            ch = stream.channel(info.name, info.channelType)
            if ch is not None:
                ch.generation = info.generation
                if info.lastX is not None:
                    ch.last_x = info.lastX
                    ch.next_x = info.lastX + 1.0

    def _learn_finished_state(self) -> None:
        """An experiment this object did not create (``get_experiments``) may be finished already.

        Finished states are final and a finished experiment records no points
        (docs/legacy-behaviour.md#finished-experiments), so
        before its first write such an object asks the query side for the state, and moves this
        process's event clock past the experiment's latest event (docs/architecture.md#order-of-changes).
        """
        if self._local is not None or self._finished_state is not None:
            return
        try:
            state = str(self._row()["state"])
        except ExperimentNotFound:
            return
        # what this process writes next orders after every change it could have seen (its clock may be behind)
        self._backend.writer.origin.observe(self._backend.read().last_event_ts(self._internal_id))
        if state in ("succeeded", "failed", "aborted"):
            self._finished_state = state

    # log_metric is ExperimentCore's (producer/hotpath.py): straight to the open stream, in C where compiled

    def _log_metric_general(self, log_name: str, x: Any, y: Any = None, timestamp: Any = None) -> None:
        """``log_metric`` before the stream is open (the first write, an experiment looked up)."""
        self._writable().log_metric(log_name, x, y, timestamp)

    def send_metric(self, channel_name: str, x: Any, y: Any = None, timestamp: Any = None) -> None:
        """Alias of :meth:`log_metric`."""
        stream = self._stream or self._writable()
        stream.log_metric(channel_name, x, y, timestamp)

    def log_text(self, log_name: str, x: Any, y: Any = None, timestamp: Any = None) -> None:
        """Append a text point; the value must be a str."""
        stream = self._stream or self._writable()
        stream.log_text(log_name, x, y, timestamp)

    def send_text(self, channel_name: str, x: Any, y: Any = None, timestamp: Any = None) -> None:
        """Alias of :meth:`log_text`."""
        self.log_text(channel_name, x, y, timestamp)

    def log_image(
        self,
        log_name: str,
        x: Any,
        y: Any = None,
        image_name: str | None = None,
        description: str | None = None,
        timestamp: Any = None,
    ) -> None:
        """Append an image: a path, PIL image, matplotlib figure or numpy array (stored as PNG)."""
        stream = self._stream or self._writable()
        ch = stream.image.get(log_name)
        if ch is None and not stream.accepts(log_name, IMAGE):
            return
        px, value = resolve_x(x, y)
        ts = time.time() if timestamp is None else to_timestamp(timestamp)
        for label, caption in (("image_name", image_name), ("description", description)):
            if caption is None:
                continue
            if not isinstance(caption, str):
                raise TypeError(f"{label} must be a str or None, got {type(caption).__name__}")
            check_text(caption, label)
        stream.check_fits(
            f"caption of an image of log {log_name!r}",
            sum(text_bytes(c) for c in (image_name, description, log_name) if isinstance(c, str)),
        )
        from expstream.producer import images  # numpy and Pillow load with the first image only

        data = images.image_to_png_bytes(value)
        problem = images.check_image_size(data)
        if problem is not None:
            log.warning("Image not logged to %r: %s", log_name, problem)
            return
        if ch is None:  # created only now that the image is valid: a rejected call leaves no log behind
            ch = stream.channel(log_name, IMAGE)
            if ch is None:
                return
        sha256, size = blobs.send_bytes(self._backend.writer, stream, data, self._backend.settings.chunk_bytes)
        stream.append_image(ch, px, ts, image_name, description, sha256, size)

    def send_image(
        self,
        channel_name: str,
        x: Any,
        y: Any = None,
        name: str | None = None,
        description: str | None = None,
        timestamp: Any = None,
    ) -> None:
        """Alias of :meth:`log_image` (the caption is ``name`` here, ``image_name`` there)."""
        self.log_image(channel_name, x, y, image_name=name, description=description, timestamp=timestamp)

    def reset_log(self, log_name: str) -> None:
        """Remove every point of a user log; logging to it starts afresh (x and auto-x too)."""
        stream = self._writable()
        ch = stream.find(log_name)
        if ch is None and self._local is None:
            known = {c.name: c for c in self._backend.read().channels(self._internal_id)}
            info = known.get(log_name)
            if info is not None:
                ch = stream.channel(log_name, info.channelType)
                if ch is not None:
                    ch.generation = info.generation
        if ch is None:
            raise ChannelDoesNotExist(self._id, log_name)
        stream.reset(ch)

    def append_tag(self, tag: str | list[str], *tags: str) -> None:
        """Add tags (``'a'``, ``'a', 'b'`` or ``['a', 'b']``).

        As the legacy server did, any non-empty str of at most 128 characters without control
        characters is a tag. Invalid ones raise :class:`ExperimentValidationError` naming them, after
        the valid tags of the same call have been added: one bad tag never costs the others.
        """
        new, invalid = split_tags(tag if isinstance(tag, list) else [tag, *tags])
        if new:
            self._writable().add_event("TagsAdded", {"tags": new})
            if self._local is not None:
                self._local["tags"].update(new)
        if invalid:
            raise tag_error(invalid)

    def append_tags(self, tag: str | list[str], *tags: str) -> None:
        """Alias of :meth:`append_tag`."""
        self.append_tag(tag, *tags)

    def remove_tag(self, tag: str) -> None:
        """Remove one tag; removing a tag that is not there is ignored."""
        if not isinstance(tag, str):
            raise TypeError(f"tag must be a str, got {type(tag).__name__}")
        problem = "empty" if not tag else _content_problem(tag)
        if problem is not None:
            raise tag_error([(tag, problem)])  # it could never have been added (and may not encode)
        self._writable().add_event("TagsRemoved", {"tags": [tag]})
        if self._local is not None:
            self._local["tags"].discard(tag)

    def set_property(self, key: str, value: Any) -> Experiment:
        """Set a user property; the value is stored as ``str(value)``."""
        if not isinstance(key, str) or not key:
            raise TypeError(f"property key must be a non-empty str, got {key!r}")
        check_text(key, "property key")
        text = check_text(str(value), "property value")
        self._writable().add_event("PropertySet", {"key": key, "value": text})
        if self._local is not None:
            self._local["properties"][key] = text
        return self

    def remove_property(self, key: str) -> None:
        """Remove a user property; a missing key raises ``KeyError`` as in the legacy client."""
        properties = self._local["properties"] if self._local is not None else self.get_properties()
        if key not in properties:
            raise KeyError(key)
        self._writable().add_event("PropertyRemoved", {"key": key})
        if self._local is not None:
            del properties[key]

    def log_artifact(self, artifact: Any, destination: str | None = None) -> None:
        """Store a file, a directory or a stream under ``destination`` (default: the file name)."""
        stream = self._writable()
        files = uploads.artifact_files(artifact, destination)
        for path, opener in files:
            with opener() as source:
                sha256, size = blobs.send_source(
                    self._backend.writer, stream, source, self._backend.settings.chunk_bytes
                )
            stream.add_event("ArtifactCommitted", {"path": path, "sha256": sha256, "size": size})
            if self._local is not None:
                self._local["artifacts"][path] = (sha256, size)

    def send_artifact(self, artifact: Any, destination: str | None = None) -> None:
        """Alias of :meth:`log_artifact`."""
        self.log_artifact(artifact, destination)

    def delete_artifacts(self, path: str | list[str]) -> None:
        """Delete artifact files or directories; a path that does not exist raises FileNotFound.

        docs/legacy-behaviour.md#deleting-artifacts
        """
        targets = uploads.delete_paths(path)
        existing = self._artifact_paths()
        doomed: list[str] = []
        for target in targets:
            matched = [p for p in existing if p == target or p.startswith(target.rstrip("/") + "/")]
            if not matched:
                raise FileNotFound(target)
            doomed.extend(matched)
        stream = self._writable()
        for p in dict.fromkeys(doomed):
            stream.add_event("ArtifactDeleted", {"path": p})
            if self._local is not None:
                self._local["artifacts"].pop(p, None)

    def _artifact_paths(self) -> list[str]:
        if self._local is not None:
            return list(self._local["artifacts"])
        return list(self._backend.read().artifacts(self._internal_id))

    # --- durability and finishing -----------------------------------------------------------

    def wait(self, timeout: float | None = None) -> None:
        """Return when everything logged so far is durable in the event log."""
        self._backend.writer.flush(timeout)

    def sync(self, timeout: float | None = None) -> None:
        """Return when everything logged so far is visible to queries (read-your-writes).

        ``timeout`` bounds the whole call (flush and materializing share it); running out raises
        ``ExpstreamTimeoutError``, a ``TimeoutError``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        watermark = self._backend.writer.flush(timeout)
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        self._backend.materialize(watermark, left)

    def stop(self, exc_tb: str | None = None) -> None:
        """Mark the experiment succeeded (or failed, with ``exc_tb``) after flushing its points."""
        self._finish("succeeded" if exc_tb is None else "failed", None if exc_tb is None else str(exc_tb))

    def _abort(self, reason: str) -> None:
        self._finish("aborted", reason)

    def _finish(self, state: str, traceback_text: str | None) -> None:
        try:
            self._finish_stream(state, traceback_text)
        finally:  # whatever happened, this experiment is no longer current (the exit hook ends)
            if self._on_finish is not None:
                self._on_finish(self)

    def _finish_stream(self, state: str, traceback_text: str | None) -> None:
        with self._lock:
            if self._stream is None:
                self._learn_finished_state()
            if self._finished_state is not None:
                return
            stream = self._writable()
            for undo in reversed(self._teardown):
                try:
                    undo()
                except Exception:
                    log.exception("expstream: teardown step failed")
            self._teardown.clear()
            if not self._attached:
                stream.add_event("StateChanged", {"state": state, "traceback": traceback_text})
            self._finished_state = state
            stream.close()
            self._stream = None  # later changes go through a fresh (closed) stream, see _writable
            # durable locally at least; the cluster may be unreachable right now, the disk full:
            # what is not durable stays queued in this process and the log says so
            try:
                self._backend.writer.detach(stream)
                self._backend.writer.flush(timeout=STOP_FLUSH_TIMEOUT)
            except (TimeoutError, ExpstreamIOError) as exc:
                log.warning("expstream: %s", exc)

    def __enter__(self) -> Experiment:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.stop()
        else:
            frames = "\n".join(traceback.format_tb(exc_tb))
            self.stop(f"{frames}\n{exc_val!r}")

    # --- the read side ----------------------------------------------------------------------

    def _row(self) -> dict[str, Any]:
        return self._backend.read().experiment(self._internal_id, self._id, self._project.full_id)

    def get_system_properties(self) -> dict[str, Any]:
        """``id, name, created, finished, running_time, owner, storage_size, channels_size, size, tags,
        notes, description, hostname``."""
        return self._backend.read().system_properties(self._internal_id, self._id, self._project.full_id)

    def get_tags(self) -> list[str]:
        """Tags, sorted alphabetically (docs/legacy-behaviour.md#tag-order)."""
        return self._backend.read().tags(self._internal_id)

    def get_parameters(self) -> dict[str, Any]:
        """Parameters; finite numbers come back as float, everything else as the stored string."""
        return self._backend.read().parameters(self._internal_id)

    def get_properties(self) -> dict[str, str]:
        return self._backend.read().properties(self._internal_id)

    def get_logs(self) -> dict[str, Any]:
        """User logs by name → channel object with ``id, name, channelType, x, y, lastX``."""
        return {c.name: c for c in self._backend.read().channels(self._internal_id)}

    def get_channels(self) -> dict[str, Any]:
        """Alias of :meth:`get_logs`."""
        return self.get_logs()

    def get_numeric_channels_values(self, *channel_names: str) -> pd.DataFrame:
        """DataFrame with ``x`` then one column per requested numeric log, outer-joined on x."""
        if not channel_names:
            raise ValueError("No objects to concatenate: give at least one log name.")
        return self._backend.read().numeric_values(self._internal_id, list(channel_names))

    def get_hardware_utilization(self) -> pd.DataFrame:
        """``x_ram, y_ram, x_cpu, y_cpu`` and per GPU ``x_gpu_util_N ...``; x in ms from the start."""
        return self._backend.read().hardware_utilization(self._internal_id)

    def download_artifact(self, path: str, destination_dir: str | None = None) -> None:
        """Save one artifact file as ``destination_dir/<basename>``."""
        target_dir = archives.prepare_destination_dir(destination_dir)
        reader = self._backend.read()
        entries = reader.artifacts(self._internal_id)
        key = _artifact_key(path)
        if key not in entries:
            raise FileNotFound(path)
        sha256, _ = entries[key]
        data = reader.blob(sha256)
        archives.write_into(target_dir, key.rsplit("/", 1)[-1], lambda f: f.write(data))

    def download_artifacts(self, path: str | None = None, destination_dir: str | None = None) -> None:
        """Save a directory (or file, or everything) of the artifacts as a ZIP archive."""
        files = archives.safe_entries(
            self._backend.read().artifacts(self._internal_id), clean_artifact_path, "artifact"
        )
        self._download_zip(files, path, destination_dir, "output.zip")

    def download_sources(self, path: str | None = None, destination_dir: str | None = None) -> None:
        """Save a directory (or file, or everything) of the uploaded sources as a ZIP archive."""
        files = archives.safe_entries(self._backend.read().sources(self._internal_id), clean_source_path, "source")
        self._download_zip(files, path, destination_dir, "source.zip")

    def _download_zip(
        self, files: dict[str, tuple[str, int]], path: str | None, destination_dir: str | None, default: str
    ) -> None:
        target_dir = archives.prepare_destination_dir(destination_dir)
        prefix = _artifact_key(path) if path and path.strip("/") else ""
        if prefix:
            chosen = {p: v for p, v in files.items() if p == prefix or p.startswith(prefix + "/")}
            root = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        else:
            chosen, root = files, ""
        if prefix and not chosen:
            raise FileNotFound(path or "")
        reader = self._backend.read()
        entries = [(p[len(root) :], _blob_loader(reader, sha)) for p, (sha, _) in sorted(chosen.items())]
        archives.write_zip(target_dir / archives.zip_name(path, default), entries)


def _artifact_key(path: str) -> str:
    """A stored artifact path for a user's path; one that cannot exist reads as not found."""
    try:
        return uploads.normalize_destination(str(path).strip("/"))
    except ValueError:
        raise FileNotFound(str(path)) from None


def _blob_loader(reader: Any, sha256: str) -> Any:
    return lambda: reader.blob(sha256)
