"""`expstream consume`: what ends it is one error line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_services_unreachable_at_start_end_consume_with_one_error_line(tmp_path: Path) -> None:
    env = dict(
        os.environ,
        EXPSTREAM_HOME=str(tmp_path / "home"),
        EXPSTREAM_KAFKA="127.0.0.1:9",  # nothing listens on the discard port
        EXPSTREAM_CLICKHOUSE="clickhouse://default:t0psecret@127.0.0.1:9/expstream",
        EXPSTREAM_S3="http://key:s3cret@127.0.0.1:9/bucket",
    )
    done = subprocess.run(
        [sys.executable, "-m", "expstream", "consume", "--once"],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: ") and done.stderr.count("\n") == 1
    assert "t0psecret" not in done.stderr and "s3cret" not in done.stderr


def test_a_stopped_consume_leaves_its_source_at_once(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """SIGTERM/Ctrl-C end ``run``; the source is closed then, so a Kafka member leaves its group without waiting
    for its session to time out (a rolling restart hands the partitions over at once), also when run fails."""
    from click.testing import CliRunner

    import expstream.wiring
    from expstream.cli import main

    closed: list[str] = []

    class Source:
        def close(self) -> None:
            closed.append("closed")

    class Runner:
        source = Source()

        def __init__(self, error: BaseException | None) -> None:
            self.error = error

        def run(self, stop: object) -> None:
            if self.error is not None:
                raise self.error

    for error in (None, KeyboardInterrupt()):
        monkeypatch.setattr(expstream.wiring, "consumer_runner", lambda settings, e=error: Runner(e))
        CliRunner().invoke(main, ["consume"])
    assert closed == ["closed", "closed"]
