"""The warm materializer (consumers/warm/): real processes, real chdb, one daemon per home.

Visibility is asserted by polling with a generous deadline, never by timing: timings live in bench/.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

import expstream
from expstream.consumers.warm.client import WarmClient, daemon_alive
from expstream.consumers.warm.protocol import WarmPaths
from expstream.consumers.warm.tables import WarmTables
from tests.conftest import QUIET, stop_materializers

PROJECT = "acme/sandbox"

#: a process that logs ``n`` points of x = 0..n-1 in chunks (the background flusher writes them), never syncs
_WRITER = textwrap.dedent(
    """
    import sys, time
    import expstream
    n, chunk, pause, name = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    exp = expstream.init("acme/sandbox").create_experiment(name=name, **QUIET)
    for start in range(0, n, chunk):
        for x in range(start, min(start + chunk, n)):
            exp.log_metric("loss", x, x / 4.0)
        time.sleep(pause)
    exp.stop()
    print(exp.id, flush=True)
    """
)


def writer(home: Path, n: int, *, chunk: int = 1000, pause: float = 0.0, name: str = "w") -> subprocess.Popen[str]:
    code = f"QUIET = {QUIET!r}\n" + _WRITER
    env = dict(os.environ, EXPSTREAM_HOME=str(home))
    return subprocess.Popen(
        [sys.executable, "-c", code, str(n), str(chunk), str(pause), name],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out.strip()


def daemon_pid(home: Path) -> int | None:
    try:
        return int(WarmPaths(home).pid.read_text())
    except (OSError, ValueError):
        return None


def eventually(check: Callable[[], bool], timeout: float = 60.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        time.sleep(0.05)


def gone(pid: int) -> bool:
    """Whether the process has ended (a zombie's leader may still wait for its other threads to let go)."""
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return False
        return not psutil.Process(pid).threads()[1:]
    except psutil.NoSuchProcess:
        return True


def points(home: Path, name: str | None = None) -> int:
    """Rows of user points in the tables, asked from the daemon directly: no sync, no catch-up."""
    where = (
        "" if name is None else " AND experiment_id IN (SELECT experiment_id FROM experiments WHERE name = {n:String})"
    )
    frame = WarmTables(WarmClient.for_home(home)).query_df(
        f"SELECT count() AS n FROM points_numeric FINAL WHERE namespace = 'user'{where}",
        {} if name is None else {"n": name},
    )
    return int(frame["n"].iloc[0])


def read_back(name: str) -> list[float]:
    (exp,) = [e for e in expstream.init(PROJECT).get_experiments() if e.name == name]
    return exp.get_numeric_channels_values("loss")["x"].tolist()


def test_a_reader_sees_another_process_s_points_without_sync(home: Path) -> None:
    WarmClient.for_home(home).ping()  # the daemon is up before the writer starts
    proc = writer(home, 3000, chunk=1000, pause=0.5)
    eventually(lambda: points(home) > 0, what="the first points visible")  # while the writer still logs
    assert proc.poll() is None or points(home) > 0
    finish(proc)
    eventually(lambda: points(home) == 3000, what="every point visible")  # tailed: nobody called sync()


def test_a_new_experiment_starts_the_daemon_so_its_points_are_tailed_from_the_start(home: Path) -> None:
    assert not daemon_alive(WarmPaths(home))
    proc = writer(home, 3000, chunk=1000, pause=0.5)  # logs and exits: no sync(), no read, no request
    eventually(lambda: daemon_alive(WarmPaths(home)), what="a daemon started by create_experiment")
    finish(proc)
    eventually(lambda: points(home) == 3000, what="every point visible")


def test_a_reader_polling_without_pause_does_not_stop_the_tailing(home: Path) -> None:
    """Three readers keep the daemon's request queue from ever running dry; the log is still tailed between
    their requests (it was tailed only when the queue was empty, so a fast-polling reader hid new points)."""
    WarmClient.for_home(home).ping()
    stop = threading.Event()
    asked = [0, 0, 0]

    def poll_without_pause(i: int) -> None:
        tables = WarmTables(WarmClient(home))  # a connection of its own: the requests queue up side by side
        try:
            while not stop.is_set():
                tables.query_df("SELECT count() AS n FROM points_numeric")
                asked[i] += 1
        finally:
            tables.close()

    readers = [threading.Thread(target=poll_without_pause, args=(i,)) for i in range(3)]
    for reader in readers:
        reader.start()
    try:
        finish(writer(home, 2000))  # flushed by its background flusher and stop(); it never syncs
        eventually(lambda: points(home) == 2000, what="the points visible while the readers poll")
    finally:
        stop.set()
        for reader in readers:
            reader.join(60)
    assert all(n > 0 for n in asked)  # they did keep asking the whole time


def test_a_daemon_killed_mid_batch_loses_nothing(home: Path) -> None:
    n = 200_000
    WarmClient.for_home(home).ping()
    proc = writer(home, n, chunk=20_000, pause=0.2)
    kills = 0
    while proc.poll() is None and kills < 3:
        seen = kills * 20_000
        eventually(lambda seen=seen: points(home) > seen or proc.poll() is not None, what="progress")
        pid = daemon_pid(home)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # mostly in the middle of materializing a chunk
        eventually(lambda pid=pid: gone(pid), what="the daemon gone")
        kills += 1
        if WarmPaths(home).address_is_file:
            assert WarmPaths(home).socket.exists()  # left behind: the next client must see it is stale
    finish(proc)
    assert kills >= 1
    WarmClient.for_home(home).sync(None, 120)  # a fresh daemon resumes from the recorded progress
    assert points(home) == n
    xs = read_back("w")
    assert xs == [float(x) for x in range(n)]  # each point once, in order


def test_sigterm_commits_and_exits(home: Path) -> None:
    client = WarmClient.for_home(home)
    pid = int(client.ping()["pid"])
    proc = writer(home, 50_000, chunk=10_000, pause=0.1)
    eventually(lambda: points(home) > 0, what="materializing")
    pid = daemon_pid(home) or pid
    os.kill(pid, signal.SIGTERM)
    eventually(lambda: gone(pid) and not daemon_alive(WarmPaths(home)), what="the daemon gone after SIGTERM")
    finish(proc)
    client.sync(None, 120)
    assert points(home) == 50_000


def test_two_homes_side_by_side_have_two_daemons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    homes = [tmp_path / "a", tmp_path / "b"]
    try:
        procs = [writer(h, 1000 * (i + 1), name=f"in-{h.name}") for i, h in enumerate(homes)]
        for proc in procs:
            finish(proc)
        pids = []
        for i, h in enumerate(homes):
            client = WarmClient.for_home(h)
            client.sync(None, 120)
            pids.append(int(client.ping()["pid"]))
            assert points(h) == 1000 * (i + 1)
            assert points(h, f"in-{h.name}") == 1000 * (i + 1)  # its own experiment only
        assert pids[0] != pids[1]
        monkeypatch.setenv("EXPSTREAM_HOME", str(homes[0]))
        expstream._backends.clear()
        assert [e.name for e in expstream.init(PROJECT).get_experiments()] == ["in-a"]
    finally:
        expstream._backends.clear()
        stop_materializers(*homes)


_STARTER = textwrap.dedent(
    """
    import sys, time
    from expstream.consumers.warm.client import WarmClient
    at = float(sys.argv[2])
    time.sleep(max(0.0, at - time.time()))
    if sys.argv[3] == "init":  # init() spawns the daemon in the calling thread, then waits for it in the background
        import os, expstream
        os.environ["EXPSTREAM_HOME"] = sys.argv[1]
        expstream.init("acme/sandbox")
    print(WarmClient.for_home(sys.argv[1]).ping(timeout=120)["pid"], flush=True)
    """
)


@pytest.mark.parametrize("how", [("request",) * 3, ("init",) * 3, ("init", "request", "init")])
def test_two_processes_starting_it_at_once_start_one(home: Path, how: tuple[str, ...]) -> None:
    home.mkdir(parents=True)
    at = time.time() + 2.0  # both ask in the same moment
    procs = [
        subprocess.Popen([sys.executable, "-c", _STARTER, str(home), repr(at), way], stdout=subprocess.PIPE, text=True)
        for way in how
    ]
    pids = {finish(p) for p in procs}
    assert len(pids) == 1
    (pid,) = pids
    daemons = [p for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [])[-1:] == ["materializer"]]
    mine = [p for p in daemons if _home_of(p) == str(home)]
    assert [p.pid for p in mine] == [int(pid)]


def _home_of(process: psutil.Process) -> str | None:
    try:
        return process.environ().get("EXPSTREAM_HOME")
    except psutil.Error:
        return None


def test_it_exits_when_idle_and_when_its_home_goes(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPSTREAM_MATERIALIZER_IDLE", "1")
    client = WarmClient.for_home(home)
    pid = int(client.ping()["pid"])
    eventually(lambda: gone(pid) and not daemon_alive(WarmPaths(home)), what="the idle exit")
    assert not WarmPaths(home).socket.exists() and not WarmPaths(home).pid.exists()

    monkeypatch.setenv("EXPSTREAM_MATERIALIZER_IDLE", "600")
    pid = int(client.ping()["pid"])  # started again on demand
    moved = home.with_name("removed")
    home.rename(moved)  # as good as removed for the daemon (the path is gone), and no race with its writes
    eventually(lambda: gone(pid), timeout=60, what="the exit after the home was removed")
    assert not home.exists()  # it created nothing there again
    shutil.rmtree(moved)


def test_a_stale_socket_is_replaced(home: Path) -> None:
    client = WarmClient.for_home(home)
    first = int(client.ping()["pid"])
    os.kill(first, signal.SIGKILL)
    eventually(lambda: gone(first) and not daemon_alive(WarmPaths(home)), what="the daemon gone")
    second = int(client.ping()["pid"])
    assert second != first


def test_user_strings_stay_data_through_the_daemon(home: Path) -> None:
    client = WarmClient.for_home(home)
    tables = WarmTables(client)
    nasty = "x'; DROP TABLE experiments; --\\\n\t"
    frame = tables.query_df("SELECT {s:String} AS s, length({s:String}) AS n", {"s": nasty})
    assert frame["s"].tolist() == [nasty] and int(frame["n"].iloc[0]) == len(nasty)
    assert int(tables.query_df("SELECT count() AS n FROM system.tables WHERE name = 'experiments'")["n"].iloc[0]) == 1


def test_init_starts_the_daemon_before_the_script_loads_its_encoders(home: Path) -> None:
    """The daemon's start is the long pole of a script that logs and then reads: ``init()`` spawns it before
    anything heavy is loaded (numpy comes with the flusher's first batch), so the two overlap."""
    code = textwrap.dedent(
        """
        import sys
        import expstream
        expstream.init("acme/sandbox")
        print(sorted(m for m in ("chdb", "numpy", "pandas", "pyarrow") if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ, EXPSTREAM_HOME=str(home)), capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    try:
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "[]"
        assert WarmPaths(home).log.exists()  # spawned within init(), not later by a thread
        WarmClient.for_home(home).ping(120)  # and it comes up
    finally:
        stop_materializers(home)


def test_a_logging_process_never_loads_the_engine(home: Path, tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        import expstream
        exp = expstream.init("acme/sandbox").create_experiment(name="light", **{QUIET!r})
        for x in range(1000):
            exp.log_metric("loss", x, 1.0)
        exp.sync(timeout=120)
        print(sorted(m for m in ("chdb", "pandas", "pyarrow") if m in sys.modules))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=dict(os.environ, EXPSTREAM_HOME=str(home)), capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert points(home) == 1000  # sync() made them visible


def _mapped_under(pid: int, folder: Path) -> bool:
    """Whether process ``pid`` has a file under ``folder`` mapped (an imported extension module stays mapped)."""
    prefix = str(folder.resolve()) + os.sep
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return any(line.split(maxsplit=5)[-1].startswith(prefix) for line in maps if len(line.split(maxsplit=5)) == 6)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/maps")
def test_the_daemon_materializes_every_kind_without_loading_pandas(home: Path, project: expstream.Project) -> None:
    """pandas costs the daemon ~0.2 s of its start, which a script's first sync() waits for: it writes without it.
    Its extension modules would stay mapped once imported, so the daemon's memory map tells whether it ever was."""
    import importlib.util

    import numpy as np

    exp = project.create_experiment(name="kinds", properties={"p": "v"}, tags=["first"], **QUIET)
    for x in range(100):
        exp.log_metric("loss", x, x / 2.0)
    exp.log_text("notes", 0, "it's text")
    exp.log_image("pictures", 0, np.zeros((4, 4), dtype=np.uint8), image_name="zeros", description="d")
    exp.append_tag("second")
    exp.remove_tag("first")
    exp.set_property("k", "v")
    exp.remove_property("p")
    exp.reset_log("loss")
    exp.log_metric("loss", 7, 1.0)
    exp.sync()
    assert exp.get_numeric_channels_values("loss")["loss"].tolist() == [1.0]  # the reads go through it too
    assert exp.get_tags() == ["second"] and exp.get_properties() == {"k": "v"}
    exp.stop()
    stamped = WarmTables(WarmClient.for_home(home)).query_df("SELECT now() AS t", readonly=True)  # `expstream sql`
    assert str(stamped["t"].dtype).startswith("datetime64")
    pid = daemon_pid(home)
    assert pid is not None
    pandas_spec, chdb_spec = importlib.util.find_spec("pandas"), importlib.util.find_spec("chdb")
    assert pandas_spec is not None and pandas_spec.origin and chdb_spec is not None and chdb_spec.origin
    assert _mapped_under(pid, Path(chdb_spec.origin).parent)  # the check sees what the daemon did load
    assert not _mapped_under(pid, Path(pandas_spec.origin).parent)
