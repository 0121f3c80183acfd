"""pytorch-ignite 0.4.11's ``NeptuneLogger`` / ``NeptuneSaver`` and skorch 0.10.0's ``NeptuneLogger``
through the ``neptune`` package, every logged value checked against what the library computed.

torch comes with about 3 GB of CUDA wheels from the registry, so these run when ``scripts/test`` was
asked for them (``EXPSTREAM_TEST_TORCH=1``); without it they are skipped, and with it a missing torch
is a failure rather than a skip.
"""

from __future__ import annotations

import importlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import neptune


def _require(module: str) -> Any:
    if os.environ.get("EXPSTREAM_TEST_TORCH"):
        return importlib.import_module(module)  # asked for: missing is a failure
    return pytest.importorskip(module, reason=f"{module} is opt-in: EXPSTREAM_TEST_TORCH=1 scripts/test installs it")


def _regression_batches(torch: Any, batches: int = 4) -> list[tuple[Any, Any]]:
    generator = torch.Generator().manual_seed(11)
    weights = torch.tensor([[1.5], [-2.0], [0.5]])
    data = []
    for _ in range(batches):
        features = torch.randn(16, 3, generator=generator)
        data.append((features, features @ weights + 0.1 * torch.randn(16, 1, generator=generator)))
    return data


def test_ignite_neptune_logger_and_saver(installation: str, tmp_path: Path) -> None:
    torch = _require("torch")
    _require("ignite")
    from ignite.contrib.handlers.neptune_logger import NeptuneLogger, NeptuneSaver
    from ignite.engine import Events, create_supervised_trainer
    from ignite.handlers import Checkpoint

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    trainer = create_supervised_trainer(model, optimizer, torch.nn.MSELoss())
    losses: list[tuple[int, float]] = []
    rates: list[tuple[int, float]] = []
    trainer.add_event_handler(
        Events.ITERATION_STARTED, lambda e: rates.append((e.state.iteration, optimizer.param_groups[0]["lr"]))
    )
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: losses.append((e.state.iteration, e.state.output)))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: scheduler.step())

    npt_logger = NeptuneLogger(
        api_token="ANONYMOUS",
        project_name="acme/ignite",
        experiment_name="ignite",
        params={"lr": 0.05},
        tags=["ignite"],
        upload_source_files=[],
        send_hardware_metrics=False,
    )
    npt_logger.attach_output_handler(
        trainer, event_name=Events.ITERATION_COMPLETED, tag="training", output_transform=lambda loss: {"loss": loss}
    )
    npt_logger.attach_opt_params_handler(trainer, event_name=Events.ITERATION_STARTED, optimizer=optimizer)
    checkpoint = Checkpoint({"model": model}, NeptuneSaver(npt_logger), n_saved=1)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, checkpoint)
    trainer.run(_regression_batches(torch), max_epochs=3)

    exp = npt_logger.experiment
    assert exp.get_tags() == ["ignite"]
    frame = exp.get_numeric_channels_values("training/loss", "lr/group_0")
    assert list(frame["x"]) == [step for step, _ in losses] == list(range(1, 13))
    np.testing.assert_array_equal(frame["training/loss"].to_numpy(), [loss for _, loss in losses])
    np.testing.assert_array_equal(frame["lr/group_0"].to_numpy(), [rate for _, rate in rates])

    # n_saved=1: the saver removed the older checkpoints, the last one loads back as the model's weights
    exp.download_artifacts(destination_dir=str(tmp_path))
    with zipfile.ZipFile(tmp_path / "output.zip") as archive:
        names = [n for n in archive.namelist() if n.endswith(".pt")]
        assert len(names) == 1, names
        state = torch.load(io.BytesIO(archive.read(names[0])))
    for key, value in model.state_dict().items():
        assert torch.equal(state[key], value)
    npt_logger.close()
    assert exp.state == "succeeded"


def test_ignite_offline_mode_records_nothing(embedded: str, home: Path) -> None:
    _require("torch")
    _require("ignite")
    from ignite.contrib.handlers.neptune_logger import NeptuneLogger

    npt_logger = NeptuneLogger(offline_mode=True, upload_source_files=[])
    npt_logger.log_metric("loss", 0, 1.0)
    npt_logger.close()
    assert not home.exists()


def test_skorch_neptune_logger_logs_the_history(embedded: str) -> None:
    torch = _require("torch")
    _require("skorch")
    from skorch import NeuralNetClassifier
    from skorch.callbacks import NeptuneLogger

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 2)

        def forward(self, features: Any) -> Any:
            return torch.softmax(self.layer(features), dim=-1)

    rng = np.random.default_rng(5)
    features = rng.normal(size=(200, 4)).astype(np.float32)
    labels = (features[:, 0] - features[:, 2] > 0).astype(np.int64)

    neptune.init("acme/skorch")
    exp = neptune.create_experiment(name="skorch", upload_source_files=[], send_hardware_metrics=False)
    torch.manual_seed(0)
    net = NeuralNetClassifier(Classifier, max_epochs=5, lr=0.1, callbacks=[NeptuneLogger(exp)], verbose=0)
    net.fit(features, labels)

    logged = sorted(exp.get_logs())
    assert {"train_loss", "valid_loss", "valid_acc"} <= set(logged)
    frame = exp.get_numeric_channels_values(*logged)
    assert list(frame["x"]) == list(net.history[:, "epoch"])
    for name in logged:
        np.testing.assert_array_equal(frame[name].to_numpy(), np.asarray(net.history[:, name], dtype=float))
    assert exp.state == "succeeded"  # close_after_train stopped it
