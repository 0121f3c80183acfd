"""The scaling curve on the cluster against the single node, in one run: the figures of docs/capacity.md.

    python bench/bench_cluster.py [--cluster STATE] [--services STATE] [--points 6000000] [--rate 300000]
                                  [--consumers 1,2,3] [--experiments 12] [--query-points 1000000]
                                  [--leaderboard 200] [--json FILE]

* the cluster: 3 Kafka brokers (topics RF 3, min ISR 2), ZooKeeper, 2 shards x 2 replicas of ClickHouse 18.16
  (deploy/services/cluster.py; ``--cluster`` uses one that runs, else one is started and stopped here);
* the single node: one broker, one ClickHouse, one S3 server (deploy/services/provision.py; ``--services`` uses
  running ones, else they are started and stopped here). Both use the single node's S3 server for objects.
  Servers shared with others spoil the per-part CPU and insert bytes (they count every client): prefer own ones.

For each configuration (the single node with 1 consumer, then the cluster with 1, 2, 3 ``expstream consume``
processes) ``bench/bench_distributed.py`` logs ``--points`` at ``--rate`` round-robin over ``--experiments``
experiments (so that the points spread over partitions and shards), and reports end-to-end points/s and
freshness p50/p99. Then, from the servers' own files and tables: bytes per point on the wire (the Kafka topic's
log segments per replica / points, lz4-compressed as sent), per ClickHouse replica on disk (system.parts
bytes / rows of the points table) and sent to the ClickHouse entry point (the inserts, from ``ss``); and the
CPU per point of each part. Last, through the cluster's Distributed tables and on the single node:
``get_numeric_channels_values`` of one ``--query-points`` channel and ``get_leaderboard`` of ``--leaderboard``
experiments x 20 channels (medians of 5 reads in a fresh process).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "deploy" / "services"


def _module(name: str) -> ModuleType:
    sys.path.insert(0, str(SERVICES))  # cluster.py imports provision.py beside it
    spec = importlib.util.spec_from_file_location(name, SERVICES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def _cpu(pid: int | None) -> float:
    """CPU seconds of a server process so far (utime + stime from /proc); 0.0 if it is not running."""
    if not pid:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, "", ""))


def _segment_bytes(log_dirs: list[Path], prefix: str) -> int:
    """Bytes of the log segments (*.log, not the preallocated indexes) of the events topic of `prefix`."""
    return sum(
        f.stat().st_size
        for d in log_dirs
        for part in d.rglob(f"{prefix}.events-*")
        for f in part.glob("*.log")
        if part.is_dir()
    )


def _points_on_disk(provision: ModuleType, http_ports: list[int], database: str) -> tuple[int, int]:
    """(bytes, rows) of the active parts of the points table, summed over the servers (each replica counts)."""
    total_bytes = total_rows = 0
    for port in http_ports:
        out = provision._clickhouse_query(
            port,
            "SELECT sum(bytes), sum(rows) FROM system.parts WHERE active AND database = "
            f"'{database}' AND table IN ('points_numeric', 'points_numeric_local') FORMAT TSV",
        ).split()
        total_bytes, total_rows = total_bytes + int(out[0]), total_rows + int(out[1])
    return total_bytes, total_rows


QUERIES = """
import json, statistics, subprocess, sys, time
import expstream
points, experiments = int(sys.argv[1]), int(sys.argv[2])
consumer = subprocess.Popen([sys.executable, "-m", "expstream", "consume"], stderr=subprocess.DEVNULL)
try:
    quiet = dict(upload_source_files=[], upload_stdout=False, upload_stderr=False, send_hardware_metrics=False)
    project = expstream.init("bench/cluster-queries")
    exp = project.create_experiment("query", **quiet)
    for i in range(points):
        exp.log_metric("loss", i * 0.5)
    exp.stop()
    for e in range(experiments):
        other = project.create_experiment(f"run-{e}", params={"lr": 0.001 * e, "depth": e % 7}, **quiet)
        for c in range(20):
            for x in range(10):
                other.log_metric(f"metric_{c:02d}", x, e + c + x / 10)
        other.stop()
    other.sync(timeout=600)
    exp.sync(timeout=600)
    values, board = [], []
    for _ in range(5):
        t = time.perf_counter()
        df = exp.get_numeric_channels_values("loss")
        values.append(time.perf_counter() - t)
        t = time.perf_counter()
        lb = project.get_leaderboard()
        board.append(time.perf_counter() - t)
    assert len(df) == points and len(lb) == experiments + 1, (len(df), len(lb))
    print(json.dumps({"values_s": statistics.median(values), "values_first_s": values[0],
                      "leaderboard_s": statistics.median(board), "leaderboard_first_s": board[0]}))
finally:
    consumer.terminate()
    consumer.wait(timeout=60)
"""


def _child_env(base: dict[str, str], database: str, home: Path, tag: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPSTREAM_")} | base
    env.update(
        EXPSTREAM_CLICKHOUSE=_with_database(base["EXPSTREAM_CLICKHOUSE"], database),
        EXPSTREAM_HOME=str(home),
        EXPSTREAM_KAFKA_TOPIC_PREFIX=f"bench{tag}",
        EXPSTREAM_CONSUMER_GROUP=f"bench{tag}",
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cluster", help="state file of a running deploy/services/cluster.py cluster")
    parser.add_argument("--services", help="state file of running deploy/services/provision.py services")
    parser.add_argument("--points", type=int, default=6_000_000)
    parser.add_argument("--rate", type=float, default=300_000)
    parser.add_argument("--consumers", default="1,2,3", help="consumer processes of the cluster runs")
    parser.add_argument("--experiments", type=int, default=12)
    parser.add_argument("--query-points", type=int, default=1_000_000)
    parser.add_argument("--leaderboard", type=int, default=200, help="experiments x 20 channels (0: skip)")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args()

    provision, cluster = _module("provision"), _module("cluster")
    folder = Path(tempfile.mkdtemp(prefix="expstream-bench-cluster-"))
    own_services, own_cluster = args.services is None, args.cluster is None
    services_state = Path(args.services or folder / "services.json")
    cluster_state = Path(args.cluster or folder / "cluster.json")
    try:
        if own_services:
            provision.install(["kafka", "clickhouse", "s3"])
            provision.start(["kafka", "clickhouse", "s3"], services_state)
        if own_cluster:
            cluster.install()
            cluster.start(cluster_state)
        single, nodes = provision.load_state(services_state), cluster.load_state(cluster_state)["nodes"]
        s3 = {k: v for k, v in single["env"].items() if k.startswith("EXPSTREAM_S3")}
        kafka_env = {k: v for k, v in single["env"].items() if k.startswith(("EXPSTREAM_KAFKA", "EXPSTREAM_CLICK"))}
        targets = {
            "single": {
                "env": kafka_env,
                "log_dirs": [Path(single["services"]["kafka"]["data_dir"])],
                "http_ports": [single["services"]["clickhouse"]["http_port"]],
                "replicas": 1,
                "pids": {
                    "kafka": [single["services"]["kafka"]["pid"]],
                    "clickhouse": [single["services"]["clickhouse"]["pid"]],
                },
            },
            "cluster": {
                "env": dict(cluster.load_state(cluster_state)["env"]) | s3,
                "log_dirs": [Path(nodes[n]["data_dir"]) for n in cluster.KAFKA_NODES],
                "http_ports": [nodes[n]["http_port"] for n, _ in cluster.CLICKHOUSE_NODES],
                "replicas": 3,
                "pids": {
                    "kafka": [nodes[n]["pid"] for n in cluster.KAFKA_NODES],
                    "clickhouse": [nodes[n]["pid"] for n, _ in cluster.CLICKHOUSE_NODES],
                    "zookeeper": [nodes["zookeeper"]["pid"]],
                },
            },
        }
        targets["single"]["env"] |= s3
        runs = [("single", 1)] + [("cluster", int(n)) for n in args.consumers.split(",")]
        results: dict[str, Any] = {"runs": [], "queries": {}}
        for target, consumers in runs:
            spec, tag = targets[target], uuid.uuid4().hex[:8]
            database = f"bench_{tag}"
            env = _child_env(spec["env"], database, folder / f"home-{tag}", tag)
            out = folder / f"{tag}.json"
            print(f"== {target}, {consumers} consumer(s)", flush=True)
            cpu_before = {kind: sum(map(_cpu, pids)) for kind, pids in spec["pids"].items()}
            subprocess.run(
                [sys.executable, str(ROOT / "bench" / "bench_distributed.py"), "--points", str(args.points),
                 "--rate", str(args.rate), "--consumers", str(consumers), "--experiments", str(args.experiments),
                 "--tag", tag, "--json", str(out)],
                env=env, check=True,
            )  # fmt: skip
            figures = json.loads(out.read_text())
            cpu = {kind: sum(map(_cpu, pids)) - cpu_before[kind] for kind, pids in spec["pids"].items()}
            cpu["consumers"] = figures["consumer_cpu_s"]
            cpu["producer"] = figures["producer_cores"] * figures["logging_s"]
            time.sleep(2)  # the last segment writes reach the files
            topic = _segment_bytes(spec["log_dirs"], f"bench{tag}")
            disk, rows = _points_on_disk(provision, spec["http_ports"], database)
            figures |= {
                "target": target,
                "topic_bytes_per_point_per_replica": topic / spec["replicas"] / figures["points"],
                "clickhouse_bytes_per_row_per_replica": disk / rows if rows else None,
                "clickhouse_rows_all_replicas": rows,
                "core_us_per_point": {kind: s / figures["points"] * 1e6 for kind, s in cpu.items()},
            }
            results["runs"].append(figures)
            print(f"   topic bytes per point per replica {figures['topic_bytes_per_point_per_replica']:.2f}, "
                  f"ClickHouse bytes per row per replica {figures['clickhouse_bytes_per_row_per_replica']:.2f} "
                  f"({rows:,} rows on all replicas)", flush=True)  # fmt: skip
            per_point = ", ".join(f"{k} {v:.2f}" for k, v in figures["core_us_per_point"].items())
            print(f"   CPU per point, core-µs (servers: the whole run, warm-up and drain included): {per_point}")
        for target, spec in targets.items():
            if not args.query_points:
                break
            tag = uuid.uuid4().hex[:8]
            env = _child_env(spec["env"], f"bench_{tag}", folder / f"home-{tag}", tag)
            print(f"== {target}: queries", flush=True)
            done = subprocess.run(
                [sys.executable, "-c", QUERIES, str(args.query_points), str(args.leaderboard)],
                env=env, check=True, capture_output=True, text=True,
            )  # fmt: skip
            results["queries"][target] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"   {results['queries'][target]}", flush=True)
        print("\ntarget   consumers  points/s   p50 s  p99 s  wire B/pt/replica  ClickHouse B/row/replica  insert B/pt")
        for r in results["runs"]:
            print(f"{r['target']:8} {r['consumers']:>9} {r['points_per_s']:>9,.0f} {r['p50_s']:>7.2f} "
                  f"{r['p99_s']:>6.2f} {r['topic_bytes_per_point_per_replica']:>18.2f} "
                  f"{r['clickhouse_bytes_per_row_per_replica'] or 0:>25.2f} "
                  f"{r['clickhouse_bytes_sent_per_point']:>12.1f}")  # fmt: skip
        for target, q in results["queries"].items():
            print(f"{target}: get_numeric_channels_values {args.query_points:,} points median {q['values_s']:.3f} s, "
                  f"get_leaderboard {args.leaderboard} x 20 median {q['leaderboard_s']:.3f} s")  # fmt: skip
        load = os.getloadavg()
        print(f"load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {os.cpu_count()} cores")
        if args.json is not None:
            args.json.write_text(json.dumps(results | {"load": load}, indent=2) + "\n")
    finally:
        if own_cluster:
            cluster.stop(None, cluster_state)
        if own_services:
            provision.stop(None, services_state)


if __name__ == "__main__":
    main()
