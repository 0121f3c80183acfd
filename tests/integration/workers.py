"""Processes for tests/integration/test_processes.py: run as ``python workers.py <role> ...``.

Every process works on the EXPSTREAM_HOME of its environment, through the public API (or, for the
``shared`` role, through the producer stream of one experiment id that another process created).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

PROJECT = "acme/sandbox"
CHUNK = 1000


def value(writer: int, x: float) -> float:
    """The value a writer logs at x: exact in float64, and different for every writer and x."""
    return writer * 1_000_000.0 + x / 8.0


def _experiment_kwargs() -> dict[str, Any]:
    return {
        "upload_source_files": [],
        "upload_stdout": False,
        "upload_stderr": False,
        "send_hardware_metrics": False,
        "run_monitoring_thread": False,
        "handle_uncaught_exceptions": False,
    }


def _wait_for(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def writer(index: int, points: int, out: Path, gate: Path) -> None:
    """Log ``points`` points; halfway, wait (at most a minute) until the reader has seen a part of them."""
    import expstream

    project = expstream.init(PROJECT)
    exp = project.create_experiment(
        name=f"writer-{index}",
        params={"index": index},
        properties={"writer": str(index)},
        tags=["concurrent", f"w{index}"],
        **_experiment_kwargs(),
    )
    out.write_text(json.dumps({"short_id": exp.id, "internal_id": exp.internal_id, "pid": os.getpid()}))
    for start in range(0, points, CHUNK):
        for x in range(start, min(start + CHUNK, points)):
            exp.log_metric("loss", x, value(index, x))
        if start == points // 2:
            exp.set_property("halfway", str(start))
            exp.append_tag("halfway")
            exp.wait()
            _wait_for(gate, 60)
        time.sleep(0.02)  # spread the logging out: the reader works meanwhile
    exp.set_property("done", "yes")
    exp.stop()


def endless(index: int, points: int, out: Path) -> None:
    """Log until killed (or until ``points``), flushing as it goes."""
    import expstream

    project = expstream.init(PROJECT)
    exp = project.create_experiment(name=f"endless-{index}", **_experiment_kwargs())
    out.write_text(json.dumps({"short_id": exp.id, "internal_id": exp.internal_id, "pid": os.getpid()}))
    for start in range(0, points, CHUNK):
        for x in range(start, min(start + CHUNK, points)):
            exp.log_metric("loss", x, value(index, x))
        exp.wait()  # durable batch by batch: the kill lands between or inside appends
    exp.stop()


def shared(experiment_id: str, index: int, points: int) -> None:
    """Write into an experiment another process created, as a second producer session."""
    import expstream

    backend = expstream._default_backend(None, None)
    stream = backend.writer.open_stream(experiment_id)
    channel = f"shared-{index}"
    for start in range(0, points, CHUNK):
        for x in range(start, min(start + CHUNK, points)):
            stream.log_metric(channel, x, value(index, x))
        time.sleep(0.01)
    stream.add_event("PropertySet", {"key": channel, "value": f"session {backend.writer.origin.session_id}"})
    backend.writer.close()


def reader(stop: Path, out: Path, gate: Path, writers: int) -> None:
    """Read everything over and over until ``stop`` exists; check each value; never crash.

    Opens ``gate`` once it has seen ``writers`` experiments with some but not all of their points.
    """
    import expstream

    project = expstream.init(PROJECT)
    tables = project._backend.reader.tables
    report: dict[str, Any] = {"iterations": 0, "errors": [], "seen": {}, "partial": []}
    last = False
    while not last:
        last = stop.exists()  # one more full pass after the writers are done
        try:
            # one chdb session per pass (each read still catches up with the log first)
            with tables.hold():
                experiments = project.get_experiments()
                passes = [(exp, exp.name, exp.get_logs()) for exp in experiments]
            for exp, name, logs in passes:
                if "loss" not in logs or not name.startswith(("writer-", "endless-")):
                    continue
                index = int(name.split("-")[1])
                df = exp.get_numeric_channels_values("loss")
                xs, ys = df["x"].tolist(), df["loss"].tolist()
                if xs != [float(x) for x in range(len(xs))]:
                    report["errors"].append(f"{name}: x not 0..{len(xs) - 1}: {xs[:5]}...")
                bad = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isnan(y) or y != value(index, x)]
                if bad:
                    report["errors"].append(f"{name}: {len(bad)} values never logged, e.g. {bad[:3]}")
                if logs["loss"].lastX is not None and xs and logs["loss"].lastX > xs[-1]:
                    report["errors"].append(f"{name}: lastX {logs['loss'].lastX} beyond the values read")
                report["seen"][name] = max(report["seen"].get(name, 0), len(xs))
                if 0 < len(xs) < 20_000 and name not in report["partial"]:
                    report["partial"].append(name)
        except Exception:
            report["errors"].append(traceback.format_exc())
        report["iterations"] += 1
        if len(report["partial"]) >= writers and not gate.exists():
            gate.write_text("seen")
    out.write_text(json.dumps(report))


def main(argv: list[str]) -> None:
    role = argv[0]
    if role == "writer":
        writer(int(argv[1]), int(argv[2]), Path(argv[3]), Path(argv[4]))
    elif role == "endless":
        endless(int(argv[1]), int(argv[2]), Path(argv[3]))
    elif role == "shared":
        shared(argv[1], int(argv[2]), int(argv[3]))
    elif role == "reader":
        reader(Path(argv[1]), Path(argv[2]), Path(argv[3]), int(argv[4]))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
