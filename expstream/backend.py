"""Backends: what a ``Session`` talks to.

:class:`StreamBackend` is the real one: a writer over a transport for everything logged, a
numbering for experiment ids, and a reader (opened on first read, so logging processes never load
the query engine). Its adapters are injected; :func:`expstream.wiring.backend_parts` picks them
from the settings. :class:`OfflineBackend` keeps the legacy no-op mode.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expstream.config import Settings, load_settings
from expstream.eventlog.records import Watermark
from expstream.producer.numbering import Numbering
from expstream.producer.transports.base import Transport
from expstream.producer.writer import Writer

if TYPE_CHECKING:
    from expstream.query.reader import Reader

__all__ = ["Backend", "HostedNeptuneBackend", "NoopObject", "OfflineBackend", "StreamBackend"]

log = logging.getLogger("expstream")


class Backend(ABC):
    """The legacy backend interface: what a ``Session`` stands on.

    A :class:`StreamBackend` is the services below the front door; the ``Session`` above it makes
    its ``Project`` objects (this module knows nothing of them). Other backends (offline mode, a
    legacy custom one) answer ``get_project`` themselves.
    """

    def get_project(self, namespace: str, name: str) -> Any:
        raise NotImplementedError(
            f"{type(self).__name__} has no projects of its own: "
            f"use Session(backend=...).get_project('{namespace}/{name}')"
        )

    @abstractmethod
    def list_projects(self, namespace: str) -> list[str]: ...


#: ``materialize(watermark, timeout)``: make everything up to ``watermark`` visible to queries.
Materializer = Callable[[Watermark, "float | None"], None]


class StreamBackend(Backend):
    """Records everything as events; reads through SQL."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: Transport,
        numbering: Numbering,
        open_reader: Callable[[], Reader],
        materializer: Materializer,
        pending_dir: Path | None = None,
        warm_up: Callable[[], None] | None = None,
    ) -> None:
        """``pending_dir``: where batches the transport refused wait for it (None: in memory); ``warm_up``:
        called when this process creates an experiment, so the read path can get ready while it logs
        (the embedded default starts its warm materializer; None: nothing to prepare)."""
        self.settings = settings
        self.writer = Writer(transport, settings, pending_dir)
        self.numbering = numbering
        self._open_reader = open_reader
        self._materializer = materializer
        self._warm_up = warm_up
        self._reader: Reader | None = None
        self._reader_lock = threading.Lock()
        #: the watermark up to which this process's writes are known to be visible to its reads
        self._visible: Watermark = {}

    @property
    def reader(self) -> Reader:
        """The query side, opened on first use (loading the query engine only then)."""
        if self._reader is None:
            with self._reader_lock:
                if self._reader is None:
                    self._reader = self._open_reader()
        return self._reader

    def read(self, timeout: float | None = None) -> Reader:
        """The query side, after making this process's own earlier writes visible to it.

        Legacy 0.4 made tag, property, artifact and channel-creation calls synchronously, so real
        scripts read right after writing (docs/legacy-behaviour.md#read-your-writes). A read
        with nothing new written since the last one pays one cheap flush check and nothing more; after
        writes it flushes them to the event log and, where the reader does not catch up by itself (the
        cluster), waits until the consumers have materialized them.
        """
        timeout = self.settings.read_barrier_timeout if timeout is None else timeout
        watermark = self.writer.flush(timeout)
        reader = self.reader
        if watermark and watermark != self._visible:
            if not reader.catches_up:
                self.materialize(watermark, timeout)
            self._visible = dict(watermark)
        return reader

    @property
    def reader_is_open(self) -> bool:
        return self._reader is not None

    def warm_up(self) -> None:
        """Let the read path get ready in the background (never blocks: the training loop comes first)."""
        if self._warm_up is not None:
            self._warm_up()

    def materialize(self, watermark: Watermark, timeout: float | None = None) -> None:
        self._materializer(watermark, timeout)

    def close(self) -> None:
        """Hand everything logged to the event log, then release the transport and the reader's stores.

        For tools that embed expstream and open services of their own; a script never needs it (an
        exit hook closes the writer). Idempotent."""
        try:
            self.writer.close()
        finally:
            reader, self._reader = self._reader, None
            if reader is not None:
                reader.tables.close()
                reader.objects.close()

    def __enter__(self) -> StreamBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list_projects(self, namespace: str) -> list[str]:
        return [p for p in self.read().projects() if p.split("/", 1)[0] == namespace]


class HostedNeptuneBackend(StreamBackend):
    """Legacy name for 'the backend configured by the environment'; the token is accepted and ignored."""

    def __init__(self, api_token: str | None = None, proxies: Any = None, settings: Settings | None = None) -> None:
        from expstream.wiring import backend_parts

        settings = settings or load_settings()
        super().__init__(settings, **backend_parts(settings))


class NoopObject:
    """Offline mode's answer to everything: any attribute, call or item is itself; iterates empty."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        getter = _EMPTY_GETTERS.get(name)
        return getter if getter is not None else self

    def __getitem__(self, key: Any) -> NoopObject:
        return self

    def __call__(self, *args: Any, **kwargs: Any) -> NoopObject:
        return self

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __bool__(self) -> bool:
        return True

    def __enter__(self) -> NoopObject:
        return self

    def __exit__(self, *args: Any) -> None:
        return None

    def __repr__(self) -> str:
        return "NoopObject()"


def _empty_frame(*args: Any, **kwargs: Any) -> Any:
    import pandas as pd  # offline mode must not pay for pandas until a getter needs it

    return pd.DataFrame()


_EMPTY_GETTERS: dict[str, Callable[..., Any]] = {
    "get_logs": lambda *a, **k: {},
    "get_channels": lambda *a, **k: {},
    "get_parameters": lambda *a, **k: {},
    "get_properties": lambda *a, **k: {},
    "get_system_properties": lambda *a, **k: {},
    "get_tags": lambda *a, **k: [],
    "get_experiments": lambda *a, **k: [],
    "get_members": lambda *a, **k: [],
    "get_numeric_channels_values": _empty_frame,
    "get_hardware_utilization": _empty_frame,
    "get_leaderboard": _empty_frame,
}


class OfflineBackend(Backend):
    """Legacy offline mode: nothing is recorded, every call succeeds (docs/legacy-behaviour.md#offline-mode)."""

    def __init__(self, *, selected_by: str = "OfflineBackend()") -> None:
        # The warning names what chose offline mode: a script that passes ``OfflineBackend()`` itself
        # (pytorch-ignite's ``offline_mode=True``) has no NEPTUNE_BACKEND to unset.
        self.selected_by = selected_by
        log.warning("expstream is running in offline mode (selected by %s).", selected_by)
        log.warning("Nothing will be recorded: experiments, logs and artifacts are all discarded.")

    def get_project(self, namespace: str, name: str) -> NoopObject:
        return NoopObject()

    def list_projects(self, namespace: str) -> list[str]:
        return []
