"""Sweeps: the search space, search configs, pruning, workers, storages and faults.

Real-data tests run tiny sweeps on MovieLens 100K (a few epochs, a handful of components)
tracked in a throwaway MLflow store and journal files of their own.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from recexp import metrics, tracking, tuning
from recexp.config import ConfigError
from recexp.tuning import SearchParam
from tests._util import wait_for

ROOT = Path(__file__).resolve().parents[1]
SEARCH = ROOT / "experiments" / "ml100k_lightfm.search.yaml"
SHIPPED = sorted((ROOT / "experiments").glob("*.search.yaml"))
# Tiny LightFM: three epochs of 4-8 components; the space keeps the sweep's shape.
TINY = [
    "models.0.params.epochs=3",
    "search.space={model.no_components: {type: int, low: 4, high: 8}, "
    "model.learning_rate: {type: float, low: 0.02, high: 0.1, log: true}, "
    "model.loss: {type: categorical, choices: [warp, bpr]}, "
    "model.max_sampled: {type: int, low: 5, high: 20, when: {model.loss: [warp]}}}",
    "search.pruner={kind: none}",
    "evaluation.k=[10]",
    "evaluation.metrics=[ndcg, recall]",
]
GOOD = {"model.no_components": 8, "model.learning_rate": 0.1, "model.loss": "warp",
        "model.max_sampled": 20}
BAD = {"model.no_components": 4, "model.learning_rate": 0.02, "model.loss": "bpr"}


# ============================================================================ fixtures
def runs_of(experiment: str, study: str) -> pd.DataFrame:
    import mlflow

    tracking.configure()
    return mlflow.search_runs(experiment_names=[experiment],
                              filter_string=f"tags.`recexp.study` = '{study}'")


def client():
    from mlflow.tracking import MlflowClient

    tracking.configure()
    return MlflowClient()


def load_study(url: str, name: str):
    return optuna.load_study(study_name=name, storage=tuning.make_storage(url))


# ============================================================================ search space
class RecordingTrial:
    """Records suggest calls and answers each with its lower bound or first choice."""

    def __init__(self):
        self.calls = []

    def suggest_int(self, name, low, high, *, step=1, log=False):
        self.calls.append(("int", name, low, high, step, log))
        return low

    def suggest_float(self, name, low, high, *, step=None, log=False):
        self.calls.append(("float", name, low, high, step, log))
        return low

    def suggest_categorical(self, name, choices):
        self.calls.append(("categorical", name, tuple(choices)))
        return choices[0]


SPACE = (
    SearchParam("model.no_components", "int", low=8, high=64, log=True),
    SearchParam("model.epochs", "int", low=10, high=50, step=10),
    SearchParam("model.learning_rate", "float", low=1e-3, high=0.1, log=True),
    SearchParam("model.rho", "float", low=0.5, high=0.9, step=0.1),
    SearchParam("model.loss", "categorical", choices=("warp", "bpr")),
    SearchParam("model.max_sampled", "int", low=5, high=50, when={"model.loss": ("warp",)}),
    SearchParam("model.epsilon", "float", low=1e-8, high=1e-4, log=True,
                when={"model.learning_schedule": ("adadelta",)}),
)


def test_suggest_maps_each_type_onto_optuna():
    trial = RecordingTrial()
    chosen = tuning.suggest(trial, SPACE, fixed={"model.learning_schedule": "adagrad"})
    assert trial.calls == [
        ("int", "model.no_components", 8, 64, 1, True),
        ("int", "model.epochs", 10, 50, 10, False),
        ("float", "model.learning_rate", 1e-3, 0.1, None, True),
        ("float", "model.rho", 0.5, 0.9, 0.1, False),
        ("categorical", "model.loss", ("warp", "bpr")),
        ("int", "model.max_sampled", 5, 50, 1, False),  # loss drew warp: active
    ]  # epsilon: only with adadelta, fixed at adagrad
    assert chosen["model.loss"] == "warp" and "model.epsilon" not in chosen


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(tuning, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_suggest_draws_within_bounds_and_conditions():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for _ in range(60):
        trial = study.ask()
        chosen = tuning.suggest(trial, SPACE, fixed={"model.learning_schedule": "adadelta"})
        assert 8 <= chosen["model.no_components"] <= 64
        assert isinstance(chosen["model.no_components"], int)
        assert chosen["model.epochs"] in (10, 20, 30, 40, 50)
        assert 1e-3 <= chosen["model.learning_rate"] <= 0.1
        assert round(chosen["model.rho"], 6) in (0.5, 0.6, 0.7, 0.8, 0.9)
        assert ("model.max_sampled" in chosen) == (chosen["model.loss"] == "warp")
        assert 1e-8 <= chosen["model.epsilon"] <= 1e-4
        assert trial.params == chosen
        study.tell(trial, 0.0)
    losses = {t.params["model.loss"] for t in study.trials}
    assert losses == {"warp", "bpr"}


# ============================================================================ search configs
def test_shipped_search_configs_load_and_round_trip():
    assert SEARCH in SHIPPED
    for path in SHIPPED:
        config = tuning.load_search_config(path)
        assert len(config.experiment.models) == 1 and config.experiment.validation
        assert tuning.parse_search_config(config.to_dict(), source=str(path)) == config


def test_overrides_reach_flat_param_names():
    config = tuning.load_search_config(SEARCH, overrides=[
        "search.space.model.no_components.high=64",
        "search.space.model.max_sampled.when.model.loss=[warp]",
        "search.enqueue=[{model.loss: bpr}]", "models.lightfm.params.epochs=3",
        "search.pruner.reduction_factor=2"])
    space = {p.name: p for p in config.search.space}
    assert space["model.no_components"].high == 64
    assert space["model.max_sampled"].when == {"model.loss": ("warp",)}
    assert config.search.enqueue == ({"model.loss": "bpr"},)
    assert config.model.params["epochs"] == 3 and config.search.pruner["reduction_factor"] == 2


@pytest.mark.parametrize("override, message", [
    ("search.space.model.no_compnents={type: int, low: 1, high: 3}",
     "search.space.model.no_compnents: unknown parameter; did you mean 'model.no_components'"),
    ("search.space.model.learning_rate.tpye=float",
     "search.space.model.learning_rate.tpye: unknown key; did you mean 'type'"),
    ("search.space.model.loss.type=categorial",
     "search.space.model.loss.type: 'categorial' is not a type; did you mean 'categorical'"),
    ("search.space.model.learning_rate.low=0", "learning_rate.low: log scale needs low > 0"),
    ("search.space.model.no_components.high=8", "no_components: low (16) is above high (8)"),
    ("search.space.model.no_components.step=2", "`log` and `step` cannot be combined"),
    ("search.space.model.no_components.low=0.5", "no_components.low: expected an integer"),
    ("search.space.model.loss.choices=[warp, huber]",
     "search.space.model.loss.choices[1]: LightFMRecommender: loss='huber'"),
    ("search.space.model.max_sampled.when={model.loss: [wrap]}",
     "'wrap' is not a choice of model.loss; did you mean 'warp'"),
    ("search.space.model.max_sampled.when={model.los: [warp]}",
     "max_sampled.when.model.los: unknown parameter; did you mean 'model.loss'"),
    ("search.pruner.kind=medain", "search.pruner.kind: unknown pruner 'medain'; did you mean "
                                  "'median'"),
    ("search.pruner={kind: median, n_warmup: 3}", "search.pruner.n_warmup: unknown key; "
                                                  "did you mean 'n_warmup_steps'"),
    ("search.pruner.reduction=2", "search.pruner.reduction: unknown key; did you mean "
                                  "'reduction_factor'"),
    ("search.pruner={kind: wilcoxon, over: folds}", "'folds' needs a k-fold `validation`"),
    ("search.sampler.sed=1", "search.sampler.sed: unknown key; did you mean 'seed'"),
    ("search.sampler.kind=tpee", "unknown sampler 'tpee'; did you mean 'tpe'"),
    ("search.metric=ndgc@10", "search.metric: 'ndgc@10' is not a per-user metric; did you "
                              "mean 'ndcg@10'"),
    ("search.direction=maximise", "did you mean 'maximize'"),
    ("search.n_trials=0", "search.n_trials: at least 1"),
    ("search.enqueue=[{model.los: bpr}]", "search.enqueue[0].model.los: unknown key; did you "
                                         "mean 'model.loss'"),
    ("search.heartbeat={interval: 10, grace_period: 5}", "grace_period > interval"),
    ("search.heartbeet={interval: 1}", "search.heartbeet: unknown key; did you mean "
                                       "'heartbeat'"),
    ("models.0.params.no_componets=8", "no_componets"),
])
def test_bad_search_configs_fail_before_work(override, message):
    with pytest.raises(ConfigError) as err:
        tuning.load_search_config(SEARCH, overrides=[override])
    assert message in str(err.value)
    assert str(SEARCH) in str(err.value)


def test_a_search_needs_one_model_validation_and_a_search_section():
    data = yaml.safe_load(SEARCH.read_text())
    two = {**data, "models": [*data["models"], {"model": "most_popular"}]}
    with pytest.raises(ConfigError, match="exactly one model, got 2"):
        tuning.parse_search_config(two)
    without = {k: v for k, v in data.items() if k != "validation"}
    with pytest.raises(ConfigError, match="validation: a search needs a validation"):
        tuning.parse_search_config(without)
    with pytest.raises(ConfigError, match="search: required section is missing"):
        tuning.parse_search_config({k: v for k, v in data.items() if k != "search"})


def test_a_later_param_cannot_condition_an_earlier_one():
    data = yaml.safe_load(SEARCH.read_text())
    space = data["search"]["space"]
    data["search"]["space"] = {"model.max_sampled": space["model.max_sampled"],
                               "model.loss": space["model.loss"]}
    with pytest.raises(ConfigError, match="model.loss is searched after model.max_sampled"):
        tuning.parse_search_config(data)


@pytest.mark.parametrize("kind, cls", [
    ("median", optuna.pruners.MedianPruner), ("percentile", optuna.pruners.PercentilePruner),
    ("successive_halving", optuna.pruners.SuccessiveHalvingPruner),
    ("hyperband", optuna.pruners.HyperbandPruner), ("wilcoxon", optuna.pruners.WilcoxonPruner),
    ("none", optuna.pruners.NopPruner)])
def test_every_pruner_kind_builds(kind, cls):
    spec = {"kind": kind, **({"percentile": 25.0} if kind == "percentile" else {})}
    assert isinstance(tuning.make_pruner(spec), cls)


def test_percentile_without_its_percentile_is_a_config_error():
    with pytest.raises(ConfigError, match="search.pruner.*percentile"):
        tuning.load_search_config(SEARCH, overrides=["search.pruner={kind: percentile}"])


# ============================================================================ heartbeats
@pytest.mark.filterwarnings("ignore:Heartbeat of storage",
                            "ignore::optuna.exceptions.ExperimentalWarning")
def test_journal_heartbeat_fails_and_retries_a_silent_trial(tmp_path):
    beat = tuning.HeartbeatConfig(interval=1, grace_period=2, max_retry=1)
    storage = tuning.make_storage(str(tmp_path / "s.journal"), heartbeat=beat)
    assert optuna.storages._heartbeat.is_heartbeat_enabled(storage)
    study = optuna.create_study(study_name="hb", storage=storage)
    alive, dead = study.ask(), study.ask()
    for trial in (alive, dead):
        trial.suggest_float("x", 0, 1)
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:  # only `alive` keeps beating
        storage.record_heartbeat(alive._trial_id)
        time.sleep(0.25)
    optuna.storages.fail_stale_trials(study)
    states = {t.number: t.state for t in study.trials}
    assert states[alive.number] == optuna.trial.TrialState.RUNNING
    assert states[dead.number] == optuna.trial.TrialState.FAIL
    retry = study.trials[-1]
    assert retry.state == optuna.trial.TrialState.WAITING
    assert retry.system_attrs["failed_trial"] == dead.number
    assert retry.params == study.trials[dead.number].params


def test_sweep_result_loads_its_study(tmp_path):
    url = str(tmp_path / "optuna" / "s.journal")
    study = optuna.create_study(study_name="s", storage=tuning.make_storage(url),
                                direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=3)
    result = tuning.SweepResult(
        study_name="s", storage=url, parent_run_id=None, metric="ndcg@10",
        direction="maximize", best_value=study.best_value, best_params={},
        best_trial=study.best_trial.number, states={"COMPLETE": 3}, epochs_trained=0,
        seconds=0.0, final=None)
    loaded = result.load_study()
    assert isinstance(loaded, optuna.Study) and loaded.study_name == "s"
    assert [t.params for t in loaded.trials] == [t.params for t in study.trials]
    assert loaded.best_trial.number == result.best_trial
    hidden = dataclasses.replace(result, storage="postgresql://me:***@127.0.0.1:1/sweeps")
    with pytest.raises(ValueError, match=r"hides its password; pass the full URL"):
        hidden.load_study()
    gone = dataclasses.replace(result, storage=str(tmp_path / "gone.journal"))
    with pytest.raises(FileNotFoundError, match="gone.journal"):
        gone.load_study()
    assert not (tmp_path / "gone.journal").exists()


def test_default_storage_is_a_journal_under_the_project_root(tmp_path, monkeypatch):
    monkeypatch.setenv("RECEXP_HOME", str(tmp_path))
    assert tuning.storage_url(None, "my study") == str(tmp_path / "optuna" / "my_study.journal")
    assert tuning.storage_url("postgresql://u:secret@h/db", "s") == "postgresql://u:secret@h/db"
    assert "secret" not in tuning._display_url("postgresql://u:secret@h/db")


# ============================================================================ real sweeps
def _tiny(*extra: str):
    return tuning.load_search_config(SEARCH, overrides=[*TINY, *extra])


@pytest.mark.realdata
def test_small_sweep_tracks_trials_and_tests_only_at_the_end(store, monkeypatch):
    calls = []
    real = metrics.evaluate

    def spy(model, split, **kwargs):
        calls.append({"split": split, "n_test": split.test.n_interactions,
                      "seen": model.seen_.nnz, "has_valid": split.valid is not None})
        return real(model, split, **kwargs)

    monkeypatch.setattr(metrics, "evaluate", spy)
    config = _tiny()
    result = tuning.sweep(config, n_trials=4, study="small", progress=False)

    # The test split: evaluated exactly twice (tuned, default), last, after fitting on
    # train + valid; every call before that scores the validation set of a train-only fit.
    final = [c for c in calls if c["has_valid"]]
    assert len(final) == 2 and calls[-2:] == final
    split = final[0]["split"]
    assert all(c["seen"] == split.full_train.n_interactions for c in final)
    trial_calls = calls[:-2]
    assert trial_calls and all(not c["has_valid"] for c in trial_calls)
    assert {c["n_test"] for c in trial_calls} == {split.valid.n_interactions}
    assert {c["seen"] for c in trial_calls} == {split.train.n_interactions}
    assert len(trial_calls) == result.epochs_trained == 4 * 3

    runs = runs_of(config.experiment.name, "small")
    assert set(runs["status"]) == {"FINISHED"}
    parent = runs[runs["tags.recexp.kind"] == "sweep"]
    trials = runs[runs["tags.recexp.kind"] == "trial"]
    assert len(parent) == 1 and len(trials) == 4
    assert (trials["tags.mlflow.parentRunId"] == result.parent_run_id).all()
    assert set(trials["tags.optuna.trial_state"]) == {"COMPLETE"}
    mlflow_client = client()
    for run_id in trials["run_id"]:
        run = mlflow_client.get_run(run_id)
        assert "model.no_components" in run.data.params
        curve = mlflow_client.get_metric_history(run_id, "valid.ndcg_at_10")
        assert [m.step for m in sorted(curve, key=lambda m: m.step)] == [1, 2, 3]
    run = mlflow_client.get_run(result.parent_run_id)
    best = {k.removeprefix("best."): v for k, v in run.data.params.items()
            if k.startswith("best.")}
    assert best["model.no_components"] == str(result.best_params["no_components"])
    assert run.data.metrics["best.valid.ndcg_at_10"] == pytest.approx(result.best_value)
    assert "test.tuned.ndcg_at_10" in run.data.metrics
    assert "test.paired_t_pvalue" in run.data.metrics
    plots = {a.path for a in mlflow_client.list_artifacts(result.parent_run_id, "plots")}
    assert {f"plots/{p}.png" for p in ("optimization_history", "param_importances",
                                       "parallel_coordinate", "intermediate_values")} <= plots
    finals = {a.path for a in mlflow_client.list_artifacts(result.parent_run_id, "final")}
    assert {"final/comparison.json", "final/per_user_test.parquet"} <= finals

    assert result.final is not None and result.final.paired.n > 900  # test users
    assert 0 < result.final.tuned["ndcg@10"] < 1
    assert result.best_params["epochs"] == 3


@pytest.mark.realdata
def test_a_model_without_epochs_reports_once(store):
    config = tuning.load_search_config(SEARCH, overrides=[
        "models=[{model: item_knn, params: {neighbours: 50}}]",
        "search.space={model.neighbours: {type: int, low: 10, high: 200, log: true}}",
        "search.pruner={kind: median, n_startup_trials: 0}"])
    result = tuning.sweep(config, n_trials=2, study="knn", progress=False, retrain=False,
                          track=False)
    assert result.states == {"COMPLETE": 2} and result.parent_run_id is None
    for trial in result.load_study().trials:
        assert list(trial.intermediate_values) == [1]
        assert trial.value == trial.intermediate_values[1]


@pytest.mark.realdata
def test_median_pruner_prunes_a_hopeless_trial_and_keeps_its_curve(store):
    config = _tiny("search.pruner={kind: median, n_startup_trials: 1, n_warmup_steps: 0}",
                   f"search.enqueue=[{GOOD}, {BAD}]".replace("'", ""),
                   "models.0.params.epochs=4")
    result = tuning.sweep(config, n_trials=2, study="prune", progress=False, retrain=False)
    assert result.states == {"COMPLETE": 1, "PRUNED": 1}
    study = result.load_study()
    good, bad = study.trials
    assert bad.state == optuna.trial.TrialState.PRUNED
    assert bad.user_attrs["epochs_trained"] < 4 and bad.user_attrs["pruned"] is True
    assert result.epochs_trained == 4 + bad.user_attrs["epochs_trained"]
    run = client().get_run(bad.user_attrs["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["pruned"] == "true"
    assert run.data.tags["optuna.trial_state"] == "PRUNED"
    curve = client().get_metric_history(run.info.run_id, "valid.ndcg_at_10")
    assert len(curve) == bad.user_attrs["epochs_trained"] == len(bad.intermediate_values)


@pytest.mark.realdata
@pytest.mark.parametrize("over", ["seeds", "folds"])
def test_wilcoxon_prunes_over_repeats_of_user_groups(store, over):
    extra = [f"search.pruner={{kind: wilcoxon, over: {over}, repeats: 3, groups: 20, "
             "p_threshold: 0.1}",
             f"search.enqueue=[{GOOD}, {BAD}]".replace("'", "")]
    if over == "folds":
        extra.append("validation={kind: user_kfold, k: 3, ratio: 0.2, seed: 7}")
    config = _tiny(*extra)
    study_name = f"wilcoxon-{over}"
    result = tuning.sweep(config, n_trials=2, study=study_name, progress=False, retrain=False)
    good, bad = load_study(tuning.storage_url(None, study_name), study_name).trials
    assert good.user_attrs["repeats_done"] == 3 and good.user_attrs["pruned"] is False
    # Each instance is a (repeat, user group) step, reported with its value.
    assert len(good.intermediate_values) == 3 * 20
    assert bad.user_attrs["pruned"] is True and bad.user_attrs["repeats_done"] == 1
    assert bad.state == optuna.trial.TrialState.COMPLETE and bad.value < good.value
    assert result.epochs_trained == 3 * 3 + 3
    run = client().get_run(bad.user_attrs["mlflow_run_id"])
    assert run.data.tags["pruned"] == "true"


@pytest.mark.realdata
def test_two_workers_share_one_journal_study(store):
    config_path = SEARCH
    result = tuning.sweep_from_file(config_path, n_trials=4, workers=2, study="two",
                                    overrides=[*TINY, "models.0.params.epochs=2"],
                                    progress=False, retrain=False, seed=5)
    _check_shared_study(result, tuning.storage_url(None, "two"), "two", 4)


def _check_shared_study(result, url: str, name: str, n: int) -> None:
    study = result.load_study()
    assert study.study_name == name and len(load_study(url, name).trials) == n
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(n))
    assert all(t.state.is_finished() for t in study.trials)
    assert result.states.get("COMPLETE", 0) + result.states.get("PRUNED", 0) == n
    runs = runs_of("ml100k-lightfm-search", name)
    trials = runs[runs["tags.recexp.kind"] == "trial"]
    assert sorted(trials["tags.recexp.trial_number"].astype(int)) == list(range(n))
    assert set(trials["tags.recexp.worker"]) == {"0", "1"}
    assert (trials["tags.mlflow.parentRunId"] == result.parent_run_id).all()
    assert set(runs["status"]) == {"FINISHED"}
    by_trial = {t.number: t.user_attrs["mlflow_run_id"] for t in study.trials}
    assert set(by_trial.values()) == set(trials["run_id"])
    assert len({json_params(t) for t in study.trials}) == n  # no trial ran twice


def json_params(trial) -> str:
    import json

    return json.dumps(trial.params, sort_keys=True)


# ============================================================================ PostgreSQL
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie no one reaped is gone too
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def _as_user(user: str | None) -> list[str]:
    """A command prefix that runs as ``user`` (postgres refuses to run as root)."""
    if user is None:
        return []
    if shutil.which("runuser"):
        return ["runuser", "-u", user, "--"]
    if shutil.which("setpriv"):
        entry = pwd.getpwnam(user)
        return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                "--init-groups", "--"]
    pytest.fail("running as root, and neither runuser nor setpriv is here to drop to "
                f"{user!r}: postgres will not start as root")


@pytest.fixture
def postgres_url():
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields a URL of an empty database."""
    binaries = [shutil.which(b) for b in ("initdb", "pg_ctl", "postgres")]
    if not all(binaries):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, postgres) are not on PATH")
    import importlib.util

    if not any(importlib.util.find_spec(m) for m in ("psycopg", "psycopg2")):
        pytest.fail("no PostgreSQL driver: pip install psycopg2-binary (or psycopg[binary]) "
                    "for postgresql:// storage URLs")
    user = None
    if os.geteuid() == 0:
        names = [p.pw_name for p in pwd.getpwall()]
        user = "postgres" if "postgres" in names else "nobody"
    # Not in tmp_path: pytest's base folder is 0700 root, which the unprivileged server
    # user cannot enter; a fresh folder of its own under the temp dir can be handed over.
    folder = Path(tempfile.mkdtemp(prefix="recexp-pg-"))
    data = folder / "data"
    pid = None
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        prefix = _as_user(user)
        subprocess.run([*prefix, "initdb", "-D", str(data), "-U", "postgres", "--auth=trust",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True,
                       timeout=180)
        port = _free_port()
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
        subprocess.run([*prefix, "pg_ctl", "-D", str(data), "-o", options, "-l",
                        str(folder / "server.log"), "-w", "-t", "120", "start"], check=True,
                       capture_output=True, timeout=180)
        pid = int((data / "postmaster.pid").read_text().split()[0])
        import sqlalchemy

        admin = sqlalchemy.create_engine(
            tuning._with_driver(f"postgresql://postgres@127.0.0.1:{port}/postgres"),
            isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text("CREATE DATABASE sweeps"))
        admin.dispose()
        yield f"postgresql://postgres@127.0.0.1:{port}/sweeps"
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGINT)  # "fast" shutdown of the postmaster
            end = time.monotonic() + 60
            while not _pid_gone(pid) and time.monotonic() < end:
                time.sleep(0.2)
            if not _pid_gone(pid):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.realdata
def test_two_workers_on_postgresql(store, postgres_url):
    result = tuning.sweep_from_file(SEARCH, n_trials=4, workers=2, study="pg",
                                    storage=postgres_url,
                                    overrides=[*TINY, "models.0.params.epochs=2"],
                                    progress=False, retrain=False, seed=11)
    assert result.storage == postgres_url  # no password to hide here
    _check_shared_study(result, postgres_url, "pg", 4)


# ============================================================================ faults
KILL_OVERRIDES = [
    *TINY, "search.space.model.epochs={type: int, low: 2, high: 16}",
    "search.enqueue=[{model.epochs: 2}, {model.epochs: 16}]",
    "search.heartbeat={interval: 1, grace_period: 3, max_retry: 1}",
    "search.space.model.no_components={type: int, low: 4, high: 4}",
]


@pytest.mark.realdata
def test_sigkill_mid_trial_then_resume(store):
    url = str(store / "optuna" / "killed.journal")
    script = ("from recexp import tuning; import sys; "
              "tuning.sweep_from_file(sys.argv[1], n_trials=2, study='killed', "
              "storage=sys.argv[2], overrides=sys.argv[3:], progress=False, retrain=False)")
    proc = subprocess.Popen([sys.executable, "-c", script, str(SEARCH), url, *KILL_OVERRIDES],
                            env={**os.environ, "RECEXP_HOME": str(store)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def second_trial_mid_way():
            if proc.poll() is not None:
                raise AssertionError(f"the sweep ended early: {proc.stderr.read()}")
            if not Path(url).exists():
                return False
            try:
                trials = load_study(url, "killed").trials
            except KeyError:
                return False
            return (len(trials) == 2 and trials[0].state.name == "COMPLETE"
                    and trials[1].state.name == "RUNNING"
                    and len(trials[1].intermediate_values) >= 2)

        wait_for(second_trial_mid_way, 300, "the second trial to be mid-way")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    before = load_study(url, "killed").trials
    assert before[1].state.name == "RUNNING"  # nobody told the storage
    runs = runs_of("ml100k-lightfm-search", "killed")
    assert sorted(runs["status"]) == ["FINISHED", "RUNNING", "RUNNING"]  # trial 1 + parent
    time.sleep(3 + 1)  # the grace period passes without a heartbeat

    result = tuning.sweep_from_file(SEARCH, n_trials=1, study="killed", storage=url,
                                    overrides=KILL_OVERRIDES, progress=False, retrain=False)
    trials = load_study(url, "killed").trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials[0].value == before[0].value
    retry = trials[2]
    assert retry.system_attrs["failed_trial"] == 1 and retry.params == trials[1].params
    assert result.states == {"COMPLETE": 1}

    runs = runs_of("ml100k-lightfm-search", "killed").set_index("run_id")
    assert "RUNNING" not in set(runs["status"])
    status = {t.number: runs.loc[t.user_attrs["mlflow_run_id"], "status"] for t in trials}
    assert status == {0: "FINISHED", 1: "KILLED", 2: "FINISHED"}
    killed = runs.loc[trials[1].user_attrs["mlflow_run_id"]]
    assert "FAIL" in killed["tags.recexp.killed_reason"]
    assert runs.loc[trials[2].user_attrs["mlflow_run_id"], "tags.recexp.retry_of"] == "1"
    parents = runs[runs["tags.recexp.kind"] == "sweep"]
    assert sorted(parents["status"]) == ["FINISHED", "KILLED"]
