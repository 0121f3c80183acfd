"""Choose the adapters from the settings: unset services mean the embedded default.

Embedded default, all under ``EXPSTREAM_HOME``::

    log/        the append-only event log (transport and source)
    projects/   experiment counters
    chdb/       the embedded ClickHouse database (tables of deploy/clickhouse)
    objects/    artifacts, images and sources, content-addressed
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expstream.config import Settings
from expstream.exceptions import StorageError
from expstream.producer.numbering import LocalFileNumbering
from expstream.producer.transports.base import Watermark
from expstream.producer.transports.local_log import LocalLog, LocalLogTransport

if TYPE_CHECKING:
    from expstream.consumers.runner import Runner
    from expstream.query.reader import Reader

__all__ = ["EMBEDDED_GROUP", "backend_parts", "embedded_runner", "open_reader"]

#: consumer group of the embedded materializer (its progress lives in the chdb tables)
EMBEDDED_GROUP = "embedded"


def _home(settings: Settings) -> Path:
    return settings.home.expanduser().absolute()


def _local_log(settings: Settings) -> LocalLog:
    return LocalLog(_home(settings) / "log", settings.log_partitions, settings.segment_bytes)


def embedded_runner(settings: Settings) -> Runner:
    """The consumer runner of the embedded default: local log → chdb + local folder."""
    from expstream.consumers.runner import Runner
    from expstream.consumers.sinks.chdb import ChdbTables
    from expstream.consumers.sinks.localfs import LocalFolderStore
    from expstream.consumers.sources.local_log import LocalLogSource

    home = _home(settings)
    return Runner(
        LocalLogSource(_local_log(settings), group=EMBEDDED_GROUP, positions_dir=home / "positions"),
        ChdbTables(home / "chdb"),
        LocalFolderStore(home / "objects"),
        group=EMBEDDED_GROUP,
        dead_letter_dir=home / "dead-letter",
    )


def open_reader(settings: Settings) -> Reader:
    """A reader that catches the embedded tables up with the log before every read."""
    from expstream.query.reader import Reader

    runner = embedded_runner(settings)
    return Reader(runner.tables, runner.objects, refresh=runner.catch_up)


def _materialize_in_subprocess(settings: Settings, timeout: float | None) -> None:
    env = dict(os.environ, EXPSTREAM_HOME=str(_home(settings)))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "expstream", "consume", "--once"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise TimeoutError(f"events were not materialized within {timeout} s") from exc
    if done.returncode != 0:
        raise StorageError(f"materializing events failed: {done.stderr.strip()[-2000:]}")


def backend_parts(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of :class:`expstream.backend.StreamBackend` for these settings."""
    home = _home(settings)
    state: dict[str, Reader] = {}

    def reader() -> Reader:
        state["reader"] = open_reader(settings)
        return state["reader"]

    def materialize(watermark: Watermark, timeout: float | None) -> None:
        # A process that already reads has chdb loaded: catch up here. A logging process must not
        # load chdb, so a short-lived consumer process does it.
        if "reader" in state:
            state["reader"].refresh()
        else:
            _materialize_in_subprocess(settings, timeout)

    return {
        "transport": LocalLogTransport(_local_log(settings)),
        "numbering": LocalFileNumbering(home / "projects"),
        "open_reader": reader,
        "materializer": materialize,
    }
