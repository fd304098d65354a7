"""Experiments end to end on the real MovieLens 100K, tracked in a throwaway MLflow store."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from recexp import experiment, tracking
from recexp.config import parse_config
from tests._util import wait_for

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
# Ranking experiments; the click-prediction one (task: ctr) is in test_clicks.py.
SHIPPED = sorted(p for p in (ROOT / "experiments").glob("*.yaml")
                 if not p.name.endswith(".search.yaml")
                 and yaml.safe_load(p.read_text()).get("task", "ranking") == "ranking")
SMALL = {"epochs": 2, "iterations": 2, "factors": 8, "no_components": 8}


@pytest.fixture(autouse=True)
def _real_data(data_dir):
    """Every test here reads ML-100K: skip (fail in CI) without the shared data."""


def shrink(path: Path, **top) -> dict:
    """The shipped config with one seed and tiny models, so the suite stays quick."""
    data = yaml.safe_load(path.read_text())
    data["seeds"] = [0]
    for model in data["models"]:
        params = model.setdefault("params", {})
        for key, value in SMALL.items():
            if key in params or (key in ("epochs", "no_components") and
                                 model["model"] == "lightfm"):
                params[key] = value
    data.update(top)
    return data


def result_digest(config) -> str:
    """The digest of the config's prepared dataset, computed again from scratch."""
    return experiment.prepare(config, progress=False).dataset.digest()


def client():
    from mlflow.tracking import MlflowClient

    tracking.configure()
    return MlflowClient()


def runs_of(name: str) -> pd.DataFrame:
    import mlflow

    tracking.configure()
    return mlflow.search_runs(experiment_names=[name])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_experiment_creates_its_runs(store, path):
    config = parse_config(shrink(path, name=f"test-{path.stem}"))
    result = experiment.run(config, config_path=path, progress=False)
    runs = runs_of(config.name)
    assert set(runs["status"]) == {"FINISHED"}
    children = runs[runs["tags.mlflow.parentRunId"] == result.parent_run_id]
    assert len(children) == len(config.models) * len(config.seeds)
    assert set(children["tags.recexp.label"]) == {m.label for m in config.models}
    k = config.evaluation.k[0]
    assert children[f"metrics.ndcg_at_{k}"].notna().all()
    assert children["tags.recexp.git_commit"].str.fullmatch(r"[0-9a-f]{40}").all()
    assert children["tags.recexp.version.rectools-lightfm"].notna().all()
    assert (children["tags.recexp.bit_reproducible"] == "true").all()
    assert (children["tags.recexp.dataset_digest"] == result_digest(config)).all()
    assert (runs["tags.recexp.dataset_digest"].nunique() == 1)
    mlflow_client = client()
    for run_id in children["run_id"]:
        names = {a.path for a in mlflow_client.list_artifacts(run_id)}
        assert {"per_user_metrics.parquet", "plots"} <= names
        import mlflow

        logged = mlflow.search_logged_models(experiment_ids=[runs["experiment_id"].iloc[0]],
                                             filter_string=f"source_run_id = '{run_id}'",
                                             output_format="list")
        assert [m.name for m in logged] == ["model"]
        run = mlflow_client.get_run(run_id)
        assert run.inputs.dataset_inputs, "the dataset is logged as an input"
        assert "model.name" in run.data.params and "seed" in run.data.params
    if config.validation is not None:
        lfm = children[children["tags.recexp.model"] == "lightfm"]["run_id"].iloc[0]
        history = mlflow_client.get_metric_history(lfm, f"valid.ndcg_at_{k}")
        assert [m.step for m in history] == [1, 2]
    if config.data.preprocess:
        parent = mlflow_client.get_run(result.parent_run_id)
        assert any(key.startswith("preprocess.") for key in parent.data.metrics)


def test_cold_item_segments_are_reported(store):
    path = ROOT / "experiments" / "ml100k_cold_items.yaml"
    config = parse_config(shrink(path, name="test-cold-segments"))
    result = experiment.run(config, progress=False, log_models=False)
    summary = result.runs[0].summary
    assert {"warm/ndcg@10", "cold_item/ndcg@10"} <= set(summary)


def test_exception_marks_run_failed_with_error(store):
    data = shrink(ROOT / "experiments" / "ml100k_baselines.yaml", name="test-failing")
    data["models"] = [{"model": "ease", "params": {"max_items": 10}}]
    with pytest.raises(Exception, match="10"):
        experiment.run(parse_config(data), progress=False)
    runs = runs_of("test-failing")
    assert set(runs["status"]) == {"FAILED"}
    failed_child = runs[runs["tags.mlflow.parentRunId"].notna()]["run_id"].iloc[0]
    local = client().download_artifacts(failed_child, "error.txt", str(store))
    assert "max_items" in Path(local).read_text() or "10" in Path(local).read_text()


def test_sigint_leaves_runs_killed(store, tmp_path):
    data = shrink(ROOT / "experiments" / "ml100k_baselines.yaml", name="test-sigint")
    data["models"] = [{"model": "lightfm", "params": {"epochs": 5000, "no_components": 8}}]
    config_file = tmp_path / "long.yaml"
    config_file.write_text(yaml.safe_dump(data))
    env = {**os.environ, "RECEXP_HOME": str(store)}
    proc = subprocess.Popen([sys.executable, "-m", "recexp.cli", "run", str(config_file),
                             "--quiet"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        def child_running():
            try:
                runs = runs_of("test-sigint")
            except Exception:
                return False
            return len(runs) >= 2 and (runs["status"] == "RUNNING").all()

        wait_for(child_running, 240, "the child run to start")
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    runs = runs_of("test-sigint")
    assert set(runs["status"]) == {"KILLED"}, runs[["tags.mlflow.runName", "status"]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mlflow_server_serves_the_runs(store):
    config = parse_config(shrink(ROOT / "experiments" / "ml100k_baselines.yaml",
                                 name="test-server", models=[{"model": "most_popular"}]))
    experiment.run(config, progress=False, log_models=False)
    port = _free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
         tracking.tracking_uri(), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"], cwd=store, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        def healthy():
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_for(healthy, 120, "the MLflow server")
        with urllib.request.urlopen(f"{base}/api/2.0/mlflow/experiments/get-by-name?"
                                    f"experiment_name=test-server", timeout=10) as r:
            exp_id = json.load(r)["experiment"]["experiment_id"]
        request = urllib.request.Request(
            f"{base}/api/2.0/mlflow/runs/search",
            data=json.dumps({"experiment_ids": [exp_id]}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            runs = json.load(r)["runs"]
        assert len(runs) == 2 and {r["info"]["status"] for r in runs} == {"FINISHED"}
        child = next(r for r in runs if any(t["key"] == "mlflow.parentRunId"
                                            for t in r["data"].get("tags", [])))
        metrics = {m["key"]: m["value"] for m in child["data"]["metrics"]}
        assert 0 < metrics["ndcg_at_10"] < 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_pseudonymised_users_keep_their_features(monkeypatch):
    """The users table is renamed like the interactions, so no user loses its attributes."""
    monkeypatch.setenv("RECEXP_PSEUDONYM_KEY", "test-key-not-secret")
    data = shrink(ROOT / "experiments" / "ml100k_hybrid.yaml", name="test-pseudonym-features")
    data["data"]["preprocess"] = [*data["data"].get("preprocess", []),
                                  {"step": "pseudonymize"}]
    prepared = experiment.prepare(parse_config(data), progress=False)
    from recexp.preprocess import pseudonymize_ids

    table = prepared.user_table
    assert table is not None and len(table) == prepared.dataset.n_users
    assert set(table["user_id"]) == set(prepared.dataset.user_ids)
    assert set(table["user_id"]) <= set(pseudonymize_ids(range(1, 944)))
    features = prepared.dataset.user_features
    side = features[:, features.shape[0]:]  # past the identity block
    assert (side.getnnz(axis=1) > 0).all(), "every user still has its occupation features"
