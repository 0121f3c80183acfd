"""Local state under EXPSTREAM_HOME that heals or explains itself (embedded default).

Counters, consumer positions and log metadata only cache what the event log records: damaged,
they are rebuilt (with a warning naming the file) or refused with a clear expstream error, and
experiment numbers are bounded and never handed out twice. Locks give up at the caller's deadline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import expstream
from expstream.eventlog.local_log import LocalLog
from expstream.eventlog.records import EVENTS
from expstream.exceptions import (
    ExperimentLimitReached,
    ExperimentNumbersExhausted,
    ExpstreamTimeoutError,
    LocalStateError,
    LockTimeout,
    NeptuneException,
)
from expstream.producer.numbering import MAX_NUMBER, KnownNumbers, LocalFileNumbering
from tests.conftest import stop_materializers

PROJECT = "acme/sandbox"


def project_folder(home: Path, project: str = PROJECT) -> Path:
    return home / "projects" / hashlib.sha1(project.encode()).hexdigest()[:16]


def make(project: expstream.Project, name: str, points: int = 3, **kwargs: object) -> expstream.Experiment:
    exp = project.create_experiment(name=name, upload_source_files=[], **kwargs)
    for i in range(points):
        exp.log_metric("loss", float(i))
    return exp


def fresh_process() -> None:
    """Forget this process's backends (closing them), as a new process would start."""
    for backend in list(expstream._backends.values()):
        backend.writer.close()
        if backend._reader is not None:
            backend._reader.tables.close()
    expstream._backends.clear()


def events_in_log(home: Path) -> int:
    log = LocalLog(home / "log")
    try:
        total = 0
        for partition in range(log.partitions):
            total += len(log.read(EVENTS, partition, 0, 1_000_000, 1 << 30))
        return total
    finally:
        log.close()


# --- experiment numbers ---------------------------------------------------------------------------


def test_the_last_number_is_handed_out_and_the_next_is_refused_before_anything_is_written(
    project: expstream.Project, home: Path
) -> None:
    counter = project_folder(home) / "counter"
    counter.parent.mkdir(parents=True)
    counter.write_text(str(MAX_NUMBER - 1))
    last = make(project, "last")
    assert last.id == f"SAN-{MAX_NUMBER}"
    last.stop()  # the number fits the event's long: stop() records it
    last.wait()
    before = events_in_log(home)
    with pytest.raises(ExperimentNumbersExhausted, match="acme/sandbox") as info:
        project.create_experiment(name="one-too-many", upload_source_files=[])
    assert isinstance(info.value, ExperimentLimitReached) and isinstance(info.value, NeptuneException)
    assert events_in_log(home) == before
    assert counter.read_text() == str(MAX_NUMBER)
    (shown,) = project.get_experiments()
    assert (shown.id, shown.state) == (f"SAN-{MAX_NUMBER}", "succeeded")
    assert shown.get_numeric_channels_values("loss")["loss"].tolist() == [0.0, 1.0, 2.0]


def test_a_counter_past_the_limit_is_refused(project: expstream.Project, home: Path) -> None:
    counter = project_folder(home) / "counter"
    counter.parent.mkdir(parents=True)
    counter.write_text(str(1 << 64))
    with pytest.raises(ExperimentNumbersExhausted):
        project.create_experiment(name="x", upload_source_files=[])
    assert project.get_experiments() == []


@pytest.mark.parametrize(
    "damage",
    [b"", b"   \n", b"garbage", b"\x00\x00\x00\x00", b"-5", b"3.5", None],
    ids=["emptied", "blank", "garbage", "zeros", "negative", "float", "deleted"],
)
def test_a_damaged_counter_is_rebuilt_from_the_log_and_never_reuses_a_number(
    project: expstream.Project, home: Path, damage: bytes | None, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("a", "b", "c"):
        make(project, name).stop()
    project._backend.writer.flush(30)
    counter = project_folder(home) / "counter"
    assert counter.read_text().strip() == "3"
    if damage is None:
        counter.unlink()
    else:
        counter.write_bytes(damage)
    with caplog.at_level(logging.WARNING, logger="expstream.numbering"):
        fourth = make(project, "d")
    assert fourth.id == "SAN-4"
    assert str(counter) in caplog.text
    fourth.stop()
    assert [e.id for e in project.get_experiments()] == ["SAN-1", "SAN-2", "SAN-3", "SAN-4"]
    assert counter.read_text() == "4"


def test_a_damaged_run_number_is_rebuilt_from_the_log(project: expstream.Project, home: Path) -> None:
    first = make(project, "ddp", run_id="job-42")
    first.wait()
    (run_file,) = (project_folder(home) / "runs").iterdir()
    run_file.write_bytes(b"\xff\xfe")
    second = project.create_experiment(name="ddp", upload_source_files=[], run_id="job-42")
    assert (second.id, second.internal_id) == (first.id, first.internal_id) == ("SAN-1", first.internal_id)
    assert run_file.read_text() == "1"
    second.stop()
    first.stop()
    assert [e.id for e in project.get_experiments()] == ["SAN-1"]


def test_a_damaged_counter_without_a_log_to_ask_is_refused_naming_the_file(tmp_path: Path) -> None:
    numbering = LocalFileNumbering(tmp_path / "projects")
    assert [numbering.next_number(PROJECT) for _ in range(2)] == [1, 2]
    counter = project_folder(tmp_path) / "counter"
    counter.write_bytes(b"oops")
    with pytest.raises(LocalStateError, match=str(counter)):
        numbering.next_number(PROJECT)
    assert counter.read_bytes() == b"oops"  # nothing guessed, nothing overwritten


def test_numbers_stop_at_a_lowered_limit(tmp_path: Path) -> None:
    numbering = LocalFileNumbering(tmp_path / "projects", lambda project: KnownNumbers(), limit=2)
    assert [numbering.next_number(PROJECT), numbering.number_for_run(PROJECT, "r")] == [1, (2, True)]
    for _ in range(2):
        with pytest.raises(ExperimentNumbersExhausted):
            numbering.next_number(PROJECT)
    assert numbering.number_for_run(PROJECT, "r") == (2, False)  # attaching needs no new number
    assert numbering.next_number("acme/other") == 1


# --- cache-like files ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [b"{not json", b"", b"[1, 2]", b'{"expstream.events": {"0": "x"}}', b'{"expstream.events": {"0": -7}}'],
    ids=["garbage", "empty", "list", "bad-offset", "negative"],
)
def test_damaged_consumer_positions_are_ignored_with_a_warning(
    project: expstream.Project, home: Path, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    exp = make(project, "p", points=5)
    exp.stop()
    exp.sync(timeout=60)
    positions = home / "positions" / "embedded.json"
    assert json.loads(positions.read_text())  # the consumer wrote them
    positions.write_bytes(damage)
    fresh_process()
    stop_materializers(home)  # the next warm materializer opens the positions again
    again = expstream.init(PROJECT)
    (shown,) = again.get_experiments()
    assert str(positions) in (home / "materializer.log").read_text()  # its warning
    assert shown.get_numeric_channels_values("loss")["loss"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    later = make(again, "later", points=2)
    later.stop()
    later.sync(timeout=60)
    assert set(json.loads(positions.read_text())) == {"expstream.events"}  # rewritten whole
    assert [e.id for e in again.get_experiments()] == ["SAN-1", "SAN-2"]
    assert not [p for p in positions.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("damage", [b"{garbage", b"", b'{"partitions": "four"}', b'{"partitions": 0}', b"[]"])
def test_damaged_log_metadata_is_rebuilt_with_a_warning(
    project: expstream.Project, home: Path, damage: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    exp = make(project, "m", points=4)
    exp.stop()
    exp.wait()
    meta = home / "log" / "meta.json"
    assert json.loads(meta.read_text()) == {"partitions": 4}
    meta.write_bytes(damage)
    fresh_process()
    with caplog.at_level(logging.WARNING, logger="expstream.log"):
        again = expstream.init(PROJECT)
        (shown,) = again.get_experiments()
    assert str(meta) in caplog.text
    assert json.loads(meta.read_text()) == {"partitions": 4}
    assert shown.get_numeric_channels_values("loss")["loss"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert make(again, "after").id == "SAN-2"


# --- locks with a deadline ------------------------------------------------------------------------

_HOLDER = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('locked', flush=True)\n"
    "time.sleep(600)\n"
)


@pytest.fixture
def stopped_holder() -> Iterator[object]:
    """``hold(path)``: a real process takes the exclusive flock on ``path``, then is stopped (SIGSTOP)."""
    children: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> subprocess.Popen[str]:
        child = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
        children.append(child)
        assert child.stdout is not None and child.stdout.readline().strip() == "locked"
        os.kill(child.pid, signal.SIGSTOP)
        return child

    yield hold
    for child in children:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGCONT)
            child.kill()
        child.wait()


def test_sync_of_a_writing_process_gives_up_at_its_timeout(
    project: expstream.Project, home: Path, stopped_holder: object
) -> None:
    exp = make(project, "w")
    stopped_holder(home / "chdb.lock")  # type: ignore[operator]
    with pytest.raises(ExpstreamTimeoutError) as info:
        exp.sync(timeout=3)
    assert isinstance(info.value, TimeoutError)
    assert not project._backend.reader_is_open  # the writing process never loaded chdb


def test_sync_of_a_reading_process_gives_up_at_the_deadline(
    project: expstream.Project, home: Path, stopped_holder: object
) -> None:
    exp = make(project, "r")
    assert exp.get_numeric_channels_values("loss")["loss"].tolist() == [0.0, 1.0, 2.0]
    exp.log_metric("loss", 10.0)
    stop_materializers(home)  # the next one finds the tables' folder held by a stopped process
    holder = stopped_holder(home / "chdb.lock")  # type: ignore[operator]
    with pytest.raises(ExpstreamTimeoutError) as info:
        exp.sync(timeout=1)
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, NeptuneException)
    os.kill(holder.pid, signal.SIGCONT)
    holder.kill()
    holder.wait()
    exp.sync(timeout=60)  # the materializer that waited for the folder has it now
    assert exp.get_numeric_channels_values("loss")["loss"].tolist() == [0.0, 1.0, 2.0, 10.0]


def test_a_log_partition_lock_held_by_a_stopped_process_times_out(tmp_path: Path, stopped_holder: object) -> None:
    log = LocalLog(tmp_path / "log", partitions=1, lock_timeout=0.5)
    try:
        log.append(EVENTS, "k", [b"one"])
        stopped_holder(tmp_path / "log" / EVENTS / "0" / "lock")  # type: ignore[operator]
        with pytest.raises(LockTimeout, match="lock"):
            log.append(EVENTS, "k", [b"two"])
        with pytest.raises(LockTimeout):
            log.end_offset(EVENTS, 0)
    finally:
        log.close()


def test_taking_a_number_gives_up_at_the_deadline(tmp_path: Path, stopped_holder: object) -> None:
    numbering = LocalFileNumbering(tmp_path / "projects", lock_timeout=0.5)
    assert numbering.next_number(PROJECT) == 1
    stopped_holder(project_folder(tmp_path) / "lock")  # type: ignore[operator]
    with pytest.raises(LockTimeout):
        numbering.next_number(PROJECT)
    assert (project_folder(tmp_path) / "counter").read_text() == "1"


# --- a damaged creation record ----------------------------------------------------------------------


def damage_record(home: Path, experiment_id: str, kind: str) -> None:
    """Flip one byte in the payload of the experiment's ``kind`` event, as a bad disk would."""
    from expstream import schemas
    from expstream.eventlog.local_log import HEADER_SIZE

    log = LocalLog(home / "log")
    partition = log.partition_for(experiment_id)
    try:
        records = log.read(EVENTS, partition, 0, 1_000_000, 1 << 30)
    finally:
        log.close()
    (record,) = [r for r in records if r.key == experiment_id and schemas.registry.kind_of(r.value) == kind]
    (segment,) = (home / "log" / EVENTS / str(partition)).glob("*.seg")
    with open(segment, "r+b") as f:
        where = record.offset + HEADER_SIZE + len(record.key.encode()) + 12
        f.seek(where)
        byte = f.read(1)
        f.seek(where)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_an_experiment_whose_creation_record_is_damaged_still_shows(
    project: expstream.Project, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    exp = make(project, "lost-name", points=4, params={"lr": 0.1}, tags=["t"])
    exp.log_text("notes", "kept")
    exp.stop()
    exp.wait()
    other = make(project, "intact", points=1)
    other.stop()
    other.wait()
    damage_record(home, exp.internal_id, "ExperimentCreated")
    fresh_process()
    again = expstream.init(PROJECT)
    shown = again.get_experiments()
    assert "corrupt or torn record" in (home / "materializer.log").read_text()  # the materializer read the log
    assert [(e.id, e.internal_id, e.state) for e in shown] == [
        ("SAN-1", exp.internal_id, "succeeded"),
        ("SAN-2", other.internal_id, "succeeded"),
    ]
    lost = shown[0]
    assert lost.name == "Untitled"  # what only the damaged record held gets defaults
    assert lost.get_numeric_channels_values("loss")["loss"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert lost.get_logs()["notes"].y == "kept"
    assert lost.get_parameters() == {} and lost.get_tags() == []
    assert [e.id for e in again.get_experiments(state="succeeded")] == ["SAN-1", "SAN-2"]
    board = again.get_leaderboard()
    assert board["id"].tolist() == ["SAN-1", "SAN-2"] and board["name"].tolist() == ["Untitled", "intact"]
    assert again.get_experiments(id="SAN-1")[0].get_system_properties()["id"] == "SAN-1"


def test_a_damaged_creation_record_does_not_free_its_number(project: expstream.Project, home: Path) -> None:
    exp = make(project, "a")
    exp.stop()
    exp.wait()
    damage_record(home, exp.internal_id, "ExperimentCreated")
    (project_folder(home) / "counter").write_bytes(b"")
    fresh_process()
    again = expstream.init(PROJECT)
    second = make(again, "b")
    second.stop()
    assert [e.id for e in again.get_experiments()] == ["SAN-1", "SAN-2"]


def test_a_consumer_service_waits_out_a_stopped_lock_holder_and_goes_on(
    project: expstream.Project, home: Path, stopped_holder: object, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    import threading
    import time

    from expstream.config import load_settings
    from expstream.wiring import embedded_runner

    exp = make(project, "served", points=6)
    exp.stop()
    exp.wait()
    monkeypatch.setenv("EXPSTREAM_LOCK_TIMEOUT", "0.2")
    holder = stopped_holder(home / "chdb.lock")  # type: ignore[operator]
    runner = embedded_runner(load_settings())
    stop = threading.Event()
    thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    with caplog.at_level(logging.WARNING, logger="expstream"):
        thread.start()
        for _ in range(600):  # until the service has met the held lock (bounded: never hangs the suite)
            if "chdb.lock" in caplog.text:
                break
            time.sleep(0.05)
        assert "chdb.lock" in caplog.text and thread.is_alive()  # retried, not crashed
        os.kill(holder.pid, signal.SIGCONT)
        holder.kill()
        holder.wait()
        end = runner.source.end_offsets()
        for _ in range(600):  # until the service has read everything (its own positions: no lock needed)
            if all(runner.source.positions().get(tp, 0) >= offset for tp, offset in end.items()):
                break
            time.sleep(0.05)
    stop.set()
    thread.join(30)
    assert not thread.is_alive()
    with runner.tables.hold(timeout=30):
        rows = runner.tables.query_df("SELECT count() AS n FROM points_numeric FINAL WHERE namespace = 'user'")
    runner.tables.close()
    assert int(rows["n"].iloc[0]) == 6
