"""`expstream consume`: what ends it is one error line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


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
