"""What create_experiment starts: output and logger mirroring, monitoring, states of dying processes."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import expstream
from expstream import rules


def system_logs(exp: expstream.Experiment) -> dict[str, object]:
    return {c.name: c for c in exp._backend.reader.channels(exp.internal_id, "system")}


def test_stdout_logger_and_monitoring_are_recorded(project: expstream.Project) -> None:
    logger = logging.getLogger("expstream-test-train")
    logger.setLevel(logging.INFO)
    exp = project.create_experiment("ctx", logger=logger, upload_source_files=[])
    print("visible in the terminal and in the stdout log")
    sys.stderr.write("to stderr\n")
    logger.info("from the logger")
    exp.stop()
    exp.sync()
    logs = system_logs(exp)
    assert logs["stdout"].y == "visible in the terminal and in the stdout log"
    assert logs["stderr"].y == "to stderr"
    assert logs["logger"].y == "from the logger"
    hardware = exp.get_hardware_utilization()
    assert list(hardware.columns[:4]) == ["x_ram", "y_ram", "x_cpu", "y_cpu"]
    assert len(hardware) >= 1 and hardware["y_ram"].iloc[0] > 0
    assert "stdout" not in exp.get_logs()  # user getters see user logs only


def test_switches_turn_parts_off(project: expstream.Project) -> None:
    before = sys.stdout, sys.excepthook
    exp = project.create_experiment(
        "quiet",
        upload_source_files=[],
        upload_stdout=False,
        upload_stderr=False,
        send_hardware_metrics=False,
        handle_uncaught_exceptions=False,
    )
    print("not recorded")
    assert (sys.stdout, sys.excepthook) == before
    exp.stop()
    exp.sync()
    assert system_logs(exp) == {}
    assert exp.get_hardware_utilization().empty


def run_script(home: Path, body: str, *, wait: bool = True) -> subprocess.Popen[str]:
    script = "import expstream, time, sys\nexpstream.init('acme/sandbox')\n" + textwrap.dedent(body)
    env = dict(os.environ, EXPSTREAM_HOME=str(home), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if wait:
        proc.wait(timeout=60)
    return proc


def test_uncaught_exception_fails_the_experiment(home: Path, project: expstream.Project) -> None:
    proc = run_script(home, "exp = expstream.create_experiment('crash', upload_source_files=[])\n"
                      "exp.log_metric('m', 1)\nraise RuntimeError('boom')\n")  # fmt: skip
    assert proc.returncode == 1 and "boom" in proc.stderr.read()
    (exp,) = project.get_experiments()
    assert exp.state == "failed"
    assert exp.get_numeric_channels_values("m")["m"].tolist() == [1.0]
    traceback = exp._backend.reader.tables.query_df("SELECT traceback FROM states WHERE state = 'failed'")
    assert "RuntimeError: boom" in traceback["traceback"].iloc[0]


def test_sigterm_flushes_and_aborts(home: Path, project: expstream.Project) -> None:
    proc = run_script(
        home,
        """
        exp = expstream.create_experiment('term', upload_source_files=[])
        for i in range(1000):
            exp.log_metric('m', i)
        print('ready', flush=True)
        time.sleep(60)
        """,
        wait=False,
    )
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    (exp,) = project.get_experiments()
    assert exp.state == "aborted"
    assert len(exp.get_numeric_channels_values("m")) == 1000


def test_killed_process_reads_as_aborted_once_heartbeats_stop(
    home: Path, project: expstream.Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = run_script(
        home,
        """
        exp = expstream.create_experiment('killed', upload_source_files=[])
        exp.log_metric('m', 1)
        exp.wait()
        time.sleep(0.5)
        exp.wait()
        print('ready', flush=True)
        time.sleep(60)
        """,
        wait=False,
    )
    assert proc.stdout.readline().strip() == "ready"
    (exp,) = project.get_experiments()
    assert exp.state == "running"  # heartbeats are fresh
    proc.kill()
    proc.wait()
    assert exp.state == "running"  # the last heartbeats are materialized now, received by the store now
    monkeypatch.setattr(rules, "ABORTED_AFTER", 0.5)
    time.sleep(2.5)  # more than ABORTED_AFTER on the store's clock, which counts whole seconds
    assert exp.state == "aborted"
    assert [e.id for e in project.get_experiments(state="aborted")] == [exp.id]


def test_processes_with_one_run_id_log_into_one_experiment(home: Path, project: expstream.Project) -> None:
    body = """
    import os
    rank = int(os.environ['RANK'])
    exp = expstream.create_experiment('ddp', run_id='job-7', upload_source_files=[])
    for i in range(3000):
        exp.log_metric(f'rank{rank}/loss', i * 0.5)
        exp.log_metric('merged', i)
    print(exp.id)
    exp.stop()
    """
    procs = []
    for rank in range(3):
        os.environ["RANK"] = str(rank)
        procs.append(run_script(home, body, wait=False))
    os.environ.pop("RANK")
    ids = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert ids == {"SAN-1"}
    (exp,) = project.get_experiments()
    values = exp.get_numeric_channels_values("rank0/loss", "rank1/loss", "rank2/loss")
    assert len(values) == 3000 and values.notna().all().all()
    assert values["rank2/loss"].tolist() == [i * 0.5 for i in range(3000)]
    assert exp.get_numeric_channels_values("merged")["merged"].tolist() == list(range(3000))
    hardware = exp.get_hardware_utilization()
    assert {"x_cpu", "y_cpu"} <= set(hardware.columns)
    assert sum(c.startswith("y_cpu_rank") for c in hardware.columns) == 2  # the two attached ranks
