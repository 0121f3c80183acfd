"""Transports: where the producer hands encoded events (see :mod:`.base`).

Adapters are imported on first use: they use :class:`~expstream.consumers.sources.base.Record`,
whose module imports :mod:`.base` from this package, so importing them here would be circular.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from expstream.producer.transports.base import BLOBS, EVENTS, TOPICS, Transport, Watermark

if TYPE_CHECKING:
    from expstream.producer.transports.local_log import LocalLog, LocalLogTransport
    from expstream.producer.transports.memory import MemoryLog, MemoryTransport

__all__ = [
    "BLOBS",
    "EVENTS",
    "TOPICS",
    "LocalLog",
    "LocalLogTransport",
    "MemoryLog",
    "MemoryTransport",
    "Transport",
    "Watermark",
]

_ADAPTERS = {
    "LocalLog": "local_log",
    "LocalLogTransport": "local_log",
    "MemoryLog": "memory",
    "MemoryTransport": "memory",
}


def __getattr__(name: str) -> Any:
    module = _ADAPTERS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
