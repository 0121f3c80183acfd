"""The warm embedded path (issue 10's table): every figure a median of ``--runs`` runs, each in fresh processes.

python bench/bench_warm.py [--runs 5] [--points 1000000] [--only NAME ...]

Rows: ``e2e`` (1M points logged, synced, read back in one process, daemon start included), ``e2e_warm`` (the
same in a home whose daemon an earlier script left running), ``start`` (a client's first request → the daemon
it spawned answers: on a fresh home, then again after that daemon stopped), ``sync`` (sync() right
after 1 point / with nothing new, warm daemon), ``read`` (get_numeric_channels_values of 1M points warm / first
call in a new process), ``visible`` (a point logged → seen by a reader in another process, no sync), ``cold``
(sync() of 100,000 points after the venv's chdb files were evicted from the page cache with
``posix_fadvise(DONTNEED)``, warm daemon), ``rss`` (peak RSS of a process that logs 1M points and reads them back).
Every run uses its own temporary EXPSTREAM_HOME and stops its daemon afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

QUIET = (
    "upload_source_files=[], upload_stdout=False, upload_stderr=False, send_hardware_metrics=False, "
    "run_monitoring_thread=False, handle_uncaught_exceptions=False"
)

_PRELUDE = textwrap.dedent(
    f"""
    import json, os, resource, sys, time
    import expstream
    def new_exp(name="bench"):
        return expstream.init("bench/warm").create_experiment(name=name, {QUIET})
    def out(**kw):
        print("RESULT " + json.dumps(kw), flush=True)
    """
)

SCRIPTS = {
    "e2e": """
        n = int(sys.argv[1])
        t0 = time.perf_counter()
        exp = new_exp()
        log = exp.log_metric
        for _ in range(n):
            log("loss", 0.25)
        t1 = time.perf_counter(); exp.sync(); t2 = time.perf_counter()
        df = exp.get_numeric_channels_values("loss"); t3 = time.perf_counter()
        assert len(df) == n
        out(log=t1 - t0, sync=t2 - t1, read=t3 - t2, total=t3 - t0)
    """,
    "sync": """
        exp = new_exp(); exp.log_metric("loss", 0.0); exp.sync()  # the daemon is up and warm
        one, none = [], []
        for i in range(20):
            exp.log_metric("loss", float(i))
            t = time.perf_counter(); exp.sync(); one.append(time.perf_counter() - t)
            t = time.perf_counter(); exp.sync(); none.append(time.perf_counter() - t)
        one.sort(); none.sort()
        out(one=one[len(one) // 2], none=none[len(none) // 2])
    """,
    "start": """
        from expstream.consumers.warm.client import WarmClient
        client = WarmClient(os.environ["EXPSTREAM_HOME"])
        t = time.perf_counter(); client.ping(); fresh = time.perf_counter() - t  # spawn, imports, chdb, DDL
        client.stop_daemon()
        t = time.perf_counter(); client.ping(); again = time.perf_counter() - t  # the tables exist already
        out(fresh=fresh, again=again)
    """,
    "daemon_prepare": """
        exp = new_exp("earlier"); exp.log_metric("loss", 0.0); exp.sync()  # leaves the home's daemon up
        out(pid=os.getpid())
    """,
    "read_prepare": """
        n = int(sys.argv[1])
        exp = new_exp()
        for _ in range(n):
            exp.log_metric("loss", 0.5)
        exp.sync()
        out(id=exp.id)
    """,
    "read": """
        exp = expstream.init("bench/warm").get_experiments(id=sys.argv[2])[0]
        t = time.perf_counter(); df = exp.get_numeric_channels_values("loss"); first = time.perf_counter() - t
        warm = []
        for _ in range(5):
            t = time.perf_counter(); df = exp.get_numeric_channels_values("loss"); warm.append(time.perf_counter() - t)
        assert len(df) == int(sys.argv[1])
        out(first=first, warm=sorted(warm)[2], chdb="chdb" in sys.modules)
    """,
    "visible_writer": """
        exp = new_exp("live"); exp.log_metric("loss", 0, 0.0); exp.sync()
        print("READY", flush=True)
        sys.stdin.readline()
        t = time.time(); exp.log_metric("loss", 1, 1.0)  # flushed by the background flusher, no sync()
        out(logged=t)
        sys.stdin.readline()
    """,
    "visible_reader": """
        from expstream.consumers.warm.client import WarmClient
        from expstream.consumers.warm.tables import WarmTables
        tables = WarmTables(WarmClient.for_home(os.environ["EXPSTREAM_HOME"]))
        print("READY", flush=True)
        while True:
            n = int(tables.query_df("SELECT count() AS n FROM points_numeric WHERE namespace = 'user'")["n"].iloc[0])
            if n >= 2:
                break
            time.sleep(0.005)
        out(seen=time.time())
    """,
    "cold": """
        import chdb, pathlib
        exp = new_exp(); exp.log_metric("loss", 0.0); exp.sync()  # the daemon is up and warm
        for _ in range(100_000):
            exp.log_metric("loss", 0.5)
        exp.wait()
        evicted = 0
        for path in pathlib.Path(chdb.__file__).parent.rglob("*"):
            if path.is_file():
                fd = os.open(path, os.O_RDONLY)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                os.close(fd); evicted += path.stat().st_size
        t = time.perf_counter(); exp.sync(); out(sync=time.perf_counter() - t, evicted_mb=evicted / 2**20)
    """,
    "rss": """
        n = int(sys.argv[1])
        exp = new_exp()
        for _ in range(n):
            exp.log_metric("loss", 0.25)
        df = exp.get_numeric_channels_values("loss")
        assert len(df) == n
        out(peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, chdb="chdb" in sys.modules)
    """,
}


def _code(name: str) -> str:
    return _PRELUDE + textwrap.dedent(SCRIPTS[name])


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, EXPSTREAM_HOME=str(home))


def run(name: str, home: Path, *args: object) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _code(name), *map(str, args)],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed: {done.stderr[-3000:]}")
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    result: dict[str, float] = json.loads(line[7:])
    return result


def stop_daemon(home: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from expstream.consumers.warm.client import WarmClient, daemon_alive
    from expstream.consumers.warm.protocol import WarmPaths

    if home.exists() and daemon_alive(WarmPaths(home)):
        WarmClient(home).stop_daemon()


def visible(home: Path) -> dict[str, float]:
    writer = subprocess.Popen(
        [sys.executable, "-c", _code("visible_writer")], env=_env(home), stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert writer.stdin is not None and writer.stdout is not None
    assert writer.stdout.readline().strip() == "READY"
    reader = subprocess.Popen(
        [sys.executable, "-c", _code("visible_reader")], env=_env(home), stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None and reader.stdout.readline().strip() == "READY"
    writer.stdin.write("\n")
    writer.stdin.flush()
    logged = json.loads(writer.stdout.readline()[7:])["logged"]
    seen = json.loads(reader.stdout.readline()[7:])["seen"]
    writer.stdin.write("\n")
    writer.stdin.flush()
    writer.wait(60)
    reader.wait(60)
    return {"latency": seen - logged}


def measure(name: str, runs: int, points: int) -> dict[str, float]:
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="expstream-bench-") as folder:
            home = Path(folder) / "home"
            try:
                if name == "read":
                    prepared = run("read_prepare", home, points)
                    stop_daemon(home)  # the first call pays the daemon start, like a fresh notebook on a cold home
                    results.append(run("read", home, points, prepared["id"]))
                elif name == "e2e_warm":
                    run("daemon_prepare", home)  # an earlier script of the same home left its daemon up
                    results.append(run("e2e", home, points))
                elif name == "visible":
                    results.append(visible(home))
                else:
                    results.append(run(name, home, points))
            finally:
                stop_daemon(home)
    keys = [k for k, v in results[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    summary = {k: statistics.median(r[k] for r in results) for k in keys}
    summary.update({k: v for k, v in results[0].items() if isinstance(v, bool)})
    return summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--only", nargs="*", default=["e2e", "start", "sync", "read", "visible", "cold", "rss"])
    args = parser.parse_args()
    for name in args.only:
        summary = measure(name, args.runs, args.points)
        shown = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items())
        print(f"{name}: median of {args.runs}: {shown}", flush=True)


if __name__ == "__main__":
    main()
