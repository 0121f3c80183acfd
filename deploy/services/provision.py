#!/usr/bin/env python3
"""Install (cached) and run real Kafka, ClickHouse and S3 servers on free loopback ports.

For tests and benchmarks on a machine without Docker. Standard library only; never imports expstream.
The S3 server is versitygw (posix backend) by default; EXPSTREAM_S3_BACKEND=minio picks MinIO where its module
is served. `minio` is accepted as another name of the `s3` service.

    python deploy/services/provision.py install [kafka clickhouse s3]
    eval "$(python deploy/services/provision.py start [--state FILE] [kafka clickhouse s3])"
    python deploy/services/provision.py stop [--state FILE] [--keep-data] [kafka ...]
    python deploy/services/provision.py restart kafka      # same port, same data dir
    python deploy/services/provision.py env [--secure]     # print the export lines again

Every service also speaks TLS with a throwaway CA made by the openssl command: Kafka has a SASL_SSL (PLAIN)
listener beside its PLAINTEXT one, ClickHouse a secure native port for a password-protected user, and S3 speaks
https only. `env --secure` prints the variables that reach all three that way.

The same operations are importable: install(), start(), stop(), restart(), load_state().
Progress goes to stderr; stdout carries only the `export` lines.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import fcntl
import hashlib
import hmac
import http.client
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

SERVICES = ("kafka", "clickhouse", "s3")
ALIASES = {"minio": "s3"}
KAFKA_VERSIONS = ("4.4.0", "4.3.1", "4.1.1", "4.0.1")  # first that resolves wins; EXPSTREAM_KAFKA_VERSION overrides
LOG4J_VERSION = "2.24.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
# S3-compatible servers built with `go install PACKAGE@VERSION`; EXPSTREAM_S3_BACKEND picks one (default: the first).
# MinIO's last community tag is refused by the Go module proxy here ("This module version is not available").
S3_BACKENDS = {
    "versitygw": ("github.com/versity/versitygw/cmd/versitygw", "v1.8.0"),
    "minio": ("github.com/minio/minio", "RELEASE.2025-10-15T17-29-55Z"),
}
S3_USER = SASL_USER = "expstream"
DATABASE = BUCKET = "expstream"
READY_TIMEOUT = {"kafka": 180.0, "clickhouse": 60.0, "s3": 60.0}
STOP_TIMEOUT = 30.0


class ServiceError(RuntimeError):
    """A service could not be installed, started or stopped."""


def cache_dir() -> Path:
    return Path(os.environ.get("EXPSTREAM_CACHE") or Path.home() / ".cache" / "expstream").expanduser()


def default_state_path() -> Path:
    return cache_dir() / "services.json"


def _log(msg: str) -> None:
    print(f"[provision] {msg}", file=sys.stderr, flush=True)


def _run(cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), text=True, capture_output=True, **kw)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip()[-4000:]
        raise ServiceError(f"command failed (exit {proc.returncode}): {' '.join(cmd)}\n{out}")
    return proc


def _names(services: Sequence[str] | None) -> list[str]:
    names = [ALIASES.get(n, n) for n in services or SERVICES]
    unknown = sorted(set(names) - set(SERVICES))
    if unknown:
        raise ServiceError(f"unknown service(s) {unknown}; known: {list(SERVICES)}")
    return names


# ---------------------------------------------------------------------------------------------- install


def kafka_home() -> Path | None:
    """The lib folder's parent of the installed Kafka version, or None."""
    current = cache_dir() / "kafka" / "current"
    if current.is_file():
        home = cache_dir() / "kafka" / current.read_text().strip()
        if (home / "lib" / ".complete").is_file():
            return home
    return None


def resolve_jars(home: Path, name: str, version: str, deps: Sequence[tuple[str, str, str]], repo: Path) -> Path:
    """Resolve ``deps`` (group, artifact, version) and what they need at run time with Maven into a
    fresh ``home/lib``, through a throwaway ``home/pom.xml`` named ``name``; ``repo`` caches the downloads."""
    lib = home / "lib"
    shutil.rmtree(lib, ignore_errors=True)
    lib.mkdir(parents=True)
    dep_xml = "".join(
        f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in deps
    )
    (home / "pom.xml").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        f"<groupId>expstream.provision</groupId><artifactId>{name}</artifactId><version>{version}</version>"
        f"<packaging>pom</packaging><dependencies>{dep_xml}</dependencies></project>\n"
    )
    _run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(home / "pom.xml"),
            f"-Dmaven.repo.local={repo}",
            f"{DEPENDENCY_PLUGIN}:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={lib}",
        ]
    )
    return lib


def _install_kafka() -> str:
    if (home := kafka_home()) is not None:
        return home.name
    wanted = os.environ.get("EXPSTREAM_KAFKA_VERSION")
    errors = []
    for version in [wanted] if wanted else KAFKA_VERSIONS:
        home = cache_dir() / "kafka" / version
        deps = [("org.apache.kafka", "kafka_2.13", version)] + [
            ("org.apache.logging.log4j", a, LOG4J_VERSION) for a in ("log4j-api", "log4j-core", "log4j-slf4j-impl")
        ]
        _log(f"kafka {version}: resolving broker jars with maven")
        try:
            lib = resolve_jars(home, "kafka-broker", version, deps, cache_dir() / "kafka" / "m2")
        except ServiceError as exc:
            errors.append(str(exc))
            _log(f"kafka {version} did not resolve; trying the next version")
            continue
        (lib / ".complete").write_text(version)
        (cache_dir() / "kafka" / "current").write_text(version)
        return version
    raise ServiceError("no Kafka version resolved:\n" + "\n".join(errors))


def _apt_install(packages: Sequence[str]) -> None:
    """``apt-get install`` as root, without letting maintainer scripts start any service."""
    if os.geteuid() != 0:
        raise ServiceError(f"{' '.join(packages)} not installed; run install as root (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not any(Path("/var/lib/apt/lists").glob("*Packages*")):
        _run(["apt-get", "update", "-q"], env=env)
    # policy-rc.d exit 101 = "do not start services from maintainer scripts": nothing may grab port 9000.
    policy = Path("/usr/sbin/policy-rc.d")
    own_policy = not policy.exists()
    if own_policy:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    try:
        try:
            _run(install, env=env)
        except ServiceError:  # stale package lists: refresh them once and try again
            _run(["apt-get", "update", "-q"], env=env)
            _run(install, env=env)
    finally:
        if own_policy:
            policy.unlink(missing_ok=True)


def _install_clickhouse() -> str:
    if not shutil.which("openssl"):  # every service's test certificates are made with it
        _apt_install(["openssl"])
    if not shutil.which("clickhouse-server") or not shutil.which("clickhouse-client"):
        _apt_install(["clickhouse-server", "clickhouse-client"])
        if subprocess.run(["pgrep", "-x", "clickhouse-serv"], capture_output=True).returncode == 0:
            _log("a system clickhouse-server is running after apt-get; stopping it (never used)")
            subprocess.run(["service", "clickhouse-server", "stop"], capture_output=True)
    out = _run(["clickhouse-client", "--version"]).stdout.strip()  # "ClickHouse client version 18.16.1."
    return out.rsplit(" ", 1)[-1].rstrip(".") if out else "unknown"


def s3_backend() -> str:
    backend = os.environ.get("EXPSTREAM_S3_BACKEND") or next(iter(S3_BACKENDS))
    if backend not in S3_BACKENDS:
        raise ServiceError(f"EXPSTREAM_S3_BACKEND={backend!r}; known: {list(S3_BACKENDS)}")
    return backend


def s3_binary(backend: str) -> Path:
    """The cached binary of `backend`; its name carries the pinned version, so a new pin builds anew."""
    return cache_dir() / "bin" / f"{backend}-{S3_BACKENDS[backend][1]}"


def _install_s3() -> str:
    backend = s3_backend()
    package, version = S3_BACKENDS[backend]
    binary = s3_binary(backend)
    if not binary.is_file():
        gobin = Path(tempfile.mkdtemp(prefix="expstream-gobin-"))
        _log(f"{backend} {version}: go install (compiles from source, a few minutes on 2 cores)")
        env = {**os.environ, "GOBIN": str(gobin), "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}
        try:
            _run(["go", "install", f"{package}@{version}"], env=env, cwd=tempfile.gettempdir())
            binary.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(gobin / package.rsplit("/", 1)[-1], binary)
        finally:
            shutil.rmtree(gobin, ignore_errors=True)
    return f"{backend} {version}"


def install(services: Sequence[str] | None = None) -> dict[str, str]:
    """Install what `services` (default all) need; idempotent and cached. Returns {service: version}."""
    installers = {"kafka": _install_kafka, "clickhouse": _install_clickhouse, "s3": _install_s3}
    versions = {}
    for name in _names(services):
        t0 = time.monotonic()
        versions[name] = installers[name]()
        _log(f"{name} {versions[name]} installed ({time.monotonic() - t0:.1f} s)")
    return versions


# ---------------------------------------------------------------------------------------------- state


@contextlib.contextmanager
def _locked(state_path: Path) -> Iterator[None]:
    state_path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{state_path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def load_state(state_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    path = Path(state_path or default_state_path())
    return json.loads(path.read_text()) if path.is_file() else {"services": {}, "env": {}}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    services = state["services"].values()
    state["env"] = {k: v for svc in services for k, v in svc.get("env", {}).items()}
    # the same services reached over TLS (and SASL for Kafka) with password-protected accounts
    state["secure_env"] = {k: v for svc in services for k, v in svc.get("secure_env", svc.get("env", {})).items()}
    if not state["services"]:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def exports(state: dict[str, Any], secure: bool = False) -> str:
    env = state.get("secure_env" if secure else "env", {})
    return "".join(f"export {k}={shlex.quote(str(v))}\n" for k, v in sorted(env.items()))


# ---------------------------------------------------------------------------------------------- processes


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own exited child: reap it
            return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _running(svc: dict[str, Any]) -> bool:
    """The state entry's process is alive and is still the command we started (not a reused pid)."""
    if not _alive(svc.get("pid")):
        return False
    try:
        cmdline = Path(f"/proc/{svc['pid']}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return os.fsencode(svc["command"][-1]) in cmdline


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    """Start `cmd` in a new session (its own process group) with stdout+stderr appended to `log`.

    posix_spawn rather than Popen: the service outlives this interpreter without Popen's "still running" warning,
    and _alive() reaps it once it exits while we are its parent.
    """
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, fd, 1),
            (os.POSIX_SPAWN_DUP2, fd, 2),
        ]
        exe = shutil.which(cmd[0]) or cmd[0]
        return os.posix_spawn(exe, cmd, {**os.environ, **(env or {})}, file_actions=actions, setsid=True)
    finally:
        os.close(fd)


def _terminate(pid: int, timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process group of `pid` (its own session), SIGKILL after `timeout`."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
        if not _alive(pid):
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    if _alive(pid):
        raise ServiceError(f"process {pid} survived SIGKILL")
    with contextlib.suppress(ProcessLookupError, PermissionError):  # leftover group members
        os.killpg(pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---------------------------------------------------------------------------------------------- tls


def _tls(data_dir: str | os.PathLike[str]) -> dict[str, str]:
    """A throwaway CA and a certificate for 127.0.0.1 signed by it, made with the openssl command:
    every service also speaks TLS, so the clients' TLS (and SASL) code runs against real servers."""
    d = Path(data_dir) / "tls"
    files = {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key", "keystore": d / "keystore.pem"}
    if all(p.is_file() for p in files.values()):
        return {k: str(p) for k, p in files.items()}
    openssl = shutil.which("openssl")
    if openssl is None:
        raise ServiceError("the openssl command is needed for the services' test certificates: run install (apt-get)")
    d.mkdir(parents=True, exist_ok=True)
    ca_key, csr, ext = d / "ca.key", d / "server.csr", d / "server.ext"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    new_key = [openssl, "req", "-newkey", "rsa:2048", "-nodes"]
    _run([*new_key, "-x509", "-days", "30", "-subj", "/CN=expstream test CA", "-keyout", str(ca_key),
          "-out", str(files["ca"]), "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign,cRLSign"])  # fmt: skip
    _run([*new_key, "-subj", "/CN=127.0.0.1", "-keyout", str(files["key"]), "-out", str(csr)])
    _run([openssl, "x509", "-req", "-in", str(csr), "-CA", str(files["ca"]), "-CAkey", str(ca_key),
          "-CAcreateserial", "-days", "30", "-extfile", str(ext), "-out", str(files["cert"])])  # fmt: skip
    # Kafka reads a PEM keystore: the PKCS#8 key followed by the certificate chain, in one file
    files["keystore"].write_text(files["key"].read_text() + files["cert"].read_text())
    return {k: str(p) for k, p in files.items()}


# ---------------------------------------------------------------------------------------------- kafka


def _kafka_call(sock: socket.socket, api_key: int, version: int, body: bytes) -> bytes:
    client = b"expstream-provision"
    msg = struct.pack(">hhih", api_key, version, 1, len(client)) + client + body
    sock.sendall(struct.pack(">i", len(msg)) + msg)
    size = struct.unpack(">i", _recv(sock, 4))[0]
    return _recv(sock, size)[4:]  # drop the correlation id


def _recv(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def kafka_ready(port: int) -> bool:
    """ApiVersions succeeds and Metadata lists at least one (unfenced) broker."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3.0) as sock:
            resp = _kafka_call(sock, 18, 0, b"")  # ApiVersions v0
            error, count = struct.unpack(">hi", resp[:6])
            if error:
                return False
            ranges = {k: (lo, hi) for k, lo, hi in struct.iter_unpack(">hhh", resp[6 : 6 + 6 * count])}
            lo, hi = ranges.get(3, (0, -1))
            version = max(lo, 4)
            if version > min(hi, 8):
                return True  # no non-flexible Metadata version to ask; ApiVersions answered
            body = struct.pack(">ib", -1, 0) + (b"\x00\x00" if version >= 8 else b"")
            resp = _kafka_call(sock, 3, version, body)
            return struct.unpack(">i", resp[4:8])[0] >= 1  # after throttle_time_ms: broker count
    except (OSError, struct.error):
        return False


LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def _kafka_prepare(svc: dict[str, Any]) -> list[str]:
    home = kafka_home()
    if home is None:
        raise ServiceError("kafka is not installed: run `provision.py install kafka`")
    data = Path(svc["data_dir"])
    port, cport, sport = svc["port"], svc["controller_port"], svc["sasl_ssl_port"]
    tls = _tls(data)
    svc.setdefault("user", SASL_USER)
    svc.setdefault("password", secrets.token_hex(12))
    jaas = f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{svc["user"]}="{svc["password"]}";'
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        # PLAINTEXT for speed; SASL_SSL (PLAIN over TLS) beside it for the tests of secured clusters
        "listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sport},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{sport}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": tls["keystore"],
        "log.dirs": str(data / "kraft-logs"),
        "num.partitions": "1",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "message.max.bytes": str(16 * 1024 * 1024),
        "replica.fetch.max.bytes": str(16 * 1024 * 1024),
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    }
    (data / "server.properties").write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    (data / "log4j2.properties").write_text(LOG4J2)
    java = [
        "java",
        "-Xmx512m",
        "-Xms256m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-XX:ErrorFile={data / 'hs_err_%p.log'}",
        f"-Dlog4j2.configurationFile={data / 'log4j2.properties'}",
        "-cp",
        str(home / "lib" / "*"),
    ]
    if not (data / "kraft-logs" / "meta.properties").is_file():
        cluster_id = "-"
        while cluster_id.startswith("-"):  # one in 64 would read as an option (Kafka's own ids avoid it too)
            cluster_id = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        _run([*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(data / "server.properties")])
    svc["version"] = home.name
    svc["env"] = {"EXPSTREAM_KAFKA": f"127.0.0.1:{port}"}
    svc["secure_env"] = {
        "EXPSTREAM_KAFKA": f"127.0.0.1:{sport}",
        "EXPSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "EXPSTREAM_KAFKA_SASL_MECHANISM": "PLAIN",
        "EXPSTREAM_KAFKA_SASL_USERNAME": svc["user"],
        "EXPSTREAM_KAFKA_SASL_PASSWORD": svc["password"],
        "EXPSTREAM_KAFKA_SSL_CAFILE": tls["ca"],
    }
    return [*java, "kafka.Kafka", str(data / "server.properties")]


# ---------------------------------------------------------------------------------------------- clickhouse


CLICKHOUSE_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>information</level><log>{d}/log/server.log</log><errorlog>{d}/log/server.err.log</errorlog>
    <size>100M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{tcp}</tcp_port>
  <tcp_port_secure>{tcp_secure}</tcp_port_secure>
  <http_port>{http}</http_port>
  <openSSL><server>
    <certificateFile>{cert}</certificateFile><privateKeyFile>{key}</privateKeyFile>
    <verificationMode>none</verificationMode><loadDefaultCAFile>false</loadDefaultCAFile>
    <cacheSessions>true</cacheSessions><disableProtocols>sslv2,sslv3</disableProtocols>
    <preferServerCiphers>true</preferServerCiphers>
  </server></openSSL>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <interserver_http_port>{inter}</interserver_http_port>
  <path>{d}/db/</path>
  <tmp_path>{d}/db/tmp/</tmp_path>
  <user_files_path>{d}/db/user_files/</user_files_path>
  <format_schema_path>{d}/db/format_schemas/</format_schema_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <max_connections>1024</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <mlock_executable>false</mlock_executable>
  <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
  <max_session_timeout>3600</max_session_timeout>
  <default_session_timeout>60</default_session_timeout>
</yandex>
"""
CLICKHOUSE_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default>
    <max_memory_usage>4000000000</max_memory_usage><load_balancing>random</load_balancing>
    <poll_interval>1</poll_interval>  <!-- idle client connections no longer delay a shutdown by 10 s -->
  </default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></default>
    <{user}><password>{password}</password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota></{user}></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval>
  </default></quotas>
</yandex>
"""


def _clickhouse_prepare(svc: dict[str, Any]) -> list[str]:
    server = shutil.which("clickhouse-server")
    if server is None:
        raise ServiceError("clickhouse-server is not installed: run `provision.py install clickhouse`")
    d = Path(svc["data_dir"])
    (d / "log").mkdir(exist_ok=True)
    ports = {"tcp": svc["port"], "http": svc["http_port"], "inter": svc["interserver_port"]}
    tls = _tls(d)
    svc.setdefault("user", DATABASE)
    svc.setdefault("password", secrets.token_hex(12))
    config = CLICKHOUSE_CONFIG.format(d=d, tcp_secure=svc["secure_port"], cert=tls["cert"], key=tls["key"], **ports)
    (d / "config.xml").write_text(config)
    (d / "users.xml").write_text(CLICKHOUSE_USERS.format(user=svc["user"], password=svc["password"]))
    svc["env"] = {"EXPSTREAM_CLICKHOUSE": f"clickhouse://default:@127.0.0.1:{svc['port']}/{DATABASE}"}
    svc["secure_env"] = {
        "EXPSTREAM_CLICKHOUSE": f"clickhouses://{svc['user']}:{svc['password']}@127.0.0.1:{svc['secure_port']}/{DATABASE}",
        "EXPSTREAM_CLICKHOUSE_CA": tls["ca"],
    }
    return [server, f"--config-file={d / 'config.xml'}"]


def _clickhouse_query(http_port: int, sql: str) -> str:
    req = urllib.request.Request(f"http://127.0.0.1:{http_port}/", data=sql.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()


def clickhouse_ready(svc: dict[str, Any]) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{svc['http_port']}/ping", timeout=3) as resp:
            return resp.read().strip() == b"Ok."  # the native TCP port opens together with HTTP
    except OSError:
        return False


# ---------------------------------------------------------------------------------------------- s3


def _s3_prepare(svc: dict[str, Any]) -> list[str]:
    backend = svc.setdefault("backend", s3_backend())
    binary = s3_binary(backend)
    if not binary.is_file():
        raise ServiceError(f"{backend} is not installed: run `EXPSTREAM_S3_BACKEND={backend} provision.py install s3`")
    data, meta = Path(svc["data_dir"]) / "data", Path(svc["data_dir"]) / "meta"
    data.mkdir(exist_ok=True)
    meta.mkdir(exist_ok=True)
    svc.setdefault("user", S3_USER)
    svc.setdefault("password", secrets.token_hex(12))
    svc["version"] = f"{backend} {S3_BACKENDS[backend][1]}"
    # S3 speaks https only (one port per server): every test of the object store runs over TLS
    tls = svc["tls"] = _tls(svc["data_dir"])
    url = f"https://{svc['user']}:{svc['password']}@127.0.0.1:{svc['port']}/{BUCKET}"
    svc["env"] = svc["secure_env"] = {"EXPSTREAM_S3": url, "EXPSTREAM_S3_CA": tls["ca"]}
    address = f"127.0.0.1:{svc['port']}"
    if backend == "minio":  # credentials come from MINIO_ROOT_* (see _s3_env); certificates from --certs-dir
        certs = Path(svc["data_dir"]) / "certs"
        certs.mkdir(exist_ok=True)
        shutil.copyfile(tls["cert"], certs / "public.crt")
        shutil.copyfile(tls["key"], certs / "private.key")
        return [
            str(binary),
            "server",
            str(data),
            "--quiet",
            "--address",
            address,
            "--console-address",
            f"127.0.0.1:{svc['console_port']}",
            "--certs-dir",
            str(certs),
        ]
    # versitygw: metadata in a sidecar dir, so no extended-attribute support is needed from the file system
    return [str(binary), "--port", address, "--cert", tls["cert"], "--key", tls["key"], "--quiet",
            "posix", "--sidecar", str(meta), str(data)]  # fmt: skip


def _s3_env(svc: dict[str, Any]) -> dict[str, str]:
    if svc["backend"] == "minio":
        return {
            "MINIO_ROOT_USER": svc["user"],
            "MINIO_ROOT_PASSWORD": svc["password"],
            "MINIO_UPDATE": "off",
            "MINIO_BROWSER": "off",
        }
    return {"ROOT_ACCESS_KEY": svc["user"], "ROOT_SECRET_KEY": svc["password"]}  # kept off the command line


def s3_request(svc: dict[str, Any], method: str, path: str = "/", region: str = "us-east-1") -> tuple[int, str]:
    """One bodiless S3 request signed with AWS Signature V4 (path-style); returns (HTTP status, body)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    host, payload = f"127.0.0.1:{svc['port']}", hashlib.sha256(b"").hexdigest()
    signed = "host;x-amz-content-sha256;x-amz-date"
    headers = f"host:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n"
    canonical = f"{method}\n{path}\n\n{headers}\n{signed}\n{payload}"
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
    key = f"AWS4{svc['password']}".encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    auth = f"AWS4-HMAC-SHA256 Credential={svc['user']}/{scope}, SignedHeaders={signed}, Signature={signature}"
    context = ssl.create_default_context(cafile=svc["tls"]["ca"])
    conn = http.client.HTTPSConnection("127.0.0.1", svc["port"], timeout=10, context=context)
    try:
        conn.request(
            method, path, headers={"x-amz-date": amz_date, "x-amz-content-sha256": payload, "Authorization": auth}
        )
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()


def s3_ready(svc: dict[str, Any]) -> bool:
    try:
        return s3_request(svc, "GET", "/")[0] == 200  # ListBuckets: up and accepting our credentials
    except OSError:
        return False


def _s3_create_bucket(svc: dict[str, Any]) -> None:
    if s3_request(svc, "HEAD", f"/{BUCKET}")[0] == 200:
        return
    status, body = s3_request(svc, "PUT", f"/{BUCKET}")
    if status != 200:
        raise ServiceError(f"creating bucket {BUCKET} failed: HTTP {status} {body[:500]}")


# ---------------------------------------------------------------------------------------------- start/stop


def _new_entry(name: str) -> dict[str, Any]:
    data = tempfile.mkdtemp(prefix=f"expstream-{name}-")
    if name == "kafka":
        port, cport, sport = _free_ports(3)
        return {"port": port, "controller_port": cport, "sasl_ssl_port": sport, "data_dir": data}
    if name == "clickhouse":
        port, http_port, inter, secure = _free_ports(4)
        return {
            "port": port, "http_port": http_port, "interserver_port": inter, "secure_port": secure, "data_dir": data,
        }  # fmt: skip
    port, console = _free_ports(2)
    backend = s3_backend()
    return {"port": port, "data_dir": data, "backend": backend} | (
        {"console_port": console} if backend == "minio" else {}
    )


def _ready(name: str, svc: dict[str, Any]) -> bool:
    if name == "kafka":
        return kafka_ready(svc["port"])
    return clickhouse_ready(svc) if name == "clickhouse" else s3_ready(svc)


def _after_ready(name: str, svc: dict[str, Any]) -> None:
    if name == "clickhouse":
        _clickhouse_query(svc["http_port"], f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
        svc["version"] = _clickhouse_query(svc["http_port"], "SELECT version()").strip()
    elif name == "s3":
        _s3_create_bucket(svc)


def start(services: Sequence[str] | None = None, state_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Start `services` (default all) and wait until each is healthy; returns the state dict.

    A service whose state entry is still running is left alone; one stopped with keep_data=True is started
    again on the same ports and data dir; otherwise it gets fresh free ports and a new temporary data dir.
    On failure every process launched by this call is stopped and ServiceError carries the log tail.
    """
    path = Path(state_path or default_state_path())
    prepare = {"kafka": _kafka_prepare, "clickhouse": _clickhouse_prepare, "s3": _s3_prepare}
    with _locked(path):
        state = load_state(path)
        launched: list[str] = []
        try:
            for name in sorted(_names(services), key=lambda n: n == "kafka"):  # kafka's storage format runs last
                svc = state["services"].get(name)
                if svc and _running(svc):
                    _log(f"{name} already running (pid {svc['pid']}, port {svc['port']})")
                    continue
                if not svc or not Path(svc["data_dir"]).is_dir():
                    svc = state["services"][name] = _new_entry(name)
                busy = [p for k, p in svc.items() if k.endswith("port") and _port_open(p)]
                if busy:
                    raise ServiceError(f"{name}: port(s) {busy} already in use; cannot reuse them")
                log = Path(svc["data_dir"]) / f"{name}.log"
                cmd = prepare[name](svc)
                svc.update(
                    pid=_spawn(cmd, log, _s3_env(svc) if name == "s3" else None),
                    log=str(log),
                    command=cmd,
                    started_at=time.time(),
                )
                launched.append(name)
                _log(f"{name}: pid {svc['pid']} on 127.0.0.1:{svc['port']}, data {svc['data_dir']}")
            t0 = time.monotonic()
            for name in launched:
                svc = state["services"][name]
                deadline = t0 + READY_TIMEOUT[name]
                while not _ready(name, svc):
                    if not _alive(svc["pid"]):
                        raise ServiceError(
                            f"{name} exited during startup; log {svc['log']}:\n{_tail(Path(svc['log']))}"
                        )
                    if time.monotonic() > deadline:
                        raise ServiceError(
                            f"{name} not healthy after {READY_TIMEOUT[name]:.0f} s; log "
                            f"{svc['log']}:\n{_tail(Path(svc['log']))}"
                        )
                    time.sleep(0.2)
                _after_ready(name, svc)
                _log(f"{name} ready {time.time() - svc['started_at']:.1f} s after launch")
        except BaseException:
            for name in launched:
                _terminate(state["services"][name]["pid"], timeout=5.0)
            for name, svc in list(state["services"].items()):
                if name in launched or not svc.get("pid"):  # launched now, or failed before its launch
                    svc["pid"] = None
                    if not svc.get("kept"):  # a kept data dir stays for the next try
                        shutil.rmtree(svc.pop("data_dir"), ignore_errors=True)
                        del state["services"][name]
            _save_state(path, state)
            raise
        for name in launched:
            state["services"][name].pop("kept", None)
        _save_state(path, state)
        return state


def stop(
    services: Sequence[str] | None = None, state_path: str | os.PathLike[str] | None = None, keep_data: bool = False
) -> dict[str, Any]:
    """Stop `services` (default: all in the state file). keep_data=True keeps the ports and data dir in the state
    so that start()/restart() brings the service back with its data; otherwise the data dir is removed."""
    path = Path(state_path or default_state_path())
    with _locked(path):
        state = load_state(path)
        for name in _names(services) if services else list(state["services"]):
            svc = state["services"].get(name)
            if svc is None:
                continue
            if svc.get("pid") and _running(svc):
                _log(f"stopping {name} (pid {svc['pid']})")
                _terminate(svc["pid"])
            if keep_data:
                svc.update(pid=None, kept=True)
            else:
                shutil.rmtree(svc["data_dir"], ignore_errors=True)
                del state["services"][name]
        _save_state(path, state)
        return state


def restart(service: str, state_path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Stop one service keeping its data and start it again on the same ports and data dir."""
    stop([service], state_path, keep_data=True)
    return start([service], state_path)


# ---------------------------------------------------------------------------------------------- cli


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["install", "start", "stop", "restart", "env", "status"])
    parser.add_argument("services", nargs="*", help=f"any of {', '.join(SERVICES)} (default: all)")
    parser.add_argument("--state", help="state file (default: $EXPSTREAM_CACHE/services.json)")
    parser.add_argument("--keep-data", action="store_true", help="stop: keep ports and data dir for a restart")
    parser.add_argument("--secure", action="store_true", help="env: the TLS/SASL endpoints and their credentials")
    args = parser.parse_args(argv)
    try:
        if args.command == "install":
            for name, version in install(args.services).items():
                print(f"{name} {version}")
        elif args.command == "start":
            print(exports(start(args.services, args.state)), end="")
        elif args.command == "stop":
            stop(args.services, args.state, keep_data=args.keep_data)
        elif args.command == "restart":
            for name in _names(args.services):
                state = restart(name, args.state)
            print(exports(state), end="")
        elif args.command == "env":
            print(exports(load_state(args.state), secure=args.secure), end="")
        else:
            state = load_state(args.state)
            for name, svc in state["services"].items():
                running = "running" if _running(svc) else "stopped"
                print(f"{name}: {running} pid={svc.get('pid')} port={svc['port']} data={svc['data_dir']}")
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
