"""A full disk is never reported as durable, and what waited is written once space returns.

Both backends: the embedded log and the Kafka transport's spool are the same append-only files, so the
same child process (``full_disk_worker.py``) runs against each; the parent SIGKILLs it right after its
second ``wait()`` and counts what survived.
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
from expstream.config import Settings

WORKER = Path(__file__).with_name("full_disk_worker.py")
POINTS = 200


def _run_until_durable(report: Path, mode: str = "recover", last: str = "durable") -> list[dict]:
    env = dict(os.environ, EXPSTREAM_BATCH_POINTS="20")  # batches smaller than the log's files: the disk takes them
    child = subprocess.Popen([sys.executable, str(WORKER), str(POINTS), str(report), mode], env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            steps = _steps(report)
            if steps and steps[-1]["step"] == last:
                break
            time.sleep(0.05)
        steps = _steps(report)
        assert steps and steps[-1]["step"] == last, f"child ended early ({child.poll()}): {steps}"
    finally:
        child.send_signal(signal.SIGKILL)  # right after it said durable: nothing more can be written
        child.wait()
    return steps


def _steps(report: Path) -> list[dict]:
    if not report.exists():
        return []
    return [json.loads(line) for line in report.read_text().splitlines() if line.endswith("}")]


def _check(steps: list[dict]) -> str:
    created, full, _ = steps
    assert full["raised"] == "DurabilityError", full
    # the full disk takes no more appends to the log's files, but small new files: the refused batches wait there
    assert "not durable" in full["message"] and "kept on disk in" in full["message"], full["message"]
    return str(created["id"])


def _points(short_id: str) -> list[tuple[float, float]]:
    exp = expstream.init("acme/sandbox").get_experiments(id=short_id)[0]
    values = exp.get_numeric_channels_values("loss")
    return list(zip(values["x"], values["loss"], strict=True))


def test_full_disk_embedded(home: Path, tmp_path: Path) -> None:
    short_id = _check(_run_until_durable(tmp_path / "report.jsonl"))
    assert _points(short_id) == [(float(x), x / 4.0) for x in range(POINTS)]  # all 200, once each


def test_what_a_process_killed_on_a_full_disk_left_is_written_by_the_next(home: Path, tmp_path: Path) -> None:
    short_id = _check(_run_until_durable(tmp_path / "report.jsonl", mode="die", last="dying"))
    assert list(home.glob("pending/log/*/*.batch"))  # killed with the disk full: the batches wait in its home
    assert _points(short_id) == [(float(x), x / 4.0) for x in range(POINTS)]  # this process wrote them, once each
    assert not list(home.glob("pending/log/*/*.batch"))


def test_full_disk_distributed(cluster: Settings, consumer: object, tmp_path: Path) -> None:
    short_id = _check(_run_until_durable(tmp_path / "report.jsonl"))
    deadline = time.monotonic() + 120  # the consumer materializes what the killed child left in Kafka
    while len(_points(short_id)) < POINTS and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _points(short_id) == [(float(x), x / 4.0) for x in range(POINTS)]


def test_what_a_process_killed_on_a_full_spool_left_is_written_by_the_next(
    cluster: Settings, consumer: object, tmp_path: Path
) -> None:
    short_id = _check(_run_until_durable(tmp_path / "report.jsonl", mode="die", last="dying"))
    home = Path(cluster.home)
    assert list(home.glob("pending/kafka/*/*.batch"))
    deadline = time.monotonic() + 120  # this process's writer sends them to Kafka; the consumer materializes them
    while len(_points(short_id)) < POINTS and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _points(short_id) == [(float(x), x / 4.0) for x in range(POINTS)]


@pytest.fixture(autouse=True)
def _no_leftover_project_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEPTUNE_PROJECT", raising=False)
