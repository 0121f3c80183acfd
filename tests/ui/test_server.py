"""``expstream ui`` as a process: it starts, other processes keep using the store, it stops cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.ui.conftest import PROJECT, Populated, Server, start_server, stop_server, wait_until


def _get(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _run(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, EXPSTREAM_HOME=str(home))
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=home.parent
    )


LOGGER = """
import expstream as neptune
neptune.init("acme/vision")
exp = neptune.create_experiment(name="live", upload_source_files=[], send_hardware_metrics=False)
for i in range(50):
    exp.log_metric("loss", 1.0 / (i + 1))
exp.stop()
exp.sync(timeout=60)
print(exp.id, len(exp.get_numeric_channels_values("loss")))
"""


def test_other_processes_log_sync_and_query_while_the_ui_runs(ui_server: Server, populated: Populated) -> None:
    before = _get(f"{ui_server.url}/api/projects")["projects"][0]["experiments"]
    logged = _run(populated.home, "-c", LOGGER)
    assert logged.returncode == 0, logged.stderr
    short_id, points = logged.stdout.split()
    assert points == "50"
    for _ in range(3):  # expstream sql in yet another process, while the UI polls
        sql = _run(populated.home, "-m", "expstream", "sql", "SELECT count() AS n FROM experiments", "--format", "csv")
        assert sql.returncode == 0, sql.stderr
        assert int(sql.stdout.split()[1]) == before + 1
        _get(f"{ui_server.url}/p/{PROJECT}/e/{short_id}/api/status")
    # the UI itself caught up with what the other process logged
    status = wait_until(lambda: _get(f"{ui_server.url}/p/{PROJECT}/e/{short_id}/api/status"))
    assert status["state"] == "succeeded"
    chart = _get(f"{ui_server.url}/p/{PROJECT}/api/chart?ids={short_id}&channel=loss&width=100")
    assert chart["series"][0]["points"] == 50


def test_sigterm_stops_it_cleanly(populated: Populated) -> None:
    server = start_server(populated.home)
    assert _get(f"{server.url}/api/projects")["projects"]
    assert stop_server(server) == 0


def test_it_refuses_to_listen_beyond_loopback_without_a_token(populated: Populated) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EXPSTREAM_UI_TOKEN"}
    done = subprocess.run(
        [sys.executable, "-m", "expstream", "ui", "--host", "0.0.0.0", "--port", "0"],
        env=dict(env, EXPSTREAM_HOME=str(populated.home)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "EXPSTREAM_UI_TOKEN" in done.stderr and "Traceback" not in done.stderr


def test_with_a_token_it_listens_and_checks_it(populated: Populated) -> None:
    server = start_server(populated.home, "--host", "0.0.0.0", env={"EXPSTREAM_UI_TOKEN": "t0ken"})
    try:
        port = server.url.rsplit(":", 1)[1]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/projects", timeout=30)
            raise AssertionError("no token, yet answered")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
        assert _get(f"http://127.0.0.1:{port}/api/projects?token=t0ken")["projects"]
    finally:
        assert stop_server(server) == 0
