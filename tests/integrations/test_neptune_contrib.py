"""neptune-contrib 0.28.1 (installed with ``--no-deps``) through the ``neptune`` package, value by value.

Every module of neptune-contrib is imported; those that need a framework this environment cannot have are
skipped with the reason. The LightGBM callback runs on both backends and what it logged is compared with
lightgbm's own ``record_evaluation``; the ``neptunecontrib.api`` helpers and ``create_experiment_from_json``
run on the embedded default.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import json
import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import expstream
import neptune

# --- every module imports ----------------------------------------------------------------------------

#: modules whose framework cannot be installed here, and why; anything else must import
_NEEDS_A_FRAMEWORK = {
    "neptunecontrib.bots.telegram_bot": "python-telegram-bot is not installed: a chat bot that reads the "
    "tracker, no logging path",
    "neptunecontrib.monitoring.fastai": "fastai (on torch, about 3 GB with its CUDA wheels) is not installed",
    "neptunecontrib.monitoring.keras": "TensorFlow (about 600 MB) is not installed",
    "neptunecontrib.monitoring.kerastuner": "keras-tuner needs TensorFlow (about 600 MB), not installed",
    "neptunecontrib.monitoring.metrics": "scikit-plot 0.3.7 imports scipy.interp, which SciPy 1.12 removed: "
    "it cannot be installed beside a current SciPy",
    "neptunecontrib.monitoring.sklearn": "scikit-plot 0.3.7 imports scipy.interp, which SciPy 1.12 removed",
    "neptunecontrib.monitoring.pytorch_lightning": "needs pytorch-lightning < 1.5, which does not install "
    "beside a current torch",
    "neptunecontrib.monitoring.xgboost": "xgboost (about 300 MB with its NCCL wheel) is not installed",
    "neptunecontrib.monitoring.xgboost_monitor": "xgboost (about 300 MB with its NCCL wheel) is not installed",
}


def _contrib_modules() -> list[str]:
    spec = importlib.util.find_spec("neptunecontrib")
    if spec is None or not spec.submodule_search_locations:
        return ["neptunecontrib (not installed: scripts/test installs neptune-contrib==0.28.1 --no-deps)"]
    root = Path(next(iter(spec.submodule_search_locations)))
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


@pytest.mark.parametrize("module", _contrib_modules())
def test_every_neptune_contrib_module_imports(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as error:
        if module in _NEEDS_A_FRAMEWORK and not str(getattr(error, "name", "") or "").startswith("neptune"):
            pytest.skip(_NEEDS_A_FRAMEWORK[module])
        raise
    assert sys.modules["neptune"] is expstream


# --- LightGBM callback, both backends ---------------------------------------------------------------


def test_lightgbm_callback_logs_what_lightgbm_computed(installation: str) -> None:
    import lightgbm as lgb
    from neptunecontrib.monitoring.lightgbm import neptune_monitor

    rng = np.random.default_rng(7)
    features = rng.normal(size=(400, 6))
    labels = (features[:, 0] + 0.5 * features[:, 1] + rng.normal(scale=0.5, size=400) > 0).astype(int)
    train = lgb.Dataset(features[:300], labels[:300])
    valid = lgb.Dataset(features[300:], labels[300:], reference=train)

    neptune.init("acme/lightgbm")
    exp = neptune.create_experiment(name="lgbm", upload_source_files=[], send_hardware_metrics=False)
    evals: dict[str, Any] = {}
    lgb.train(
        {"objective": "binary", "metric": ["binary_logloss", "auc"], "num_leaves": 7, "verbose": -1},
        train,
        num_boost_round=25,
        valid_sets=[train, valid],
        valid_names=["train", "valid"],
        callbacks=[neptune_monitor(prefix="fold0_"), lgb.record_evaluation(evals)],
    )

    names = [f"fold0_{data}_{metric}" for data in ("train", "valid") for metric in ("binary_logloss", "auc")]
    assert set(exp.get_logs()) == set(names)
    frame = exp.get_numeric_channels_values(*names)
    assert list(frame["x"]) == list(range(25))
    for data in ("train", "valid"):
        for metric in ("binary_logloss", "auc"):
            np.testing.assert_array_equal(frame[f"fold0_{data}_{metric}"].to_numpy(), np.asarray(evals[data][metric]))
    exp.stop()
    assert exp.state == "succeeded"


# --- neptunecontrib.api helpers -----------------------------------------------------------------------


def test_log_pickle_and_get_pickle_round_trip_a_trained_model(embedded: str) -> None:
    from neptunecontrib.api import get_pickle, log_pickle
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    features = rng.normal(size=(200, 4))
    labels = (features[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(features, labels)

    neptune.init("acme/contrib")
    exp = neptune.create_experiment(name="pickles", upload_source_files=[], send_hardware_metrics=False)
    log_pickle("model.pkl", model)  # the current experiment, as scripts call it
    log_pickle("results.pkl", {"auc": 0.91, "folds": [1, 2, 3]}, experiment=exp)

    # get_pickle reads <tmp>/<filename> after download_artifact wrote <tmp>/<basename>: top-level names only,
    # as with the legacy client
    restored = get_pickle("model.pkl", exp)
    np.testing.assert_array_equal(restored.coef_, model.coef_)
    np.testing.assert_array_equal(restored.predict_proba(features), model.predict_proba(features))
    assert get_pickle("results.pkl", exp) == {"auc": 0.91, "folds": [1, 2, 3]}
    assert pickle.loads(pickle.dumps(restored)).intercept_ == model.intercept_


def test_log_table_stores_the_frame_as_html(embedded: str, tmp_path: Path) -> None:
    from neptunecontrib.api import log_csv, log_table

    table = pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.9, 0.45, 0.3], "note": ["<b>warm</b>", "a & b", "ok"]})
    neptune.init("acme/contrib")
    exp = neptune.create_experiment(name="tables", upload_source_files=[], send_hardware_metrics=False)
    log_table("metrics", table)
    log_csv("metrics", table, experiment=exp)

    exp.download_artifact("tables/metrics.html", str(tmp_path / "out"))
    exp.download_artifact("csv/metrics.csv", str(tmp_path / "out"))
    assert (tmp_path / "out" / "metrics.html").read_text() == table.to_html()
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out" / "metrics.csv", index_col=0), table)


def test_concat_experiments_on_channel(embedded: str) -> None:
    from neptunecontrib.api import concat_experiments_on_channel

    neptune.init("acme/contrib")
    logged = {}
    experiments = []
    for run, scale in enumerate((1.0, 2.0, 3.0)):
        exp = neptune.create_experiment(name=f"run{run}", upload_source_files=[], send_hardware_metrics=False)
        values = [scale / (step + 1) for step in range(5)]
        if run < 2:  # the third has no such log and is left out, as documented
            for step, value in enumerate(values):
                exp.log_metric("loss", step, value)
            logged[exp.id] = values
        else:
            exp.log_metric("other", 1.0)
        exp.stop()
        experiments.append(exp)

    combined = concat_experiments_on_channel(neptune.project.get_experiments(), "loss")
    assert set(combined["id"]) == set(logged)
    for short_id, values in logged.items():
        rows = combined[combined["id"] == short_id].sort_values("x")
        assert list(rows["x"]) == [0.0, 1.0, 2.0, 3.0, 4.0]
        assert list(rows["loss"]) == values


def test_create_experiment_from_json(embedded: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from neptunecontrib.create_experiment_from_json import main

    work = tmp_path / "job"
    (work / "data").mkdir(parents=True)
    monkeypatch.chdir(work)
    (work / "run.sh").write_text("python train.py\n")
    (work / "data" / "results.csv").write_text("fold,auc\n0,0.9\n")
    images = []
    for index, colour in enumerate(((255, 0, 0), (0, 0, 255))):
        path = work / "data" / f"chart{index}.png"
        Image.new("RGB", (8, 6), colour).save(path)
        images.append(f"data/chart{index}.png")
    spec = {
        "name": "from-json",
        "description": "json tracking experiment",
        "params": {"lr": 0.1, "batch_size": 128, "optimizer": "adam"},
        "properties": {"data_version": "1231ffwefef9", "data_path": "data/train.csv"},
        "tags": ["resnet", "no_preprocessing"],
        "upload_source_files": ["run.sh"],
        "log_metric": {
            "log_loss": {"x": [0, 1, 2, 3], "y": [0, 1, 4, 9]},
            "accuracy": {"x": [0, 4, 5], "y": [0.2, 0.5, 0.9]},
        },
        "log_text": {"hash": {"x": [0, 4], "y": ["123123", "as32e132"]}},
        "log_image": {"diagnostic_charts": {"x": [0, 1], "y": images}},
        "log_artifact": ["data/results.csv"],
    }
    (work / "experiment.json").write_text(json.dumps(spec))

    main(argparse.Namespace(filepath="experiment.json", api_token="ANONYMOUS", project_name="acme/json"))

    project = neptune.init("acme/json")
    (exp,) = project.get_experiments()
    assert exp.name == "from-json"
    assert exp.state == "succeeded"
    assert exp.get_parameters() == {"lr": 0.1, "batch_size": 128.0, "optimizer": "adam"}
    assert exp.get_properties() == spec["properties"]
    assert exp.get_tags() == sorted(spec["tags"])
    values = exp.get_numeric_channels_values("log_loss", "accuracy")
    assert list(values["x"]) == [0, 1, 2, 3, 4, 5]
    assert list(values["log_loss"].dropna()) == [0, 1, 4, 9]
    assert list(values["accuracy"].dropna()) == [0.2, 0.5, 0.9]
    logs = exp.get_logs()
    assert logs["hash"].y == "as32e132" and logs["hash"].channelType == "text"
    assert logs["diagnostic_charts"].channelType == "image"
    exp.download_artifact("results.csv", str(tmp_path / "out"))
    assert (tmp_path / "out" / "results.csv").read_text() == "fold,auc\n0,0.9\n"
    exp.download_sources("run.sh", str(tmp_path / "src"))
    assert any((tmp_path / "src").iterdir())
    assert io.BytesIO((work / "run.sh").read_bytes()).read() == b"python train.py\n"
