"""Sources: where consumers read events by position (the port in :mod:`.base`).

``local_log`` and ``memory`` read the logs of :mod:`expstream.eventlog`; ``kafka`` is a consumer
group member (imported on its own: it needs the distributed extra). :mod:`.pairs` opens a transport
and its source together, per adapter.
"""

from __future__ import annotations

from expstream.consumers.sources.base import Source
from expstream.consumers.sources.local_log import LocalLogSource
from expstream.consumers.sources.memory import MemorySource

__all__ = ["LocalLogSource", "MemorySource", "Source"]
