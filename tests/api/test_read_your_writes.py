"""A read through the API sees everything this process wrote before it, without sync() (embedded)."""

from __future__ import annotations

import io
from pathlib import Path

import expstream
from expstream.experiments import Experiment


def test_reads_right_after_writes(exp: Experiment, tmp_path: Path) -> None:
    for i in range(20):
        exp.append_tag(f"tag {i:02d}")
        assert exp.get_tags()[-1] == f"tag {i:02d}"
        exp.set_property("step", i)
        assert exp.get_properties()["step"] == str(i)
    exp.log_metric("brand/new", 1.5)
    assert exp.get_logs()["brand/new"].y == 1.5
    exp.log_text("notes", "hello")
    assert exp.get_logs()["notes"].y == "hello"
    exp.log_artifact(io.BytesIO(b"weights"), "model.bin")
    exp.download_artifact("model.bin", str(tmp_path / "dl"))
    assert (tmp_path / "dl" / "model.bin").read_bytes() == b"weights"
    assert exp.get_numeric_channels_values("brand/new")["brand/new"].tolist() == [1.5]


def test_project_reads_see_this_processes_experiments(project: expstream.Project) -> None:
    first = project.create_experiment("a", tags=["seen"], upload_source_files=[])
    first.log_metric("loss", 0.5)
    assert [e.id for e in project.get_experiments(tag="seen")] == [first.id]
    assert project.get_leaderboard()["channel_loss"].tolist() == ["0.5"]
