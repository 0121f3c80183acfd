"""A training process whose store fills up: ``python full_disk_worker.py <points> <report> [recover|die]``.

The disk is made "full" for this process with ``RLIMIT_FSIZE`` (writes past the limit fail with EFBIG,
as they fail with ENOSPC on a full filesystem; SIGXFSZ is ignored so the write returns the error),
which needs no privileges and touches no other process. Steps, each reported as a JSON line:

1. create an experiment, log a warm-up channel and make it durable (space still there);
2. take the space away, log ``points`` points, call ``wait()``: it must raise, not claim durability;
3. ``recover`` (the default): give the space back, call ``wait()`` again: now durable; then wait for
   the parent's SIGKILL. ``die``: say so and wait for the SIGKILL with the disk still full, so what was
   refused is left for the next process of the home.
"""

from __future__ import annotations

import json
import resource
import signal
import sys
import time
from pathlib import Path

import expstream


def main(points: int, report: Path, mode: str) -> None:
    def say(**fields: object) -> None:
        with report.open("a") as out:
            out.write(json.dumps(fields) + "\n")

    project = expstream.init("acme/sandbox")
    exp = project.create_experiment(
        name="full-disk",
        upload_source_files=[],
        upload_stdout=False,
        upload_stderr=False,
        send_hardware_metrics=False,
        run_monitoring_thread=False,
        handle_uncaught_exceptions=False,
    )
    for x in range(5_000):  # the log's files grow past the size of one batch of the points below
        exp.log_metric("warmup", x, 0.0)
    exp.wait()
    say(step="created", id=exp.id)

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    home = Path(expstream.load_settings().home)
    biggest = max(p.stat().st_size for p in home.rglob("*.seg"))
    resource.setrlimit(resource.RLIMIT_FSIZE, (biggest, hard))  # no segment can grow any more
    for x in range(points):
        exp.log_metric("loss", x, x / 4.0)
    try:
        exp.wait(timeout=30)
        say(step="full", raised=None)
    except Exception as exc:
        say(step="full", raised=type(exc).__name__, message=str(exc))
    if mode == "die":
        say(step="dying")
        time.sleep(600)  # the parent kills this process now, with the disk still full

    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space is back
    exp.wait(timeout=60)
    say(step="durable")
    time.sleep(600)  # the parent kills this process now


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "recover")
