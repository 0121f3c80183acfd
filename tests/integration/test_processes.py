"""Several processes on one EXPSTREAM_HOME at once: writers, a second session of one experiment, a reader.

Writers never load chdb; the reader process materializes and queries while they append; a writer
killed with SIGKILL leaves a log that stays readable.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import expstream
from expstream.consumers.sources.local_log import LocalLogSource
from expstream.eventlog.local_log import LocalLog

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from workers import value  # noqa: E402

POINTS = 20_000
WRITERS = 3


def spawn(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "workers.py"), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"process {proc.args} did not finish: {err[-3000:]}") from None
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}: {err[-3000:]}"
    return out


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited {proc.returncode}: {proc.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def exact_points(exp: expstream.Experiment, channel: str, index: int, n: int) -> None:
    df = exp.get_numeric_channels_values(channel)
    assert df["x"].tolist() == [float(x) for x in range(n)]
    assert df[channel].tolist() == [value(index, x) for x in range(n)]


@pytest.mark.slow
def test_writers_a_shared_experiment_and_a_reader_at_once(home: Path, tmp_path: Path) -> None:
    project = expstream.init("acme/sandbox")
    # an experiment made here, written into by two more sessions in other processes
    shared = project.create_experiment(
        name="shared",
        upload_source_files=[],
        send_hardware_metrics=False,
        run_monitoring_thread=False,
        handle_uncaught_exceptions=False,
    )
    shared.wait()

    stop = tmp_path / "stop-reading"
    reader_out = tmp_path / "reader.json"
    gate = tmp_path / "reader-saw-partial-data"
    reader = spawn("reader", stop, reader_out, gate, WRITERS)
    outs = [tmp_path / f"writer-{i}.json" for i in range(WRITERS)]
    # each writer pauses halfway until the reader has seen part of every writer's points
    writers = [spawn("writer", i, POINTS, outs[i], gate) for i in range(WRITERS)]
    sharers = [spawn("shared", shared.internal_id, 10 + j, POINTS) for j in range(2)]
    try:
        for proc in writers + sharers:
            finish(proc)
        shared.stop()
        stop.write_text("done")
        finish(reader, timeout=180)
    finally:
        for proc in [reader, *writers, *sharers]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    report = json.loads(reader_out.read_text())
    assert report["errors"] == []
    assert report["iterations"] >= 2
    # it read while they wrote: it saw every writer with half of its points or so, and opened the gate
    assert sorted(report["partial"]) == [f"writer-{i}" for i in range(WRITERS)]
    assert gate.exists()
    # its last pass came after every writer stopped: it saw all of every writer
    assert report["seen"] == {f"writer-{i}": POINTS for i in range(WRITERS)}

    tables = project._backend.reader.tables
    with tables.hold():  # one chdb session for all the checks
        made = [json.loads(out.read_text()) for out in outs]
        found = {e.id: e for e in project.get_experiments()}
        assert set(found) == {m["short_id"] for m in made} | {shared.id}
        assert len(found) == WRITERS + 1  # every process got its own number
        for i, m in enumerate(made):
            exp = found[m["short_id"]]
            assert exp.internal_id == m["internal_id"]
            assert exp.name == f"writer-{i}"
            assert exp.state == "succeeded"
            exact_points(exp, "loss", i, POINTS)
            assert exp.get_tags() == sorted(["concurrent", f"w{i}", "halfway"])
            assert exp.get_properties() == {"writer": str(i), "halfway": str(POINTS // 2), "done": "yes"}
            assert exp.get_parameters() == {"index": float(i)}

        again = found[shared.id]
        assert again.state == "succeeded"
        assert set(again.get_logs()) == {"shared-10", "shared-11"}
        for j in (10, 11):
            exact_points(again, f"shared-{j}", j, POINTS)
        properties = again.get_properties()
        assert set(properties) == {"shared-10", "shared-11"}
        assert properties["shared-10"] != properties["shared-11"]  # two producer sessions
        assert tables.query_df("SELECT count() AS n FROM points_numeric FINAL")["n"].tolist() == [5 * POINTS]
    assert not (home / "dead-letter").exists()


@pytest.mark.slow
def test_a_writer_killed_mid_logging_leaves_a_readable_log(home: Path, tmp_path: Path) -> None:
    out = tmp_path / "endless.json"
    most = 5_000_000
    proc = spawn("endless", 7, most, out)
    try:
        wait_for(out, proc)
        segments = home / "log" / "expstream.events"
        deadline = time.monotonic() + 60
        while sum(f.stat().st_size for f in segments.rglob("*.seg")) < 400_000:  # ~20,000 points in
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the writer wrote too little"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    made = json.loads(out.read_text())

    # the log itself reads without an error, whatever the kill cut
    log = LocalLog(home / "log")
    source = LocalLogSource(log, group="inspection", positions_dir=tmp_path / "positions")
    total = 0
    while batch := source.poll(10_000):
        total += len(batch)
    assert total > 2

    project = expstream.init("acme/sandbox")
    (exp,) = project.get_experiments()
    assert exp.id == made["short_id"]
    assert exp.state == "running"  # it never stopped
    df = exp.get_numeric_channels_values("loss")
    n = len(df)
    assert 0 < n <= most
    assert df["x"].tolist() == [float(x) for x in range(n)]  # contiguous from 0: no hole, no torn batch
    assert df["loss"].tolist() == [value(7, x) for x in range(n)]
    assert not (home / "dead-letter").exists()
