"""The exit hook ends whatever ``stop()`` raises, and still stops the other experiments."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import expstream

SCRIPT = textwrap.dedent(
    """
    import expstream

    kwargs = dict(upload_source_files=[], upload_stdout=False, upload_stderr=False,
                  send_hardware_metrics=False, run_monitoring_thread=False, handle_uncaught_exceptions=False)
    project = expstream.init("acme/sandbox")
    first = project.create_experiment(name="first", **kwargs)
    first.log_metric("loss", 1.0)
    second = project.create_experiment(name="second", **kwargs)
    second.log_metric("loss", 2.0)

    def broken(*args, **kwargs):
        raise RuntimeError("the teardown of this experiment is broken")

    second._teardown.append(broken)           # a failing teardown step: logged, stop() goes on
    second._on_finish = broken                # and stop() itself raises (its last step fails)
    print("logged", first.id, second.id, flush=True)
    """
)


def test_exit_hook_ends_when_stop_raises(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("logged SAN-1 SAN-2")
    assert "the teardown of this experiment is broken" in done.stderr
    assert "stopping SAN-2 at exit failed" in done.stderr
    experiments = {e.id: e for e in expstream.init("acme/sandbox").get_experiments()}
    assert experiments["SAN-1"].state == "succeeded"  # the other experiment was still stopped
    assert experiments["SAN-1"].get_numeric_channels_values("loss")["loss"].tolist() == [1.0]
    assert experiments["SAN-2"].get_numeric_channels_values("loss")["loss"].tolist() == [2.0]
