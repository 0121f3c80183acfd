"""Sources: where consumers read events by position (see :mod:`.base`).

Adapters are imported on first use, as in :mod:`expstream.producer.transports` (import cycle
through ``Record``). :mod:`.pairs` opens a transport and its source together, per adapter.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from expstream.consumers.sources.base import Record, Source

if TYPE_CHECKING:
    from expstream.consumers.sources.local_log import LocalLogSource
    from expstream.consumers.sources.memory import MemorySource

__all__ = ["LocalLogSource", "MemorySource", "Record", "Source"]

_ADAPTERS = {"LocalLogSource": "local_log", "MemorySource": "memory"}


def __getattr__(name: str) -> Any:
    module = _ADAPTERS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
