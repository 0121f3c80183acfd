"""One exception tree for everything expstream raises.

Legacy names are kept because client code catches them (``neptune.exceptions.*`` and
``neptune.api_exceptions.*``); errors from storage drivers are translated at the edge into
``StorageError`` / ``TransportError`` with the original kept as ``__cause__``::

    NeptuneException
    ├── NeptuneUninitializedException
    ├── NeptuneNoExperimentContextException
    ├── NeptuneMissingApiTokenException
    ├── NeptuneMissingProjectQualifiedNameException
    ├── NeptuneIncorrectProjectQualifiedNameException
    ├── InvalidNeptuneBackend
    ├── NoChannelValue
    ├── InvalidChannelValue
    ├── InvalidChannelX
    ├── FileNotFound
    ├── NotADirectory
    ├── NotAFile
    ├── InvalidNotebookPath
    ├── NeptuneLibraryNotInstalledException
    ├── ArtifactPathError (also ValueError)
    ├── ConfigurationError (also ValueError)
    ├── NeptunePackageConflict (also ImportError)  expstream-neptune beside another ``neptune``
    ├── ExpstreamIOError
    │   ├── TransportError      the event log / Kafka failed
    │   ├── StorageError        ClickHouse / chdb / object store failed
    │   │   └── SinkDataError   a sink refused the data of an insert (types, ranges): retrying cannot help
    │   ├── EventDecodeError    a message is not a valid event
    │   │   └── EventValidationError  it decodes, but breaks what its schema means (ranges, ids, NaN)
    │   └── LocalStateError     a file under EXPSTREAM_HOME is damaged and cannot be rebuilt
    ├── ExpstreamTimeoutError (also TimeoutError)
    │   └── LockTimeout         a lock held by another process was not free before the deadline
    │                           (also an ExpstreamIOError: consumers retry it)
    ├── SSLError
    └── NeptuneApiException
        ├── ConnectionLost, ServerError, Unauthorized, Forbidden, InvalidApiKey
        ├── NamespaceNotFound, ProjectNotFound, PathInProjectNotFound
        ├── ExperimentNotFound, ExperimentAlreadyFinished
        ├── ExperimentLimitReached
        │   └── ExperimentNumbersExhausted   a project has used every experiment number
        ├── StorageLimitReached, ExperimentValidationError
        ├── ChannelAlreadyExists, ChannelDoesNotExist, ChannelNotFound, ChannelsValuesSendBatchError
        └── NotebookNotFound
"""

from __future__ import annotations

import os
import platform
from typing import Any

__all__ = [
    "EMPTY_STYLES",
    "STYLES",
    "UNIX_STYLES",
    "ArtifactPathError",
    "BlobIntegrityError",
    "ChannelAlreadyExists",
    "ChannelDoesNotExist",
    "ChannelNotFound",
    "ChannelsValuesSendBatchError",
    "ConfigurationError",
    "ConnectionLost",
    "DurabilityError",
    "EventDecodeError",
    "EventTooLarge",
    "ExperimentAlreadyFinished",
    "ExperimentLimitReached",
    "ExperimentNotFound",
    "ExperimentNumbersExhausted",
    "ExperimentValidationError",
    "ExpstreamIOError",
    "ExpstreamTimeoutError",
    "FileNotFound",
    "Forbidden",
    "InvalidApiKey",
    "InvalidChannelValue",
    "InvalidChannelX",
    "InvalidNeptuneBackend",
    "InvalidNotebookPath",
    "LocalStateError",
    "LockTimeout",
    "NamespaceNotFound",
    "NeptuneApiException",
    "NeptuneException",
    "NeptuneIncorrectProjectQualifiedNameException",
    "NeptuneLibraryNotInstalledException",
    "NeptuneMissingApiTokenException",
    "NeptuneMissingProjectQualifiedNameException",
    "NeptuneNoExperimentContextException",
    "NeptunePackageConflict",
    "NeptuneUninitializedException",
    "NoChannelValue",
    "NotADirectory",
    "NotAFile",
    "NotebookNotFound",
    "PathInProjectNotFound",
    "ProjectNotFound",
    "SSLError",
    "ServerError",
    "StorageError",
    "StorageLimitReached",
    "TransportError",
    "Unauthorized",
]

#: Terminal styles by name, as the legacy client exported them: neptune-contrib formats its own
#: messages with ``STYLES`` (``from neptune.exceptions import NeptuneException, STYLES``) and cannot
#: be imported without it. ANSI codes on terminals that take them, empty strings elsewhere.
UNIX_STYLES: dict[str, str] = {
    "h1": "\033[95m",
    "h2": "\033[94m",
    "blue": "\033[94m",
    "python": "\033[96m",
    "bash": "\033[95m",
    "warning": "\033[93m",
    "correct": "\033[92m",
    "fail": "\033[91m",
    "bold": "\033[1m",
    "underline": "\033[4m",
    "end": "\033[0m",
}
EMPTY_STYLES: dict[str, str] = dict.fromkeys(UNIX_STYLES, "")
STYLES: dict[str, str] = (
    UNIX_STYLES if platform.system() in ("Linux", "Darwin") and "NO_COLOR" not in os.environ else EMPTY_STYLES
)


class NeptuneException(Exception):
    """Root of everything expstream raises."""


class NeptuneUninitializedException(NeptuneException):
    def __init__(self) -> None:
        super().__init__(
            "You must initialize expstream before you create an experiment: call "
            "expstream.init('namespace/project') first."
        )


class NeptuneNoExperimentContextException(NeptuneException):
    def __init__(self) -> None:
        super().__init__(
            "There is no running experiment: call create_experiment() first (or keep using the "
            "experiment object it returned)."
        )


class NeptuneMissingApiTokenException(NeptuneException):
    def __init__(self) -> None:
        super().__init__("No API token given. expstream does not need one; this is raised only for compatibility.")


class NeptuneMissingProjectQualifiedNameException(NeptuneException):
    def __init__(self) -> None:
        super().__init__(
            "No project name: pass init('namespace/project') or set NEPTUNE_PROJECT (or EXPSTREAM_PROJECT)."
        )


class NeptuneIncorrectProjectQualifiedNameException(NeptuneException):
    def __init__(self, project_qualified_name: str) -> None:
        super().__init__(
            f"Incorrect project name {project_qualified_name!r}: expected 'namespace/project_name' "
            "with exactly one '/' and both parts non-empty."
        )


class InvalidNeptuneBackend(NeptuneException):
    def __init__(self, provided_backend_name: str) -> None:
        super().__init__(f"Unknown NEPTUNE_BACKEND {provided_backend_name!r}: the only accepted value is 'offline'.")


class NoChannelValue(NeptuneException):
    def __init__(self) -> None:
        super().__init__("No value provided: pass the value as x, or x and y.")


class InvalidChannelValue(NeptuneException):
    def __init__(self, expected_type: str, actual_type: str) -> None:
        super().__init__(f"Invalid channel value type. Expected: {expected_type}, actual: {actual_type}.")


class InvalidChannelX(NeptuneException):
    """Kept for compatibility: non-increasing x is dropped with a warning, never raised."""

    def __init__(self, x: Any) -> None:
        super().__init__(f"Invalid channel X-coordinate: {x!r}. It must be finite and strictly increasing.")


class FileNotFound(NeptuneException):
    def __init__(self, path: str) -> None:
        super().__init__(f"File not found: {path}")


class NotADirectory(NeptuneException):
    def __init__(self, path: str) -> None:
        super().__init__(f"Path {path} is not a directory.")


class NotAFile(NeptuneException):
    def __init__(self, path: str) -> None:
        super().__init__(f"Path {path} is not a file.")


class InvalidNotebookPath(NeptuneException):
    def __init__(self, path: str) -> None:
        super().__init__(f"File {path} is not a valid notebook. Should end with .ipynb.")


class NeptuneLibraryNotInstalledException(NeptuneException):
    def __init__(self, library: str) -> None:
        super().__init__(f"Library {library} is not installed. Install it with: pip install {library}")


class ArtifactPathError(NeptuneException, ValueError):
    """An artifact path that would leave the experiment's storage, or is otherwise unusable."""


class BlobIntegrityError(NeptuneException, ValueError):
    """Bytes that do not hash to the sha256 they are stored under; nothing was written under it."""


class NeptunePackageConflict(NeptuneException, ImportError):
    """``import neptune`` found expstream's alias package and another distribution's ``neptune`` in one
    environment: one has overwritten the other's files, so neither can be trusted (an ``ImportError`` too,
    so integrations that probe for neptune see it as unavailable)."""


class ConfigurationError(NeptuneException, ValueError):
    """A setting (argument or environment variable) has a value expstream cannot use."""


class ExpstreamIOError(NeptuneException):
    """A component below the API failed; the driver's error is kept as ``__cause__``."""


class TransportError(ExpstreamIOError):
    """The event log (local log or Kafka) could not take or give events."""


class StorageError(ExpstreamIOError):
    """ClickHouse, chdb or the object store failed."""


class DurabilityError(ExpstreamIOError):
    """Events this process logged are not durable yet: the store refused them (disk full, I/O error).

    They are kept in memory and retried; the message says how much waits and why."""


class EventTooLarge(NeptuneException, ValueError):
    """One call would make an event larger than ``EXPSTREAM_MAX_EVENT_BYTES``: refused at the call, so that
    nothing is ever stuck behind an event the broker cannot take."""


class EventDecodeError(ExpstreamIOError):
    """A message is not a valid expstream event (garbage, truncated, unknown schema)."""


class EventValidationError(EventDecodeError):
    """A message decodes, but its event breaks what its schema means: a malformed id, a NaN where a finite
    number is required, a negative size, a string too long, an unknown kind (:mod:`expstream.schemas.validation`).

    Consumers dead-letter such an event before it reaches a sink."""


class SinkDataError(StorageError):
    """A sink refused the data of one insert (a value its column cannot hold, text it cannot parse).

    Unlike a sink that is down, retrying the same data cannot help: the consumer narrows the batch down to
    the events that carry the data and dead-letters only those."""


class LocalStateError(ExpstreamIOError):
    """A file under ``EXPSTREAM_HOME`` is damaged and nothing it could be rebuilt from is known."""


class ExpstreamTimeoutError(NeptuneException, TimeoutError):
    """A wait with a deadline (``sync(timeout=...)``, a lock) ran out; also a ``TimeoutError``."""


class LockTimeout(ExpstreamTimeoutError, ExpstreamIOError):
    """Another process held a lock past the caller's deadline (for example a stopped process).

    Also an ``ExpstreamIOError``: a consumer service retries it with backoff like a store that is down."""


class SSLError(NeptuneException):
    def __init__(self) -> None:
        super().__init__("SSL certificate validation failed.")


# --- neptune.api_exceptions -------------------------------------------------------------------


class NeptuneApiException(NeptuneException):
    """Errors the legacy client got from its server; expstream raises them from its own checks."""


class ConnectionLost(NeptuneApiException):
    def __init__(self) -> None:
        super().__init__("Connection lost. Please try again.")


class ServerError(NeptuneApiException):
    def __init__(self) -> None:
        super().__init__("Server error. Please try again later.")


class Unauthorized(NeptuneApiException):
    def __init__(self) -> None:
        super().__init__("Unauthorized.")


class Forbidden(NeptuneApiException):
    def __init__(self) -> None:
        super().__init__("Forbidden.")


class InvalidApiKey(NeptuneApiException):
    def __init__(self) -> None:
        super().__init__("The provided API token is invalid.")


class NamespaceNotFound(NeptuneApiException):
    def __init__(self, namespace_name: str) -> None:
        super().__init__(f"Namespace {namespace_name} not found.")


class ProjectNotFound(NeptuneApiException):
    def __init__(self, project_identifier: str) -> None:
        super().__init__(f"Project {project_identifier!r} not found.")


class PathInProjectNotFound(NeptuneApiException):
    def __init__(self, path: str, project_identifier: str) -> None:
        super().__init__(f"Path {path} was not found in project {project_identifier}.")


class ExperimentNotFound(NeptuneApiException):
    def __init__(self, experiment_short_id: str, project_qualified_name: str) -> None:
        super().__init__(f"Experiment {experiment_short_id} not found in project {project_qualified_name}.")


class ExperimentAlreadyFinished(NeptuneApiException):
    def __init__(self, experiment_short_id: str) -> None:
        super().__init__(f"Experiment {experiment_short_id} is already finished.")


class ExperimentLimitReached(NeptuneApiException):
    def __init__(self) -> None:
        super().__init__("Experiment limit reached.")


class ExperimentNumbersExhausted(ExperimentLimitReached):
    """Raised by ``create_experiment`` before anything is written: numbers are Avro longs."""

    def __init__(self, project: str, limit: int) -> None:
        NeptuneApiException.__init__(
            self,
            f"project {project!r} has used every experiment number (the last one is {limit}); "
            "create the experiment in another project",
        )


class StorageLimitReached(NeptuneApiException):
    def __init__(self) -> None:
        super().__init__("Storage limit reached.")


class ExperimentValidationError(NeptuneApiException):
    def __init__(self, message: str) -> None:
        super().__init__(message)


class ChannelAlreadyExists(NeptuneApiException):
    def __init__(self, experiment_short_id: str, channel_name: str) -> None:
        super().__init__(f"Channel with name {channel_name} already exists in experiment {experiment_short_id}.")


class ChannelDoesNotExist(NeptuneApiException):
    def __init__(self, experiment_short_id: str, channel_name: str) -> None:
        super().__init__(f"Channel {channel_name} does not exist in experiment {experiment_short_id}.")


class ChannelNotFound(NeptuneApiException):
    def __init__(self, channel_id: str) -> None:
        super().__init__(f"Channel {channel_id} not found.")


class ChannelsValuesSendBatchError(NeptuneApiException):
    def __init__(self, experiment_short_id: str, batch_errors: list[Any]) -> None:
        super().__init__(f"Some values of experiment {experiment_short_id} were not stored: {batch_errors}")


class NotebookNotFound(NeptuneApiException):
    def __init__(self, notebook_id: str, project: str | None = None) -> None:
        where = f" in project {project}" if project else ""
        super().__init__(f"Notebook {notebook_id} not found{where}.")
