"""Sources over a log this process can read directly (memory, local log) answer at once.

The contract all sources share is in tests/contract/test_transport_and_source.py; a Kafka source
may need a few polls with a timeout (group join, fetch round trips), so this is not part of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from expstream.consumers.sources.pairs import open_pair
from expstream.eventlog.records import EVENTS


@pytest.mark.parametrize("kind", ["memory", "local_log"])
def test_a_poll_without_timeout_returns_what_is_there_in_batches_of_max_records(kind: str, tmp_path: Path) -> None:
    transport, sources = open_pair(kind, tmp_path)
    for start in range(0, 10, 7):
        for key in ("a", "b"):
            transport.send(EVENTS, key, [f"{key}#{i}".encode() for i in range(start, min(start + 7, 10))])
    transport.flush()
    source = sources()

    batches = [source.poll(max_records=3) for _ in range(7)]

    assert all(1 <= len(b) <= 3 for b in batches)
    assert sum(len(b) for b in batches) == 20
    assert source.poll() == []
    transport.close()
