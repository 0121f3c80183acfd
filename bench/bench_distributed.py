"""Distributed ingest: logged → Kafka → consumer service(s) → visible in ClickHouse.

    python bench/bench_distributed.py [--points 3000000] [--consumers 1] [--channels 10] [--experiments 1]
                                  [--json FILE]

Starts Kafka, ClickHouse and S3 with deploy/services/provision.py (or uses EXPSTREAM_KAFKA /
EXPSTREAM_CLICKHOUSE / EXPSTREAM_S3 if set: also a cluster of deploy/services/cluster.py with
EXPSTREAM_CLICKHOUSE_CLUSTER), runs ``expstream consume`` processes, logs the points
from this process as fast as it can, and reports: sustained end-to-end throughput (first log call →
last point visible in ClickHouse), freshness (a probe metric logged every 100 ms, timed until a query
sees it: p50 / p99), the CPU each thread of the producer process used while logging, and bytes per
point in the spool (Avro, uncompressed), on the broker (after compression) and in ClickHouse.
``--json FILE`` also writes the figures there (bench/bench_cluster.py runs this script once per configuration).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]


def _provision():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("provision", ROOT / "deploy" / "services" / "provision.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _thread_cpu() -> dict[str, float]:
    """CPU seconds used so far by each named thread of this process (Linux /proc)."""
    out = {}
    for thread in threading.enumerate():
        try:
            fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[thread.name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return out


def process_cpu(pid: int) -> float:
    """CPU seconds a process used so far (utime + stime, Linux /proc); 0.0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bytes_sent_to(port: int) -> int:
    """Bytes sent so far by the open TCP connections to 127.0.0.1:`port` (``ss``'s ``bytes_sent``; 0 without ss)."""
    try:
        out = subprocess.run(
            ["ss", "-tinH", "dst", f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(int(part.split(":")[1]) for part in out.split() if part.startswith("bytes_sent:"))


def watch(experiment_id: str) -> None:
    """Print, for each probe point, the seconds from its log call until a query saw it."""
    import signal

    from expstream.config import load_settings
    from expstream.wiring import open_reader

    tables = open_reader(load_settings()).tables
    seen, latencies = -1.0, []
    signal.signal(signal.SIGTERM, lambda *_: (print(*latencies), sys.stdout.flush(), os._exit(0)))
    while True:
        df = tables.query_df(
            "SELECT x, y FROM points_numeric WHERE experiment_id = {e:String} AND channel = 'probe' "
            "AND x > {seen:Float64} ORDER BY x",
            {"e": experiment_id, "seen": seen},
        )
        now = time.time()
        for x, y in zip(df["x"], df["y"], strict=True):
            latencies.append(round(now - float(y), 4))
            seen = max(seen, float(x))
        time.sleep(0.05)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--watch":
        watch(sys.argv[2])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=3_000_000)
    parser.add_argument("--consumers", type=int, default=1)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument(
        "--experiments", type=int, default=1, help="log round-robin to this many (one experiment: one partition)"
    )
    parser.add_argument("--rate", type=float, default=0.0, help="points/s to log at (0: as fast as possible)")
    parser.add_argument("--tag", default="", help="topic prefix and consumer group are bench<tag> (default: random)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="expstream-bench-dist-"))
    provision, state_path, broker_dir = None, folder / "services.json", None
    if not os.environ.get("EXPSTREAM_KAFKA"):
        provision = _provision()
        provision.install()
        state = provision.start(None, state_path)
        os.environ.update(state["env"])
        broker_dir = Path(state["services"]["kafka"]["data_dir"])
    tag = args.tag or uuid.uuid4().hex[:8]
    os.environ.update(
        EXPSTREAM_HOME=str(folder / "home"),
        EXPSTREAM_KAFKA_TOPIC_PREFIX=f"bench{tag}",
        EXPSTREAM_CONSUMER_GROUP=f"bench{tag}",
    )
    consumers = [
        subprocess.Popen([sys.executable, "-m", "expstream", "consume"], stderr=subprocess.DEVNULL)
        for _ in range(args.consumers)
    ]
    try:
        import expstream

        expstream.init("bench/distributed")
        exp = expstream.create_experiment(
            "ingest", upload_source_files=[], send_hardware_metrics=False, upload_stdout=False, upload_stderr=False
        )
        exps = [exp] + [
            expstream.create_experiment(
                f"ingest-{e}", upload_source_files=[], send_hardware_metrics=False, upload_stdout=False,
                upload_stderr=False,
            )
            for e in range(1, args.experiments)
        ]  # fmt: skip
        tables = exp._backend.reader.tables
        exp.log_metric("warm-up", 0.0)  # consumers have joined their group and caught up: steady state from here
        exp.sync(timeout=120)
        stop = threading.Event()

        def probe() -> None:  # log a timestamp every 100 ms
            while not stop.is_set():
                exp.log_metric("probe", time.time())
                time.sleep(0.1)

        watcher = subprocess.Popen(  # in its own process: queries must not steal the producer's GIL
            [sys.executable, __file__, "--watch", exp.internal_id], stdout=subprocess.PIPE, text=True
        )
        threading.Thread(target=probe, daemon=True).start()
        names = [f"metric_{c}" for c in range(args.channels)]
        per_channel = args.points // (args.channels * len(exps))
        cpu_before = _thread_cpu()
        start = time.perf_counter()
        logs = [e.log_metric for e in exps]
        step_time = args.channels * len(exps) / args.rate if args.rate else 0.0
        for i in range(per_channel):
            for log in logs:
                for name in names:
                    log(name, i * 0.001)
            if step_time and i % 1000 == 999:  # hold the rate, 1,000 steps at a time
                ahead = start + (i + 1) * step_time - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
        logged = time.perf_counter()
        cpu = {name: (t - cpu_before.get(name, 0.0)) / (logged - start) for name, t in _thread_cpu().items()}
        watermark = exp._backend.writer.flush()
        exp._backend.materialize(watermark, 600)
        visible = time.perf_counter()
        consumer_cpu = sum(process_cpu(c.pid) for c in consumers)  # start-up and warm-up included
        # every open connection to the ClickHouse server: the consumers' inserts, and this process's few queries
        consumer_sent = bytes_sent_to(urlsplit(os.environ["EXPSTREAM_CLICKHOUSE"]).port or 9000)
        time.sleep(1.0)  # the last probes become visible
        stop.set()
        watcher.terminate()
        latencies = [float(v) for v in watcher.communicate(timeout=30)[0].split()]
        total = per_channel * args.channels * len(exps)
        counted = 0
        for e in exps:
            df = tables.query_df(
                "SELECT count() AS n FROM points_numeric WHERE experiment_id = {e:String} AND channel LIKE 'metric_%'",
                {"e": e.internal_id},
            )
            counted += int(df["n"].iloc[0])
        assert counted >= total, (counted, total)
        stored = tables.query_df(
            "SELECT sum(bytes) AS b, sum(rows) AS r FROM system.parts WHERE active "
            "AND table IN ('points_numeric', 'points_numeric_local') AND database = currentDatabase()"
        )
        wire_bytes = getattr(exp._backend.writer.transport, "forwarded_bytes", 0)
        print(f"{total:,} points, {args.consumers} consumer(s), {len(exps)} experiment(s) x {args.channels} channels")
        print(f"  logging loop: {logged - start:.2f} s ({total / (logged - start):,.0f} points/s)")
        print(f"  end to end (first log → all visible in ClickHouse): {visible - start:.2f} s "
              f"= {total / (visible - start):,.0f} points/s")  # fmt: skip
        print(f"  consumer processes: {consumer_cpu:.1f} CPU s = {consumer_cpu / total * 1e6:.2f} core-µs per point; "
              f"sent ClickHouse {consumer_sent / total:.1f} bytes per point")  # fmt: skip
        busy = ", ".join(f"{name} {share:.3f}" for name, share in sorted(cpu.items(), key=lambda kv: -kv[1]) if share)
        print(f"  producer threads while logging, cores: {busy}")
        if latencies:
            q = statistics.quantiles(latencies, n=100)
            print(f"  freshness over {len(latencies)} probes: p50 {q[49]:.2f} s, p99 {q[98]:.2f} s")
        if float(stored["r"].iloc[0]):  # on a cluster: this server's replica, if the experiment's shard is here
            print(f"  bytes per point in ClickHouse: {float(stored['b'].iloc[0]) / float(stored['r'].iloc[0]):.1f}")
        if wire_bytes:
            print(f"  bytes per point on the wire (Avro messages before compression): {wire_bytes / total:.1f}")
        if broker_dir is not None:
            print(f"  broker log bytes per point (compressed, whole broker): {_du(broker_dir) / total:.1f}")
        if args.json is not None:
            q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
            figures = {
                "points": total, "consumers": args.consumers, "topic_prefix": f"bench{tag}",
                "experiments": len(exps), "logging_s": logged - start, "end_to_end_s": visible - start,
                "points_per_s": total / (visible - start), "probes": len(latencies), "p50_s": q[49], "p99_s": q[98],
                "wire_avro_bytes_per_point": wire_bytes / total if wire_bytes else None,
                "consumer_cpu_s": consumer_cpu,
                "clickhouse_bytes_sent_per_point": consumer_sent / total, "producer_cores": sum(cpu.values()),
            }  # fmt: skip
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        for e in exps:
            e.stop()
    finally:
        for c in consumers:
            c.terminate()
        for c in consumers:
            c.wait(timeout=30)
        if provision is not None:
            provision.stop(None, state_path)


if __name__ == "__main__":
    main()
