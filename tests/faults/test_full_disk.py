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


def _run_until_durable(report: Path) -> list[dict]:
    child = subprocess.Popen([sys.executable, str(WORKER), str(POINTS), str(report)], env=dict(os.environ))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and child.poll() is None:
            steps = _steps(report)
            if steps and steps[-1]["step"] == "durable":
                break
            time.sleep(0.05)
        steps = _steps(report)
        assert steps and steps[-1]["step"] == "durable", f"child ended early ({child.poll()}): {steps}"
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
    assert "not durable" in full["message"] and "kept in memory" in full["message"]
    return str(created["id"])


def _points(short_id: str) -> list[tuple[float, float]]:
    exp = expstream.init("acme/sandbox").get_experiments(id=short_id)[0]
    values = exp.get_numeric_channels_values("loss")
    return list(zip(values["x"], values["loss"], strict=True))


def test_full_disk_embedded(home: Path, tmp_path: Path) -> None:
    short_id = _check(_run_until_durable(tmp_path / "report.jsonl"))
    assert _points(short_id) == [(float(x), x / 4.0) for x in range(POINTS)]  # all 200, once each


def test_full_disk_distributed(cluster: Settings, consumer: object, tmp_path: Path) -> None:
    short_id = _check(_run_until_durable(tmp_path / "report.jsonl"))
    deadline = time.monotonic() + 120  # the consumer materializes what the killed child left in Kafka
    while len(_points(short_id)) < POINTS and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _points(short_id) == [(float(x), x / 4.0) for x in range(POINTS)]


@pytest.fixture(autouse=True)
def _no_leftover_project_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEPTUNE_PROJECT", raising=False)
