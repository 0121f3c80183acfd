"""A process forked after create_experiment must not send its parent's buffered points twice."""

from __future__ import annotations

import atexit
import os

import pytest

import expstream


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_child_does_not_double_send(project: expstream.Project, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = project.create_experiment("fork", upload_source_files=[], send_hardware_metrics=False)
    exp._backend.writer._wake.clear()
    for i in range(100):
        exp.log_metric("m", i)  # still buffered: the flusher runs every 0.2 s
    pid = os.fork()
    if pid == 0:  # the child: log, stop, run exit hooks, never return into pytest
        try:
            for i in range(100, 200):
                exp.log_metric("m", i)
            exp.stop()
            atexit._run_exitfuncs()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    exp.log_metric("m", 100)
    exp.stop()
    exp.sync()
    values = exp.get_numeric_channels_values("m")
    assert values["m"].tolist() == [float(i) for i in range(101)]
    states = exp._backend.reader.tables.query_df("SELECT count() AS n FROM states WHERE state = 'succeeded'")
    assert int(states["n"].iloc[0]) == 1
