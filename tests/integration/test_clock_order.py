"""Order without trusting clocks, on both backends: a wall clock that steps back, a writer minutes behind.

The writing process is a child whose ``time.time`` is shifted (patched before expstream is imported), so
every timestamp it makes is on the faked clock. What must hold, exactly: the later call wins (property,
tag, artifact, state), and a live writer 5 minutes behind the reader reads as running.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import expstream
from expstream import rules
from expstream.exceptions import FileNotFound
from expstream.query import reader as reader_module

PROJECT = "acme/clocks"

_PRELUDE = """
import io, sys, time
_real = time.time
SHIFT = [float(sys.argv[1])]
time.time = lambda: _real() + SHIFT[0]
import expstream
expstream.init(sys.argv[2])
"""


def _script(body: str) -> list[str]:
    return [sys.executable, "-c", _PRELUDE + textwrap.dedent(body)]


@pytest.fixture(params=["embedded", "cluster"])
def deployment(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "embedded":
        request.getfixturevalue("home")
    else:
        request.getfixturevalue("cluster")
        request.getfixturevalue("consumer")
    yield request.param


def _run(body: str, shift: float) -> str:
    done = subprocess.run(
        [*_script(body), str(shift), PROJECT], capture_output=True, text=True, timeout=240, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def _looked_up(short_id: str) -> expstream.Experiment:
    project = expstream.init(PROJECT)
    (exp,) = project.get_experiments(id=short_id)
    return exp


def test_later_changes_win_after_the_wall_clock_steps_back(deployment: str, tmp_path: Path) -> None:
    short_id = _run(
        """
        exp = expstream.create_experiment("steps back", upload_source_files=[], send_hardware_metrics=False,
                                          tags=["kept"])
        exp.set_property("p", "early")
        exp.append_tag("old")
        exp.log_artifact(io.BytesIO(b"first"), "f.bin")
        exp.log_artifact(io.BytesIO(b"doomed"), "g.bin")
        exp.wait()
        time.sleep(0.05)
        SHIFT[0] -= 3600.0  # the wall clock steps back an hour
        exp.set_property("p", "late")
        exp.remove_tag("old")
        exp.append_tag("new")
        exp.log_artifact(io.BytesIO(b"second"), "f.bin")
        exp.delete_artifacts("g.bin")
        exp.set_property("q", "gone")
        exp.remove_property("q")
        exp.stop()
        exp.sync(timeout=180)
        print(exp.id)
        """,
        shift=0.0,
    )
    exp = _looked_up(short_id)
    assert exp.get_properties() == {"p": "late"}
    assert exp.get_tags() == ["kept", "new"]
    assert exp.state == "succeeded"  # the stop after the step wins over 'running' from before it
    exp.download_artifact("f.bin", str(tmp_path / "out"))
    assert (tmp_path / "out" / "f.bin").read_bytes() == b"second"
    with pytest.raises(FileNotFound):
        exp.download_artifact("g.bin", str(tmp_path / "out"))
    # the event clock never went back: within the session, ts grows with seq
    events = exp._backend.read().tables.query_df(
        "SELECT ts, seq FROM events FINAL WHERE experiment_id = {e:String} ORDER BY seq",
        {"e": exp.internal_id},
    )
    ts = events["ts"].tolist()
    assert len(ts) >= 12 and all(a < b for a, b in itertools.pairwise(ts))
    assert exp.get_system_properties()["finished"] >= exp.get_system_properties()["created"]


def test_a_process_whose_clock_is_behind_orders_after_what_it_read(
    deployment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook an hour behind looks the experiment up, then changes it: its change is the later one."""
    short_id = _run(
        """
        exp = expstream.create_experiment("read then write", upload_source_files=[], send_hardware_metrics=False)
        exp.set_property("p", "by the run")
        exp.append_tag("t")
        exp.stop()
        exp.sync(timeout=180)
        print(exp.id)
        """,
        shift=0.0,
    )
    behind = time.time
    monkeypatch.setattr("expstream.producer.stream._time", lambda: behind() - 3600.0)
    exp = _looked_up(short_id)
    exp.set_property("p", "by the notebook")
    exp.remove_tag("t")
    exp.sync(timeout=180)
    assert exp.get_properties() == {"p": "by the notebook"}
    assert exp.get_tags() == []


def test_a_writer_five_minutes_behind_reads_as_running(deployment: str, monkeypatch: pytest.MonkeyPatch) -> None:
    body = """
        exp = expstream.create_experiment("behind", upload_source_files=[], send_hardware_metrics=False)
        exp.log_metric("m", 1.0)
        exp.sync(timeout=180)
        time.sleep(1.0)
        exp.sync(timeout=180)
        print(exp.id, flush=True)
        time.sleep(120)
        """
    proc = subprocess.Popen(
        [*_script(body), "-300", PROJECT], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        short_id = proc.stdout.readline().strip()
        assert short_id
        exp = _looked_up(short_id)
        assert exp.state == "running"
        real = time.time
        monkeypatch.setattr(reader_module.time, "time", lambda: real() + 300.0)  # and the reader 5 minutes ahead
        assert exp.state == "running"
        (row,) = expstream.project.get_experiments(state="running")
        assert row.id == short_id
        proc.kill()
        proc.wait()
        exp.state  # noqa: B018  (a read: the last heartbeats are materialized, received now)
        monkeypatch.setattr(rules, "ABORTED_AFTER", 1.0)
        time.sleep(3.5)  # more than ABORTED_AFTER by the store's clock, which counts whole seconds
        assert exp.state == "aborted"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
