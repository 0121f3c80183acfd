"""Transports: where the producer hands encoded events (the port in :mod:`.base`).

``local_log`` appends to the embedded event log, ``memory`` to an in-process one, ``kafka`` spools
locally and forwards to a Kafka cluster (imported on its own: it needs the distributed extra). The
log formats themselves live in :mod:`expstream.eventlog`, shared with the consumers.
"""

from __future__ import annotations

from expstream.producer.transports.base import Transport
from expstream.producer.transports.local_log import LocalLogTransport
from expstream.producer.transports.memory import MemoryTransport

__all__ = ["LocalLogTransport", "MemoryTransport", "Transport"]
