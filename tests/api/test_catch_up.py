"""A public read catches the embedded tables up with the event log once, however it is built inside."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import expstream
from expstream.experiments import Experiment
from tests.conftest import QUIET

READS: dict[str, Callable[[Experiment, expstream.Project], Any]] = {
    "get_system_properties": lambda e, p: e.get_system_properties(),
    "get_tags": lambda e, p: e.get_tags(),
    "get_logs": lambda e, p: e.get_logs(),
    "get_parameters": lambda e, p: e.get_parameters(),
    "get_properties": lambda e, p: e.get_properties(),
    "get_numeric_channels_values": lambda e, p: e.get_numeric_channels_values("loss"),
    "get_hardware_utilization": lambda e, p: e.get_hardware_utilization(),
    "get_experiments": lambda e, p: p.get_experiments(),
    "get_leaderboard": lambda e, p: p.get_leaderboard(),
}


@pytest.mark.parametrize("read", list(READS))
def test_one_catch_up_per_public_read(project: expstream.Project, read: str) -> None:
    exp = project.create_experiment(name="exp", params={"lr": 0.1}, **QUIET)
    exp.log_metric("loss", 1.0)
    exp.append_tag("t")
    reader = exp._backend.read()
    refresh = reader._refresh
    assert refresh is not None  # the embedded default catches up on every read
    calls: list[None] = []

    def counting() -> Any:
        calls.append(None)
        return refresh()

    reader._refresh = counting
    try:
        result = READS[read](exp, project)
    finally:
        reader._refresh = refresh
        exp.stop()
    assert len(calls) == 1, f"{read} caught up {len(calls)} times"
    assert result is not None
