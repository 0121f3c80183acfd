#!/usr/bin/env python3
"""Install (cached) and run a small real cluster on loopback: 3 Kafka brokers, ZooKeeper, 2x2 ClickHouse.

For the cluster tests and benchmarks on one machine without Docker. Standard library only, like provision.py
beside it (whose installers and process helpers it reuses); never imports expstream.

* Kafka: 3 nodes in KRaft combined mode (``process.roles=broker,controller``), one controller quorum of the
  three, from the cached Kafka install of provision.py; internal topics replicated 3 times.
* ZooKeeper: one Apache ZooKeeper server (org.apache.zookeeper:zookeeper from Maven Central), which ClickHouse
  18.16 needs for ``ReplicatedMergeTree`` and ``ON CLUSTER`` DDL.
* ClickHouse: 4 servers (the clickhouse-server of provision.py) forming the cluster ``expstream`` of 2 shards x
  2 replicas: ``remote_servers``, ``zookeeper``, ``macros`` (``{shard}``, ``{replica}``) and ``distributed_ddl``
  in a ``config.d/cluster.xml`` override per server.

    python deploy/services/cluster.py install
    eval "$(python deploy/services/cluster.py start [--state FILE])"   # EXPSTREAM_KAFKA=a,b,c ...
    python deploy/services/cluster.py kill kafka-2                      # SIGKILL one node (a fault)
    python deploy/services/cluster.py start                             # ... and back, same ports and data
    python deploy/services/cluster.py stop [--keep-data] [NODE ...]
    python deploy/services/cluster.py compose-config                    # deploy/compose/cluster/*.xml

The same operations are importable: install(), start(), stop(), kill(), load_state(), node_names().
Every process is small (Kafka -Xmx256m, ZooKeeper -Xmx128m): the cluster shares a 2-core machine.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import secrets
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import provision  # the file beside this one, whatever the caller's sys.path
from provision import ServiceError

ZOOKEEPER_VERSION = "3.9.5"
SNAPPY_VERSION = "1.1.10.5"
CLUSTER = "expstream"
KAFKA_NODES = ("kafka-1", "kafka-2", "kafka-3")
#: (node, shard) of the ClickHouse servers; the replicas of a shard are listed in this order in remote_servers
CLICKHOUSE_NODES = (("clickhouse-1", 1), ("clickhouse-2", 1), ("clickhouse-3", 2), ("clickhouse-4", 2))
READY_TIMEOUT = float(os.environ.get("EXPSTREAM_CLUSTER_READY_TIMEOUT", 120))

__all__ = [
    "CLUSTER",
    "COMPOSE_ADDRESSES",
    "ServiceError",
    "cluster_xml",
    "install",
    "kafka_leaders",
    "kill",
    "load_state",
    "node_names",
    "start",
    "stop",
    "write_compose_config",
]


def default_state_path() -> Path:
    return provision.cache_dir() / "cluster.json"


def node_names() -> list[str]:
    """Every node, in start order: ZooKeeper before the ClickHouse servers that need it."""
    return ["zookeeper", *KAFKA_NODES, *(name for name, _ in CLICKHOUSE_NODES)]


def _log(msg: str) -> None:
    print(f"[cluster] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- install


def zookeeper_home() -> Path | None:
    home = provision.cache_dir() / "zookeeper" / ZOOKEEPER_VERSION
    return home if (home / "lib" / ".complete").is_file() else None


def _install_zookeeper() -> str:
    if zookeeper_home() is not None:
        return ZOOKEEPER_VERSION
    home = provision.cache_dir() / "zookeeper" / ZOOKEEPER_VERSION
    # metrics-core and snappy-java are "provided" dependencies of ZooKeeper that its server needs at run time
    deps = [
        ("org.apache.zookeeper", "zookeeper", ZOOKEEPER_VERSION),
        ("io.dropwizard.metrics", "metrics-core", "4.1.12.1"),
        ("org.xerial.snappy", "snappy-java", SNAPPY_VERSION),
    ]
    deps += [
        ("org.apache.logging.log4j", a, provision.LOG4J_VERSION)
        for a in ("log4j-api", "log4j-core", "log4j-slf4j2-impl")
    ]
    _log(f"zookeeper {ZOOKEEPER_VERSION}: resolving jars with maven")
    lib = provision.resolve_jars(home, "zookeeper", ZOOKEEPER_VERSION, deps, provision.cache_dir() / "zookeeper" / "m2")
    for jar in lib.glob("logback-*.jar"):  # one slf4j binding only
        jar.unlink()
    (lib / ".complete").write_text(ZOOKEEPER_VERSION)
    return ZOOKEEPER_VERSION


def install() -> dict[str, str]:
    """Kafka and ClickHouse as provision.py installs them, and ZooKeeper; idempotent and cached."""
    versions = provision.install(["kafka", "clickhouse"])
    versions["zookeeper"] = _install_zookeeper()
    return versions


# ---------------------------------------------------------------------------------------------- state


def load_state(state_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    path = Path(state_path or default_state_path())
    return provision.load_state(path) if path.is_file() else {"nodes": {}, "env": {}}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    if not state["nodes"]:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(".tmp")
    import json

    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def _env(state: dict[str, Any]) -> dict[str, str]:
    nodes = state["nodes"]
    first = nodes["clickhouse-1"]
    return {
        "EXPSTREAM_KAFKA": ",".join(f"127.0.0.1:{nodes[n]['port']}" for n in KAFKA_NODES),
        "EXPSTREAM_CLICKHOUSE": f"clickhouse://default:@127.0.0.1:{first['port']}/{provision.DATABASE}",
        "EXPSTREAM_CLICKHOUSE_CLUSTER": CLUSTER,
    }


def _new_state() -> dict[str, Any]:
    """Fresh ports and data dirs for every node; what one node's config needs of the others is fixed here."""
    nodes: dict[str, Any] = {}
    (zk_port,) = provision._free_ports(1)
    nodes["zookeeper"] = {"port": zk_port, "data_dir": tempfile.mkdtemp(prefix="expstream-zk-")}
    cluster_id = "-"
    while cluster_id.startswith("-"):  # would read as an option
        cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
    for i, name in enumerate(KAFKA_NODES, 1):
        port, cport = provision._free_ports(2)
        data = tempfile.mkdtemp(prefix=f"expstream-{name}-")
        nodes[name] = {"port": port, "controller_port": cport, "node_id": i, "data_dir": data, "cluster_id": cluster_id}
    for name, shard in CLICKHOUSE_NODES:
        port, http_port, inter, secure = provision._free_ports(4)
        nodes[name] = {
            "port": port, "http_port": http_port, "interserver_port": inter, "secure_port": secure, "shard": shard,
            "data_dir": tempfile.mkdtemp(prefix=f"expstream-{name}-"),
        }  # fmt: skip
    return {"nodes": nodes, "env": {}, "cluster": CLUSTER}


# ---------------------------------------------------------------------------------------------- zookeeper


def _java(heap: str, data: Path, lib: Path) -> list[str]:
    (data / "log4j2.properties").write_text(provision.LOG4J2)
    return [
        "java",
        f"-Xmx{heap}",
        "-XX:+UseSerialGC",  # one GC thread: the machine has 2 cores for everything
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        f"-XX:ErrorFile={data / 'hs_err_%p.log'}",
        f"-Dlog4j2.configurationFile={data / 'log4j2.properties'}",
        "-cp",
        str(lib / "*"),
    ]


def _zookeeper_prepare(node: dict[str, Any], state: dict[str, Any]) -> list[str]:
    home = zookeeper_home()
    if home is None:
        raise ServiceError("zookeeper is not installed: run `cluster.py install`")
    data = Path(node["data_dir"])
    (data / "data").mkdir(exist_ok=True)
    conf = {
        "tickTime": "500",  # sessions of a few seconds: a stopped node's ephemeral nodes go quickly
        "initLimit": "10",
        "syncLimit": "5",
        "dataDir": str(data / "data"),
        "clientPort": str(node["port"]),
        "clientPortAddress": "127.0.0.1",
        "maxClientCnxns": "0",
        "admin.enableServer": "false",
        "4lw.commands.whitelist": "ruok,srvr",
        "maxSessionTimeout": "60000",
    }
    (data / "zoo.cfg").write_text("".join(f"{k}={v}\n" for k, v in conf.items()))
    node["version"] = ZOOKEEPER_VERSION
    return [
        *_java("128m", data, home / "lib"),
        "org.apache.zookeeper.server.ZooKeeperServerMain",
        str(data / "zoo.cfg"),
    ]


def zookeeper_ready(port: int) -> bool:
    """The four-letter word ``srvr`` reports a serving mode (``ruok`` answers before the server runs)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3.0) as sock:
            sock.sendall(b"srvr")
            return b"Mode: standalone" in sock.recv(4096)
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------- kafka


def _kafka_prepare(node: dict[str, Any], state: dict[str, Any]) -> list[str]:
    home = provision.kafka_home()
    if home is None:
        raise ServiceError("kafka is not installed: run `cluster.py install`")
    data = Path(node["data_dir"])
    nodes = state["nodes"]
    voters = ",".join(f"{nodes[n]['node_id']}@127.0.0.1:{nodes[n]['controller_port']}" for n in KAFKA_NODES)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node["node_id"]),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{node['port']},CONTROLLER://127.0.0.1:{node['controller_port']}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node['port']}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data / "kraft-logs"),
        "num.partitions": "1",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "num.replica.fetchers": "1",
        "num.recovery.threads.per.data.dir": "1",
        "background.threads": "2",
        "log.cleaner.threads": "1",
        "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
        # consumer offsets and transactions survive one broker lost, like the topics expstream creates
        "offsets.topic.replication.factor": "3",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "3",
        "transaction.state.log.min.isr": "2",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "3",
        "share.coordinator.state.topic.min.isr": "2",
        "default.replication.factor": "3",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "message.max.bytes": str(16 * 1024 * 1024),
        "replica.fetch.max.bytes": str(16 * 1024 * 1024),
        # a SIGKILLed broker is noticed within seconds, not the default 9 s + 30 s
        "broker.session.timeout.ms": "4000",
        "broker.heartbeat.interval.ms": "1000",
        "replica.lag.time.max.ms": "5000",
        "unclean.leader.election.enable": "false",
    }
    (data / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    java = _java("256m", data, home / "lib")
    if not (data / "kraft-logs" / "meta.properties").is_file():
        provision._run(
            [
                *java,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                node["cluster_id"],
                "-c",
                str(data / "server.properties"),
            ]
        )
    node["version"] = home.name
    return [*java, "kafka.Kafka", str(data / "server.properties")]


def _kafka_metadata(port: int) -> tuple[list[int], dict[tuple[str, int], int]]:
    """(broker ids, {(topic, partition): leader id}) from a Metadata v4 request (all topics)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3.0) as sock:
        resp = provision._kafka_call(sock, 3, 4, struct.pack(">ib", -1, 0))
    pos = 4  # throttle_time_ms

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        values = struct.unpack_from(fmt, resp, pos)
        pos += struct.calcsize(fmt)
        return values

    def string() -> str | None:
        (n,) = take(">h")
        if n < 0:
            return None
        nonlocal pos
        pos += n
        return resp[pos - n : pos].decode()

    brokers = []
    for _ in range(take(">i")[0]):
        (node_id,) = take(">i")
        string()  # host
        take(">i")  # port
        string()  # rack
        brokers.append(node_id)
    string()  # cluster id
    take(">i")  # controller id
    leaders: dict[tuple[str, int], int] = {}
    for _ in range(take(">i")[0]):
        take(">h")  # error
        topic = string() or ""
        take(">b")  # is_internal
        for _ in range(take(">i")[0]):
            _, partition, leader = take(">hii")
            for _ in range(2):  # replicas, isr (offline replicas come in v5)
                (count,) = take(">i")
                pos += 4 * count
            leaders[(topic, partition)] = leader
    return brokers, leaders


def kafka_ready(port: int) -> bool:
    """This broker answers and sees all brokers of the cluster registered (unfenced)."""
    try:
        return len(_kafka_metadata(port)[0]) == len(KAFKA_NODES)
    except (OSError, struct.error):
        return False


def kafka_leaders(state: dict[str, Any], topic: str) -> dict[int, str]:
    """{partition: node name of its leader} of `topic`, asked of any running broker."""
    nodes = state["nodes"]
    by_id = {nodes[n]["node_id"]: n for n in KAFKA_NODES}
    for name in KAFKA_NODES:
        if not provision._running(nodes[name]):
            continue
        with contextlib.suppress(OSError, struct.error):
            _, leaders = _kafka_metadata(nodes[name]["port"])
            return {p: by_id.get(leader, "") for (t, p), leader in sorted(leaders.items()) if t == topic}
    raise ServiceError("no Kafka broker of the cluster answers")


# ---------------------------------------------------------------------------------------------- clickhouse


#: (host, port) of ZooKeeper and of each ClickHouse server inside docker-compose.yml's cluster profile
COMPOSE_ADDRESSES = {"zookeeper": ("zookeeper", 2181)} | {name: (name, 9000) for name, _ in CLICKHOUSE_NODES}
#: where docker-compose.yml's cluster profile finds each server's override (written by `cluster.py compose-config`)
COMPOSE_CONFIG_DIR = Path(__file__).resolve().parents[1] / "compose" / "cluster"


def cluster_xml(name: str, shard: int, addresses: dict[str, tuple[str, int]]) -> str:
    """The ``config.d`` override that makes ClickHouse server `name` a replica of `shard` of the cluster.

    `addresses`: (host, port) of ``zookeeper`` and of every ClickHouse node. One function for both layouts, the
    loopback cluster started here and docker-compose.yml's cluster profile, so that they cannot drift apart."""
    shards = ""
    for number in sorted({s for _, s in CLICKHOUSE_NODES}):
        replicas = "".join(
            f"<replica><host>{addresses[n][0]}</host><port>{addresses[n][1]}</port></replica>"
            for n, s in CLICKHOUSE_NODES
            if s == number
        )
        shards += f"<shard><internal_replication>true</internal_replication>{replicas}</shard>"
    zk_host, zk_port = addresses["zookeeper"]
    return f"""<?xml version="1.0"?>
<yandex>
  <remote_servers><{CLUSTER}>{shards}</{CLUSTER}></remote_servers>
  <zookeeper>
    <node><host>{zk_host}</host><port>{zk_port}</port></node>
    <session_timeout_ms>10000</session_timeout_ms><operation_timeout_ms>5000</operation_timeout_ms>
  </zookeeper>
  <macros><shard>{shard:02d}</shard><replica>{name}</replica></macros>
  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
</yandex>
"""


def _cluster_xml(node: dict[str, Any], name: str, state: dict[str, Any]) -> str:
    nodes = state["nodes"]
    addresses = {n: ("127.0.0.1", int(nodes[n]["port"])) for n in ("zookeeper", *(c for c, _ in CLICKHOUSE_NODES))}
    return cluster_xml(name, node["shard"], addresses)


def write_compose_config(folder: Path = COMPOSE_CONFIG_DIR) -> list[Path]:
    """The overrides of docker-compose.yml's ClickHouse servers, ``<folder>/<node>.xml`` (checked in; a test
    compares them with cluster_xml())."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, shard in CLICKHOUSE_NODES:
        path = folder / f"{name}.xml"
        path.write_text(cluster_xml(name, shard, COMPOSE_ADDRESSES))
        written.append(path)
    return written


def _clickhouse_prepare(node: dict[str, Any], state: dict[str, Any], name: str) -> list[str]:
    cmd = provision._clickhouse_prepare(node)  # the single server's config.xml, users.xml and certificates
    override = Path(node["data_dir"]) / "config.d"
    override.mkdir(exist_ok=True)
    (override / "cluster.xml").write_text(_cluster_xml(node, name, state))
    return cmd


def clickhouse_ready(node: dict[str, Any]) -> bool:
    """Answers, and reaches ZooKeeper (replicated tables and ON CLUSTER DDL need it)."""
    if not provision.clickhouse_ready(node):
        return False
    try:
        provision._clickhouse_query(node["http_port"], "SELECT count() FROM system.zookeeper WHERE path = '/'")
    except OSError:
        return False
    return True


# ---------------------------------------------------------------------------------------------- start/stop


def _prepare(name: str, node: dict[str, Any], state: dict[str, Any]) -> list[str]:
    if name == "zookeeper":
        return _zookeeper_prepare(node, state)
    if name.startswith("kafka"):
        return _kafka_prepare(node, state)
    return _clickhouse_prepare(node, state, name)


def _ready(name: str, node: dict[str, Any]) -> bool:
    if name == "zookeeper":
        return zookeeper_ready(node["port"])
    if name.startswith("kafka"):
        return kafka_ready(node["port"])
    return clickhouse_ready(node)


def _logs(name: str, node: dict[str, Any]) -> str:
    """The tail of a node's log (for ClickHouse: of its error log, where the reason is)."""
    log = Path(node["log"])
    if name.startswith("clickhouse"):
        log = Path(node["data_dir"]) / "log" / "server.err.log"
    return f"log {log}:\n{provision._tail(log, 20)}"


def start(state_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Start every node that is not running and wait until all are ready; returns the state dict.

    Without a state file every node gets fresh free ports and a temporary data dir; a node that was stopped
    with keep_data or killed comes back on its ports with its data. On failure the nodes this call launched
    are stopped again (a fresh cluster's data dirs removed) and ServiceError carries the log tail.
    """
    path = Path(state_path or default_state_path())
    with provision._locked(path):
        state = load_state(path)
        fresh = not state["nodes"]
        if fresh:
            state = _new_state()
        launched: list[str] = []
        try:
            for name in node_names():
                node = state["nodes"][name]
                if node.get("pid") and provision._running(node):
                    continue
                busy = [p for k, p in node.items() if k.endswith("port") and provision._port_open(p)]
                if busy:
                    raise ServiceError(f"{name}: port(s) {busy} already in use; cannot reuse them")
                log = Path(node["data_dir"]) / f"{name}.log"
                cmd = _prepare(name, node, state)
                node.update(pid=provision._spawn(cmd, log), log=str(log), command=cmd, started_at=time.time())
                node.pop("kept", None)
                launched.append(name)
                _log(f"{name}: pid {node['pid']} on 127.0.0.1:{node['port']}")
            deadline = time.monotonic() + READY_TIMEOUT
            for name in launched:
                node = state["nodes"][name]
                while not _ready(name, node):
                    if not provision._alive(node["pid"]):
                        raise ServiceError(f"{name} exited during startup; {_logs(name, node)}")
                    if time.monotonic() > deadline:
                        raise ServiceError(f"{name} not ready after {READY_TIMEOUT:.0f} s; {_logs(name, node)}")
                    time.sleep(0.2)
                if name.startswith("clickhouse"):
                    provision._clickhouse_query(
                        node["http_port"], f"CREATE DATABASE IF NOT EXISTS {provision.DATABASE}"
                    )
                    node["version"] = provision._clickhouse_query(node["http_port"], "SELECT version()").strip()
                _log(f"{name} ready {time.time() - node['started_at']:.1f} s after launch")
        except BaseException:
            for name in launched:
                provision._terminate(state["nodes"][name]["pid"], timeout=5.0)
                state["nodes"][name]["pid"] = None
            if fresh:
                for node in state["nodes"].values():
                    shutil.rmtree(node["data_dir"], ignore_errors=True)
                state["nodes"] = {}
            _save_state(path, state)
            raise
        state["env"] = _env(state)
        _save_state(path, state)
        return state


def kill(names: Sequence[str], state_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """SIGKILL the process groups of `names` (a crash, not a shutdown); their ports and data stay for start()."""
    path = Path(state_path or default_state_path())
    with provision._locked(path):
        state = load_state(path)
        for name in names:
            node = state["nodes"][name]
            if node.get("pid") and provision._running(node):
                _log(f"SIGKILL {name} (pid {node['pid']})")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(node["pid"], signal.SIGKILL)
                deadline = time.monotonic() + 10
                while provision._alive(node["pid"]) and time.monotonic() < deadline:
                    time.sleep(0.05)
            node.update(pid=None, kept=True)
        _save_state(path, state)
        return state


def stop(
    names: Sequence[str] | None = None, state_path: str | os.PathLike[str] | None = None, keep_data: bool = False
) -> dict[str, Any]:
    """Stop `names` (default all nodes). Without keep_data, stopping all nodes removes the cluster's data dirs
    and its state file; stopping some keeps their ports and data so that start() brings them back."""
    path = Path(state_path or default_state_path())
    with provision._locked(path):
        state = load_state(path)
        everything = not names
        unknown = sorted(set(names or ()) - set(state["nodes"]))
        if unknown:
            raise ServiceError(f"unknown node(s) {unknown}; known: {node_names()}")
        chosen = [n for n in node_names() if n in state["nodes"] and (not names or n in names)]
        # ClickHouse, then Kafka, then ZooKeeper; the nodes of a kind together: a broker shutting down alone
        # after its peers would wait for a controller quorum that is gone
        for kind in ("clickhouse", "kafka", "zookeeper"):
            group = [state["nodes"][n] for n in chosen if n.startswith(kind)]
            running = [node for node in group if node.get("pid") and provision._running(node)]
            if running:
                _log(f"stopping {', '.join(n for n in chosen if n.startswith(kind))}")
            for node in running:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(node["pid"], signal.SIGTERM)
            for node in running:
                provision._terminate(node["pid"])  # waits for the SIGTERM above; SIGKILL after 30 s
            for node in group:
                node.update(pid=None, kept=True)
        if everything and not keep_data:
            for node in state["nodes"].values():
                shutil.rmtree(node["data_dir"], ignore_errors=True)
            state["nodes"] = {}
        _save_state(path, state)
        return state


# ---------------------------------------------------------------------------------------------- cli


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["install", "start", "stop", "kill", "env", "status", "compose-config"])
    parser.add_argument("nodes", nargs="*", help=f"stop/kill: any of {', '.join(node_names())} (default: all)")
    parser.add_argument("--state", help="state file (default: $EXPSTREAM_CACHE/cluster.json)")
    parser.add_argument("--keep-data", action="store_true", help="stop: keep ports and data dirs for a start")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            for name, version in install().items():
                print(f"{name} {version}")
        elif args.command in ("start", "env"):
            state = start(args.state) if args.command == "start" else load_state(args.state)
            print(provision.exports(state), end="")
        elif args.command == "stop":
            stop(args.nodes, args.state, keep_data=args.keep_data)
        elif args.command == "kill":
            kill(args.nodes, args.state)
        elif args.command == "compose-config":
            for path in write_compose_config():
                print(path)
        else:
            nodes = load_state(args.state)["nodes"]
            for name in (n for n in node_names() if n in nodes):
                node = nodes[name]
                running = "running" if node.get("pid") and provision._running(node) else "stopped"
                print(f"{name}: {running} pid={node.get('pid')} port={node['port']} data={node['data_dir']}")
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
