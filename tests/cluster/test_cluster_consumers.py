"""A group of three ``expstream consume`` processes on the cluster under faults: every point once, none missing.

The experiments are chosen so that every partition of the events topic carries points; the range assignor gives
each of three members at least one of its four partitions, so whichever consumer is killed or restarted, it held
points in flight. Exact counts are read through the ``Distributed`` tables with ``FINAL`` and through the
legacy API.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import expstream
from expstream.config import Settings
from expstream.eventlog.kafka import kafka_options, physical_topic
from tests.cluster.test_cluster_faults import partitions_with_data
from tests.conftest import QUIET

PER_ROUND = 100  # points per experiment and round of the logger
PAUSE = 0.05  # seconds between rounds: a client that logs steadily while the group changes
GROUP_TIMEOUT = 90.0  # seconds for the group to settle after a change (a killed member: its 6 s session first)


@pytest.fixture
def consume(on_cluster: Settings, tmp_path: Path) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    """Starts ``expstream consume`` processes of the installation's group (logs in tmp_path); ends them after."""
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        log = (tmp_path / f"consume-{len(procs)}.log").open("wb")
        procs.append(subprocess.Popen([sys.executable, "-m", "expstream", "consume"], stderr=log, stdout=log))
        log.close()
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        proc.wait(timeout=60)


def group_assignment(settings: Settings) -> dict[str, list[int]] | None:
    """{member id: its partitions of the events topic} of a stable group, None while it rebalances."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    admin = KafkaAdminClient(**kafka_options(settings))
    try:
        group = admin.describe_groups([settings.consumer_group])[settings.consumer_group]
    except KafkaError:  # no coordinator yet: the group is still being formed
        return None
    finally:
        admin.close()
    if group["error"] or group["group_state"] != "Stable":
        return None
    topic = physical_topic(settings, "expstream.events")
    out: dict[str, list[int]] = {}
    for member in group["members"]:
        assigned = (member["member_assignment"] or {}).get("assigned_partitions") or ()
        out[member["member_id"]] = sorted(p for a in assigned if a["topic"] == topic for p in a["partitions"])
    return out


def wait_for_members(settings: Settings, members: int, new: tuple[set[str], int] | None = None) -> dict[str, list[int]]:
    """Waits until the group is stable with `members` members that share every partition of the events topic;
    ``new=(old ids, k)``: k of them are not among the old ids."""
    deadline = time.monotonic() + GROUP_TIMEOUT
    seen: dict[str, list[int]] | None = None
    while time.monotonic() < deadline:
        seen = group_assignment(settings)
        if seen is not None and len(seen) == members and (new is None or len(set(seen) - new[0]) == new[1]):
            everything = sorted(p for parts in seen.values() for p in parts)
            if everything == list(range(settings.kafka_partitions)):
                return seen
        time.sleep(0.25)
    raise AssertionError(f"the group never settled with {members} members sharing all partitions; last: {seen}")


def experiments_on_every_partition(settings: Settings, name: str) -> list[expstream.Experiment]:
    """Experiments (each with x = 0 of m0 logged) until every partition of the events topic holds one."""
    expstream.init("acme/consumers")
    topic = physical_topic(settings, "expstream.events")
    exps: list[expstream.Experiment] = []
    for i in range(32):
        exp = expstream.create_experiment(f"{name}-{i}", **QUIET)  # type: ignore[arg-type]
        exp.log_metric("m0", 0, 0.0)
        exp.wait(timeout=60)
        exps.append(exp)
        if len(partitions_with_data(settings, topic)) == settings.kafka_partitions:
            return exps
    raise AssertionError(f"{len(exps)} experiments did not cover the {settings.kafka_partitions} partitions")


class Logger(threading.Thread):
    """Logs rounds of PER_ROUND points (x = 1, 2, ...; y = 10 x) to every experiment until stopped."""

    def __init__(self, exps: list[expstream.Experiment]) -> None:
        super().__init__(daemon=True)
        self.exps, self.rounds, self.done = exps, 0, threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.done.is_set():
                first = 1 + self.rounds * PER_ROUND
                for exp in self.exps:
                    for x in range(first, first + PER_ROUND):
                        exp.log_metric("m0", x, float(x * 10))
                self.rounds += 1
                time.sleep(PAUSE)
        except BaseException as exc:  # surfaced by finish()
            self.failure = exc

    def wait_rounds(self, rounds: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        target = self.rounds + rounds
        while self.rounds < target:
            assert time.monotonic() < deadline and self.is_alive(), f"the logger is stuck at round {self.rounds}"
            time.sleep(0.05)

    def finish(self) -> int:
        """Stops logging; returns the number of points of each experiment (x = 0 included)."""
        self.done.set()
        self.join(timeout=60)
        assert not self.is_alive() and self.failure is None, self.failure
        return 1 + self.rounds * PER_ROUND


def assert_every_point_once(exps: list[expstream.Experiment], n: int) -> None:
    for exp in exps:
        exp.stop()
    for exp in exps:
        exp.sync(timeout=240)
    tables = exps[0]._backend.reader.tables
    for exp in exps:
        counts = tables.query_df(
            "SELECT count() AS n, uniqExact(x) AS xs FROM points_numeric FINAL "
            "WHERE experiment_id = {e:String} AND namespace = 'user'",
            {"e": exp.internal_id},
        )
        assert (int(counts["n"].iloc[0]), int(counts["xs"].iloc[0])) == (n, n)  # each x once
    for exp in exps:
        values = exp.get_numeric_channels_values("m0")
        assert values["x"].tolist() == [float(x) for x in range(n)]
        assert values["m0"].tolist() == [float(x * 10) for x in range(n)]


def test_a_consumer_of_three_sigkilled_while_a_client_logs(
    on_cluster: Settings, consume: Callable[[], subprocess.Popen[bytes]]
) -> None:
    procs = [consume() for _ in range(3)]
    exps = experiments_on_every_partition(on_cluster, "killed")
    before = wait_for_members(on_cluster, 3)
    assert all(before.values()), before  # every member holds a partition, and every partition carries points
    logger = Logger(exps)
    logger.start()
    logger.wait_rounds(10)
    procs[0].send_signal(signal.SIGKILL)  # no clean leave: the group notices when its session times out
    procs[0].wait(timeout=10)
    after = wait_for_members(on_cluster, 2)  # its partitions rebalanced to the other two
    assert set(after) < set(before)  # the two survivors, no new member
    logger.wait_rounds(10)
    n = logger.finish()
    assert_every_point_once(exps, n)
    assert all(proc.poll() is None for proc in procs[1:])


def test_rolling_restart_of_three_consumers_while_a_client_logs(
    on_cluster: Settings, consume: Callable[[], subprocess.Popen[bytes]]
) -> None:
    procs = [consume() for _ in range(3)]
    exps = experiments_on_every_partition(on_cluster, "rolling")
    members = set(wait_for_members(on_cluster, 3))
    logger = Logger(exps)
    logger.start()
    logger.wait_rounds(5)
    for i in range(3):  # SIGTERM one, restart it, wait for the group to take it back, then the next
        procs[i].terminate()
        assert procs[i].wait(timeout=60) == 0  # a clean stop: the batch in flight finished, the group left
        procs[i] = consume()
        wait_for_members(on_cluster, 3, new=(members, i + 1))  # the group took the restarted one back
        logger.wait_rounds(3)
    logger.wait_rounds(5)
    n = logger.finish()
    assert_every_point_once(exps, n)
