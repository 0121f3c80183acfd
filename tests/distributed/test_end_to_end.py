"""The legacy API on the distributed pipeline: Kafka → consumer service → ClickHouse + S3 → queries."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

import expstream
from expstream.config import Settings


def test_log_sync_read_on_the_cluster(cluster: Settings, consumer: object, tmp_path: Path) -> None:
    project = expstream.init("acme/fleet")
    exp = project.create_experiment(
        "distributed", params={"lr": 0.1}, properties={"gpu": "a100"}, tags=["dist"], upload_source_files=[]
    )
    for i in range(5000):
        exp.log_metric("loss", 1.0 / (i + 1))
    exp.log_metric("acc", 3, 0.5)
    exp.log_text("notes", "it's \\ quoted; ünïcode")
    exp.log_image("images", np.zeros((8, 8)), image_name="blank")
    exp.log_artifact(io.BytesIO(b"w" * 3_000_000), "model/weights.bin")  # three chunks
    exp.append_tag("more")
    exp.set_property("done", True)
    exp.stop()
    exp.sync(timeout=120)

    assert exp.id == "FLE-1" and exp.state == "succeeded"
    values = exp.get_numeric_channels_values("loss", "acc")
    assert len(values) == 5000 and values["loss"].iloc[-1] == 1.0 / 5000 and values["acc"].count() == 1
    assert exp.get_tags() == ["dist", "more"]
    assert exp.get_properties() == {"done": "True", "gpu": "a100"}
    assert exp.get_parameters() == {"lr": 0.1}
    assert exp.get_logs()["notes"].y == "it's \\ quoted; ünïcode"
    exp.download_artifacts(destination_dir=str(tmp_path / "out"))
    with zipfile.ZipFile(tmp_path / "out" / "output.zip") as archive:
        assert archive.read("model/weights.bin") == b"w" * 3_000_000
    (found,) = project.get_experiments(tag="dist")
    assert found.get_numeric_channels_values("loss").equals(exp.get_numeric_channels_values("loss"))
    assert project.get_leaderboard()["channel_loss"].tolist() == [str(1.0 / 5000)]


def test_ids_are_unique_across_processes_on_the_cluster(cluster: Settings, consumer: object) -> None:
    import os
    import subprocess
    import sys

    script = (
        "import expstream\nexpstream.init('acme/fleet')\n"
        "for _ in range(4):\n"
        "    e = expstream.create_experiment(upload_source_files=[], send_hardware_metrics=False)\n"
        "    print(e.id)\n    e.stop()\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
        for _ in range(3)
    ]
    ids = [line for p in procs for line in p.communicate(timeout=120)[0].split()]
    assert sorted(ids, key=lambda i: int(i.split("-")[1])) == [f"FLE-{n}" for n in range(1, 13)]


def test_reads_right_after_writes_on_the_cluster(cluster: Settings, consumer: object, tmp_path: Path) -> None:
    """No sync(): each read waits for the consumers to materialize this process's own earlier writes."""
    exp = expstream.init("acme/fleet").create_experiment("ryw", upload_source_files=[])
    for i in range(5):
        exp.append_tag(f"tag {i}")
        assert exp.get_tags()[-1] == f"tag {i}"
        exp.set_property("step", i)
        assert exp.get_properties()["step"] == str(i)
    exp.log_metric("new/metric", 2.5)
    assert exp.get_logs()["new/metric"].y == 2.5
    exp.log_artifact(io.BytesIO(b"weights"), "model.bin")
    exp.download_artifact("model.bin", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "model.bin").read_bytes() == b"weights"
