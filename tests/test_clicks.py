"""Click-prediction experiments (task: ctr) on the real Criteo samples, tracked in MLflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import log_loss

from recexp import experiment, tracking
from recexp.clicks import per_impression, prepare_clicks, split_rows
from recexp.config import ConfigError, load_config, parse_config
from recexp.stats import RunTable, summarize_runs

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "experiments" / "criteo_ctr.yaml"


# ---------------------------------------------------------------------- splits
def test_ordered_split_holds_out_the_last_rows():
    labels = np.array([0, 1] * 10)
    kept, held = split_rows(labels, {"kind": "ordered", "ratio": 0.25})
    assert list(held) == list(range(15, 20))
    assert list(kept) == list(range(15))


def test_random_split_is_seeded_stratified_and_disjoint():
    labels = np.r_[np.ones(30, int), np.zeros(70, int)]
    a = split_rows(labels, {"kind": "random", "ratio": 0.2, "seed": 3})
    b = split_rows(labels, {"kind": "random", "ratio": 0.2, "seed": 3})
    c = split_rows(labels, {"kind": "random", "ratio": 0.2, "seed": 4})
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])
    kept, held = a
    assert len(held) == 20 and len(kept) == 80
    assert not set(kept) & set(held)
    assert labels[held].sum() == 6  # 30% clicks on both sides


@pytest.mark.parametrize(("spec", "words"), [
    ({"kind": "randomm"}, "did you mean 'random'"),
    ({"kind": "ordered", "ratio": 1.0}, "strictly between 0 and 1"),
    ({"kind": "ordered", "seed": 1}, "unknown key for kind 'ordered'"),
    ({"kind": "random", "ratio": 0.2, "stratfy": True}, "did you mean 'stratify'"),
    ({"kind": "random", "seed": "x"}, "seed: must be an integer"),
])
def test_bad_splits_name_the_key(spec, words):
    with pytest.raises(ValueError, match=words):
        split_rows(np.array([0, 1] * 10), spec)


def test_split_refuses_a_train_side_without_clicks():
    labels = np.r_[np.zeros(15, int), np.ones(5, int)]
    with pytest.raises(ValueError, match="all non-clicks"):
        split_rows(labels, {"kind": "ordered", "ratio": 0.25})


# ---------------------------------------------------------------------- metrics
def test_per_impression_log_loss_averages_to_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = rng.uniform(0, 1, 500)
    p[:3] = [0.0, 1.0, 1e-12]  # clipped like click_metrics
    table = per_impression(np.arange(500), y, p)
    naive = [-np.log(min(max(pi, 1e-7), 1 - 1e-7)) if yi else
             -np.log(1 - min(max(pi, 1e-7), 1 - 1e-7)) for yi, pi in zip(y, p, strict=True)]
    np.testing.assert_allclose(table["log_loss"], naive, rtol=1e-12)
    assert table["log_loss"].mean() == pytest.approx(
        log_loss(y, np.clip(p, 1e-7, 1 - 1e-7)), rel=1e-12)
    assert table["squared_error"].mean() == pytest.approx(np.mean((np.clip(p, 1e-7, 1 - 1e-7)
                                                                   - y) ** 2))


def test_identical_seeds_fall_back_to_the_bootstrap():
    table = pd.DataFrame({"impression": range(50),
                          "log_loss": np.linspace(0.1, 1.0, 50)})
    runs = [RunTable("global", seed, table) for seed in (0, 1, 2)]
    row = summarize_runs(runs, metric="log_loss").iloc[0]
    assert row["interval"] == "bootstrap-impressions"
    assert row["low"] < row["mean"] < row["high"]
    assert row["std_seeds"] == 0.0


# ---------------------------------------------------------------------- config
def _ctr(**changes) -> dict:
    data = yaml.safe_load(SHIPPED.read_text())
    data.update(changes)
    return data


@pytest.mark.parametrize(("changes", "words"), [
    ({"task": "ctrr"}, "task: unknown task 'ctrr'; did you mean 'ctr'"),
    ({"data": {"dataset": "movielens-100k"}}, "data.dataset: 'movielens-100k' has no "
                                              "impressions"),
    ({"models": [{"model": "lightfm"}]}, "models\\[0\\].model: .*unknown click model.*"
                                         "'lightfm' is a model of task 'ranking'"),
    ({"task": "ranking"}, "'global-ctr' is a model of task 'ctr'"),
    ({"models": [{"model": "hashed-lr", "params": {"alpha": -1}}]}, "alpha=-1"),
    ({"split": {"kind": "user_ratio", "ratio": 0.2}}, "split: kind: 'user_ratio' is not a "
                                                      "split of impressions"),
    ({"validation": {"kind": "random", "ratio": 2}}, "validation: ratio"),
    ({"features": {"item": [{"kind": "multi_hot", "column": "genres"}]}},
     "features: not used by task 'ctr'"),
    ({"evaluation": {"k": [10]}}, "evaluation.k: not used by task 'ctr'"),
    ({"evaluation": {"calibration_bins": 0}}, "calibration_bins: must be >= 1"),
])
def test_bad_ctr_configs_fail_before_any_work(changes, words):
    with pytest.raises(ConfigError, match=words):
        parse_config(_ctr(**changes))


def test_shipped_ctr_config_is_valid():
    config = load_config(SHIPPED)
    assert config.task == "ctr"
    assert {m.model for m in config.models} == {"global-ctr", "item-ctr", "hashed-lr",
                                                "lightfm-ctr"}


# ---------------------------------------------------------------------- end to end
@pytest.mark.realdata
@pytest.mark.slow
def test_shipped_ctr_experiment_tracks_every_run(store, data_dir):
    import mlflow
    from mlflow.tracking import MlflowClient

    from recexp.compare import compare_experiment

    config = load_config(SHIPPED, overrides=["name=test-criteo-ctr", "seeds=[0, 1]",
                                             "models.lightfm-ctr.params.epochs=3"])
    result = experiment.run(config, config_path=SHIPPED, progress=False)
    tracking.configure()
    runs = mlflow.search_runs(experiment_names=[config.name])
    assert set(runs["status"]) == {"FINISHED"}
    children = runs[runs["tags.mlflow.parentRunId"] == result.parent_run_id]
    assert len(children) == 4 * 2
    assert (children["tags.recexp.task"] == "ctr").all()
    assert children["tags.recexp.dataset_digest"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert children["metrics.log_loss"].between(0.3, 1.0).all()
    assert children["metrics.roc_auc"].notna().all()
    # global-ctr ranks nothing: every impression gets the training click rate
    assert (children.loc[children["tags.recexp.model"] == "global-ctr",
                         "metrics.roc_auc"] == 0.5).all()
    client = MlflowClient()
    for run_id in children["run_id"]:
        names = {a.path for a in client.list_artifacts(run_id)}
        assert {"per_impression_metrics.parquet", "calibration.csv", "plots"} <= names
        run = client.get_run(run_id)
        contexts = {t.value for d in run.inputs.dataset_inputs for t in d.tags
                    if t.key == "mlflow.data.context"}
        assert contexts >= {"training", "validation", "testing"}
        assert "model.name" in run.data.params and "seed" in run.data.params
    assert (children["tags.recexp.model_saved"] == "true").all()
    lfm = children[children["tags.recexp.model"] == "lightfm-ctr"]["run_id"].iloc[0]
    history = client.get_metric_history(lfm, "valid.log_loss")
    assert [m.step for m in history] == [1, 2, 3]
    # the logged table is what the summary says
    local = client.download_artifacts(lfm, "per_impression_metrics.parquet", str(store))
    table = pd.read_parquet(local)
    logged = client.get_run(lfm).data.metrics["log_loss"]
    assert table["log_loss"].mean() == pytest.approx(logged, rel=1e-9)
    assert len(table) == 60  # 30% of the 200 sample impressions
    # the logged model is the fitted one: loaded, it predicts the logged probabilities
    from recexp.models.ctr import ClickModel

    loaded = ClickModel.load(client.download_artifacts(lfm, "model", str(store)))
    prepared = prepare_clicks(config)
    again = loaded.predict_proba(prepared.impressions.take(table["impression"].to_numpy()))
    np.testing.assert_allclose(again, table["probability"], rtol=1e-6)
    # compare pairs impressions, log loss by default
    compared = compare_experiment(config.name, baseline="global-ctr")
    assert compared["metric"].iloc[0] == "log_loss"
    assert set(compared["model"]) == {"global-ctr", "item-ctr", "hashed-lr", "lightfm-ctr"}
    assert (compared["paired_users"] == 60).all()
