"""``expstream demo``: a legacy-style training script on the embedded default, read back and charted.

The first half is what a migrated Neptune script looks like (only the import changed); the second
half reads everything back through SQL, prints a summary and writes a PNG chart of the metrics.
"""

from __future__ import annotations

import io
import math
import random
import time
from pathlib import Path

import numpy as np

import expstream as neptune

__all__ = ["run_demo"]


def _train(steps: int) -> neptune.Experiment:
    neptune.init("demo/mnist-toy")
    exp = neptune.create_experiment(
        name="toy-classifier",
        description="A simulated training loop logging everything the legacy API offers.",
        params={"lr": 0.01, "batch_size": 64, "optimizer": "adam", "augment": True},
        properties={"dataset": "mnist-toy"},
        tags=["demo", "embedded"],
        upload_source_files=[],
    )
    rng = random.Random(7)
    loss = 2.5
    for step in range(steps):
        loss = loss * 0.985 + rng.uniform(-0.02, 0.02)
        neptune.log_metric("batch/loss", max(loss, 0.01))
        if step % 20 == 19:
            epoch = step // 20
            accuracy = 1 - math.exp(-0.35 * (epoch + 1)) + rng.uniform(-0.01, 0.01)
            neptune.log_metric("epoch/accuracy", epoch, accuracy)
            neptune.log_text("epoch/summary", f"epoch {epoch}: loss={loss:.4f} accuracy={accuracy:.3f}")
            picture = np.clip(np.random.default_rng(epoch).random((28, 28)) * accuracy, 0, 1)
            neptune.log_image("samples", epoch, picture, image_name=f"epoch-{epoch}", description="a sample input")
    weights = io.BytesIO(np.arange(4096, dtype=np.float32).tobytes())
    neptune.log_artifact(weights, "model/weights.bin")
    neptune.set_property("best_loss", round(loss, 4))
    neptune.append_tag("finished")
    return exp


def _chart(exp: neptune.Experiment, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    batch = exp.get_numeric_channels_values("batch/loss")
    epoch = exp.get_numeric_channels_values("epoch/accuracy")
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(batch["x"], batch["batch/loss"], color="tab:red")
    left.set(title="batch/loss", xlabel="step")
    right.plot(epoch["x"], epoch["epoch/accuracy"], marker="o")
    right.set(title="epoch/accuracy", xlabel="epoch", ylim=(0, 1))
    figure.suptitle(f"{exp.id}: {exp.name}")
    figure.tight_layout()
    figure.savefig(target, dpi=100)
    plt.close(figure)


def run_demo(steps: int = 200, output: str = "demo-output") -> int:
    started = time.perf_counter()
    exp = _train(steps)
    exp.stop()
    exp.sync()  # read-your-writes: everything logged is now visible to queries
    logged = time.perf_counter() - started

    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    logs = exp.get_logs()
    print(f"Experiment {exp.id} ({exp.name}) is {exp.state}; logged and synced in {logged:.2f} s")
    print(f"  parameters: {exp.get_parameters()}")
    print(f"  properties: {exp.get_properties()}")
    print(f"  tags:       {exp.get_tags()}")
    for name, channel in sorted(logs.items()):
        print(f"  log {name:16s} {channel.channelType:8s} last x={channel.lastX:g} y={channel.y!r}")
    values = exp.get_numeric_channels_values("batch/loss", "epoch/accuracy")
    print(f"  get_numeric_channels_values: {len(values)} rows, columns {list(values.columns)}")
    exp.download_artifact("model/weights.bin", str(folder))
    chart = folder / "metrics.png"
    _chart(exp, chart)
    print(f"  artifact downloaded to {folder / 'weights.bin'}; chart written to {chart}")
    return 0
