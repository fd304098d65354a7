"""Run an experiment config: data -> preprocess -> features -> split -> fit -> evaluate -> track.

One invocation of :func:`run` is one MLflow parent run; each (model, seed) is a child run that
holds its params, per-epoch validation curves, test metrics overall and per segment, the
per-user metric table, plots and the fitted model.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from recexp import tracking
from recexp.columns import Columns
from recexp.config import ExperimentConfig
from recexp.dataset import Dataset
from recexp.metrics import evaluate
from recexp.models import Recommender, get_model_class

__all__ = ["RANKING", "ExperimentResult", "Prepared", "RunResult", "Task", "config_hash",
           "invoke", "make_model", "prepare", "run"]


@dataclass(frozen=True)
class Prepared:
    """Everything before model fitting, shared by every model of an experiment and by sweeps.

    Attributes
    ----------
    dataset : Dataset
        The preprocessed interactions with their features.
    split : recexp.split.Split
        Train / (valid) / test.
    source : str
        Where the data came from (dataset name and folder).
    reports : list of dict
        What preprocessing removed, one dict per step; plus bad lines skipped while reading.
    feature_summary : dict
        Counts of the side features built.
    """

    dataset: Dataset
    split: Any
    source: str
    reports: list[dict] = field(default_factory=list)
    feature_summary: dict = field(default_factory=dict)
    user_table: pd.DataFrame | None = None
    """The users attribute table the user features were built from (None without user
    features): a logged service encodes new users' attributes with the same builders."""

    @property
    def digest(self) -> str:
        """The preprocessed dataset's digest (:meth:`Dataset.digest`), tagged on every run."""
        return self.dataset.digest()


@dataclass(frozen=True)
class RunResult:
    """One (model, seed) child run."""

    label: str
    seed: int
    run_id: str
    summary: dict[str, float]
    per_user: pd.DataFrame
    curve: pd.DataFrame | None
    fit_seconds: float


@dataclass(frozen=True)
class ExperimentResult:
    """What :func:`run` did: the parent run and every child run."""

    experiment: str
    parent_run_id: str
    runs: list[RunResult]

    def table(self) -> pd.DataFrame:
        """One row per child run: label, seed and every summary metric."""
        return pd.DataFrame([{"model": r.label, "seed": r.seed, "run_id": r.run_id,
                              **r.summary} for r in self.runs])


def config_hash(config: ExperimentConfig) -> str:
    """SHA-256 (first 12 hex digits) of the config's canonical JSON."""
    text = json.dumps(config.to_dict(), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def prepare(config: ExperimentConfig, *, progress: bool = True) -> Prepared:
    """Load, preprocess, build features and split, as the config says."""
    from recexp import datasets
    from recexp.features import build_features
    from recexp.preprocess import preprocess
    from recexp.split import make_splitter

    steps = _progress_steps(progress, 4)
    data = datasets.load(config.data.dataset, path=config.data.path,
                         on_bad_lines=config.data.on_bad_lines, **config.data.options)
    steps("loaded")
    reports: list[dict] = []
    for report in data.reports:
        if report.skipped:
            reports.append({"step": "read", "file": report.path, "skipped": report.skipped,
                            "examples": [f"line {b.line}: {b.reason}" for b in
                                         report.examples]})
    interactions = data.interactions
    if config.data.preprocess:
        interactions, step_reports = preprocess(interactions, list(config.data.preprocess))
        reports += [r.to_dict() for r in step_reports]
    steps("preprocessed")
    # The catalogue is what survived preprocessing: attribute rows of removed users/items
    # would otherwise come back as cold entities and change every metric's candidate set.
    users = _restrict(_renamed(data.users, Columns.User, config.data.preprocess),
                      interactions, Columns.User)
    items = _restrict(_renamed(data.items, Columns.Item, config.data.preprocess),
                      interactions, Columns.Item)
    spec = {"user": list(config.features.user), "item": list(config.features.item)}
    if spec["user"] or spec["item"]:
        tables = build_features(spec, users=users if spec["user"] else None,
                                items=items if spec["item"] else None,
                                interactions=interactions)
        dataset = tables.to_dataset(interactions,
                                    identity_features=config.features.identity,
                                    normalize_features=config.features.normalize)
        feature_summary = tables.summary()
    else:
        dataset = Dataset.from_frames(interactions, identity_features=True)
        feature_summary = {}
    steps("features")
    splitter = make_splitter(dict(config.split))
    if config.split.get("kind") == "predefined":
        split = splitter.split(dataset, source=data)
    else:
        split = splitter.split(dataset)
    if config.validation is not None:
        split = split.with_validation(make_splitter(dict(config.validation)))
    steps("split")
    source = f"{config.data.dataset}:{config.data.path or 'registry'}"
    return Prepared(dataset=dataset, split=split, source=source, reports=reports,
                    feature_summary=feature_summary,
                    user_table=users if spec["user"] else None)


def _renamed(table: pd.DataFrame | None, key: str, steps) -> pd.DataFrame | None:
    """The attribute table with ``key`` pseudonymised as the preprocessing steps did to the
    interactions, so its rows still meet theirs (and raw ids stay out of artifacts)."""
    from recexp.preprocess import pseudonymize_ids

    if table is None:
        return None
    for step in steps:
        if step.get("step") != "pseudonymize":
            continue
        params = {k: v for k, v in step.items() if k not in ("step", "columns")}
        columns = step.get("columns", (Columns.User,))
        if key in ([columns] if isinstance(columns, str) else list(columns)):
            table = table.assign(**{key: pseudonymize_ids(table[key].to_numpy(), **params)})
    return table


def _restrict(table: pd.DataFrame | None, interactions: pd.DataFrame, key: str):
    if table is None:
        return None
    return table[table[key].isin(interactions[key].unique())].reset_index(drop=True)


def _progress_steps(progress: bool, total: int) -> Callable[[str], None]:
    if not progress:
        return lambda _label: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc="prepare", unit="step", leave=False)

    def step(label: str) -> None:
        bar.set_postfix_str(label)
        bar.update(1)
        if bar.n >= total:
            bar.close()

    return step


def make_model(model_name: str, params: dict[str, Any], *, seed: int | None = None,
               threads: int | None = None,
               get_class: Callable[[str], type] = get_model_class) -> Recommender:
    """A model from its registry name and params; fills ``random_state`` and ``num_threads``
    from the experiment when the model has them and the params leave them out.

    ``get_class`` is the registry to look the name up in (click models:
    :func:`recexp.models.ctr.get_click_model`)."""
    cls = get_class(model_name)
    params = dict(params)
    if seed is not None and "random_state" in cls.param_names:
        params.setdefault("random_state", seed)
    if threads is not None and "num_threads" in cls.param_names:
        params.setdefault("num_threads", threads)
    return cls.from_params(params)


def _takes_callback(model: Recommender) -> bool:
    return "callback" in inspect.signature(model._fit).parameters


def _valid_split(split):
    """A split whose test part is the validation set, for per-epoch curves."""
    from recexp.split import Split

    return Split(split.train, split.valid, name=f"{split.name}:valid", seed=split.valid_seed,
                 check=False)


def _fit_one(model: Recommender, prepared: Prepared, config: ExperimentConfig,
             *, on_epoch: Callable[[int, dict[str, float]], None] | None = None,
             progress: bool = True) -> tuple[pd.DataFrame | None, float]:
    """Fit on train (train minus valid when there is one), with per-epoch validation."""
    split = prepared.split
    ev = config.evaluation
    rows: list[dict[str, float]] = []
    kwargs: dict[str, Any] = {}
    bar = None
    if _takes_callback(model):
        epochs = model.get_params().get("epochs")
        if progress and epochs:
            from tqdm.auto import tqdm

            bar = tqdm(total=epochs, desc=f"fit {model.name}", unit="epoch", leave=False)
        valid = _valid_split(split) if split.valid is not None else None

        def callback(epoch: int, fitted: Recommender) -> bool:
            if bar is not None:
                bar.update(1)
            if valid is None:
                return False
            summary = evaluate(fitted, valid, k=ev.k, metrics=("precision", "recall", "ndcg",
                                                                "map", "auc"),
                               batch_size=ev.batch_size, segments=False).summary
            summary = {k: v for k, v in summary.items() if k != "users"}
            rows.append({"epoch": epoch, **summary})
            if on_epoch is not None:
                on_epoch(epoch, summary)
            if bar is not None:
                bar.set_postfix({f"ndcg@{ev.k[0]}": f"{summary.get(f'ndcg@{ev.k[0]}', 0):.4f}"})
            return False

        kwargs["callback"] = callback
    start = time.perf_counter()
    try:
        model.fit(split.train, **kwargs)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    curve = pd.DataFrame(rows) if rows else None
    return curve, seconds


def run(config: ExperimentConfig, *, config_path: str | Path | None = None,
        progress: bool = True, log_models: bool = True) -> ExperimentResult:
    """Run every (model, seed) of ``config`` and track it all in MLflow.

    A ``task: ctr`` config goes to :func:`recexp.clicks.run_clicks` (click models on
    impressions); the same parent/child layout, with click metrics.

    Parameters
    ----------
    config : ExperimentConfig
    config_path : path, optional
        The YAML file, logged as an artifact as it was written.
    progress : bool
        Progress bars for loading, epochs and evaluation.
    log_models : bool
        Save each fitted model as an artifact.
    """
    if config.task == "ctr":
        from recexp.clicks import CLICKS as task
    else:
        task = RANKING
    return invoke(config, task, config_path=config_path, progress=progress,
                  log_models=log_models)


@dataclass(frozen=True)
class Task:
    """The steps that differ between tasks; :func:`invoke` runs them inside one parent run.

    ``prepare(config, *, progress)`` reads and splits the data (the result has a
    ``digest``, tagged on every run);
    ``log_prepared(prepared, config)`` logs it to the parent run;
    ``run_child(model_cfg, seed, prepared, config, parent_run_id, env_tags, *, progress,
    log_models)`` runs one (model, seed) child run and returns its :class:`RunResult`;
    ``overview(results, prepared, config)`` logs the parent's comparison artifacts.
    """

    prepare: Callable[..., Any]
    log_prepared: Callable[..., None]
    run_child: Callable[..., RunResult]
    overview: Callable[..., None]


def invoke(config: ExperimentConfig, task: Task, *, config_path: str | Path | None = None,
           progress: bool = True, log_models: bool = True) -> ExperimentResult:
    """The parent run every task shares: environment tags, the config, the data, one child
    run per (model, seed) in order, then the overview."""
    import mlflow

    tracking.configure()
    env = {**tracking.environment_tags(threads=config.threads,
                                       reproducible=config.threads == 1),
           "recexp.config_hash": config_hash(config)}
    parent_tags = {**env, "recexp.kind": "experiment", "recexp.task": config.task}
    if config.description:
        parent_tags["mlflow.note.content"] = config.description
    results: list[RunResult] = []
    with tracking.tracked_run(config.name, experiment=config.name,
                              tags=parent_tags) as parent:
        parent_id = parent.info.run_id
        mlflow.log_dict(config.to_dict(), "config.yaml")
        if config_path is not None:
            mlflow.log_artifact(str(config_path), "config")
        prepared = task.prepare(config, progress=progress)
        task.log_prepared(prepared, config)
        env["recexp.dataset_digest"] = prepared.digest  # the children get it too
        mlflow.set_tag("recexp.dataset_digest", prepared.digest)
        mlflow.log_params({"n_models": len(config.models), "n_seeds": len(config.seeds),
                           "task": config.task})
        total = len(config.models) * len(config.seeds)
        done = 0
        for model_cfg in config.models:
            for seed in config.seeds:
                done += 1
                if progress:
                    print(f"[{done}/{total}] {model_cfg.label} seed={seed}", flush=True)
                results.append(task.run_child(model_cfg, seed, prepared, config, parent_id,
                                              env, progress=progress, log_models=log_models))
        task.overview(results, prepared, config)
    return ExperimentResult(experiment=config.name, parent_run_id=parent_id, runs=results)


def _log_split_inputs(prepared: Prepared, config: ExperimentConfig) -> None:
    split = prepared.split
    tracking.log_dataset(split.train, name=f"{config.data.dataset}:train",
                         source=prepared.source, context="training")
    if split.valid is not None:
        tracking.log_dataset(split.valid, name=f"{config.data.dataset}:valid",
                             source=prepared.source, context="validation")
    tracking.log_dataset(split.test, name=f"{config.data.dataset}:test",
                         source=prepared.source, context="testing")


def _log_prepared(prepared: Prepared, config: ExperimentConfig) -> None:
    import mlflow

    split = prepared.split
    tracking.log_params(tracking.flatten({"data": {"dataset": config.data.dataset,
                                                   "on_bad_lines": config.data.on_bad_lines},
                                          "split": dict(config.split)}))
    tracking.log_dataset(prepared.dataset, name=config.data.dataset,
                         source=prepared.source, context="full")
    _log_split_inputs(prepared, config)
    mlflow.log_params({"split.seed_used": split.seed, "split.valid_seed_used": split.valid_seed})
    facts = prepared.dataset.describe()
    mlflow.log_metrics({f"data.{k}": float(v) for k, v in facts.items()
                        if isinstance(v, (int, float))})
    mlflow.log_dict({"preprocess": prepared.reports, "features": prepared.feature_summary,
                     "dataset": {k: v for k, v in facts.items() if k != "rating_histogram"},
                     "split": split.describe().reset_index().to_dict(orient="records")},
                    "data_report.json")
    steps = [r for r in prepared.reports if r.get("step") != "read"]
    for i, report in enumerate(steps):
        name = report.get("step", "step")
        for key in ("rows_removed", "users_removed", "items_removed"):
            if key in report:
                # the position keeps two steps of the same kind apart
                mlflow.log_metric(f"preprocess.{i}_{name}.{key}", float(report[key]))
    skipped = sum(r.get("skipped", 0) for r in prepared.reports if r.get("step") == "read")
    mlflow.log_metric("data.skipped_lines", float(skipped))


def _run_child(model_cfg, seed: int, prepared: Prepared, config: ExperimentConfig,
               parent_id: str, env: dict[str, str], *, progress: bool,
               log_models: bool) -> RunResult:
    import mlflow

    from recexp import plots

    label = model_cfg.label
    model = make_model(model_cfg.model, model_cfg.params, seed=seed, threads=config.threads)
    params = model.get_params()
    tags = child_tags(env, model_cfg, seed, params, task="ranking")
    with tracking.tracked_run(f"{label}-seed{seed}", experiment=config.name,
                              parent_run_id=parent_id, tags=tags) as child:
        tracking.log_params({**tracking.flatten({"model": params}), "model.name": model_cfg.model,
                             "seed": seed,
                             **tracking.flatten({"split": dict(config.split)}),
                             "split.seed_used": prepared.split.seed,
                             "data.dataset": config.data.dataset})
        _log_split_inputs(prepared, config)

        # Batched: a store write per epoch would cost as much as a short epoch.
        with tracking.StepMetrics(child.info.run_id) as steps:
            def on_epoch(epoch: int, values: dict[str, float]) -> None:
                steps.log({f"valid.{_metric_key(k)}": v for k, v in values.items()},
                          step=epoch)

            curve, seconds = _fit_one(model, prepared, config, on_epoch=on_epoch,
                                      progress=progress)
        mlflow.log_metric("fit_seconds", seconds)
        ev = config.evaluation
        start = time.perf_counter()
        result = evaluate(model, prepared.split, k=ev.k, metrics=ev.metrics,
                          batch_size=ev.batch_size, segments=ev.segments,
                          relevance_threshold=ev.relevance_threshold, progress=progress)
        mlflow.log_metric("evaluate_seconds", time.perf_counter() - start)
        mlflow.log_metrics({_metric_key(k): v for k, v in result.summary.items()
                            if np.isfinite(v)})
        with tempfile.TemporaryDirectory() as tmp:
            per_user = Path(tmp) / "per_user_metrics.parquet"
            table = result.per_user.copy()
            table[Columns.User] = table[Columns.User].astype(str)
            table.to_parquet(per_user, index=False)
            mlflow.log_artifact(str(per_user))
        if log_models:
            from recexp import serving

            try:
                # An MLflow pyfunc service (runs:/<run_id>/model): the model with its id maps,
                # feature vocabulary and popularity fallback, saved as JSON + npz (no pickle).
                serving.log_pyfunc(model, prepared, config=config, artifact_path="model")
                mlflow.set_tag("recexp.model_saved", "true")
            except NotImplementedError:
                mlflow.set_tag("recexp.model_saved", "false")
        if curve is not None:
            fig = plots.learning_curves({label: curve}, title=f"{label}: validation per epoch")
            mlflow.log_figure(fig, "plots/learning_curves.png")
            _close(fig)
        train = prepared.split.full_train
        popularity = np.bincount(train.item_idx, minlength=train.n_items)
        fig = plots.popularity_tail(popularity, {label: result.recommended.ravel()})
        mlflow.log_figure(fig, "plots/popularity_tail.png")
        _close(fig)
        return RunResult(label=label, seed=seed, run_id=child.info.run_id,
                         summary=result.summary, per_user=result.per_user, curve=curve,
                         fit_seconds=seconds)


def child_tags(env: dict[str, str], model_cfg, seed: int, params: dict[str, Any], *,
               task: str) -> dict[str, str]:
    """The tags of a (model, seed) child run: the parent's environment tags, the model, its
    label and seed, the task, and whether its thread count makes it bit-reproducible."""
    threads = params.get("num_threads", 1)
    return {**env, "recexp.model": model_cfg.model, "recexp.label": model_cfg.label,
            "recexp.seed": str(seed), "recexp.kind": "model", "recexp.task": task,
            "recexp.threads": str(threads),
            "recexp.bit_reproducible": str(threads == 1).lower()}


def _metric_key(name: str) -> str:
    """MLflow's name for a metric: ``ndcg@10`` -> ``ndcg_at_10`` (MLflow refuses ``@``)."""
    return name.replace("@", "_at_")


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def _log_overview(results: list[RunResult], prepared: Prepared,
                  config: ExperimentConfig) -> None:
    """Parent-run artifacts: the comparison table and bar charts with intervals."""
    import mlflow

    from recexp import plots
    from recexp.stats import RunTable, summarize_runs

    table = pd.DataFrame([{"model": r.label, "seed": r.seed, **r.summary} for r in results])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.csv"
        table.to_csv(path, index=False)
        mlflow.log_artifact(str(path))
    k = config.evaluation.k[min(1, len(config.evaluation.k) - 1)]
    for metric in (f"ndcg@{k}", f"recall@{k}", "auc"):
        if metric not in table:
            continue
        summary = summarize_runs([RunTable(r.label, r.seed, r.per_user) for r in results],
                                 metric=metric)
        fig = plots.metric_bars(summary, metric=metric)
        mlflow.log_figure(fig, f"plots/{metric.replace('@', '_at_')}.png")
        _close(fig)
        best = summary.sort_values("mean").iloc[-1]
        mlflow.log_metric(f"best.{_metric_key(metric)}", float(best["mean"]))
    yaml_text = yaml.safe_dump(config.to_dict(), sort_keys=False)
    mlflow.log_text(yaml_text, "config_resolved.yaml")


RANKING = Task(prepare=prepare, log_prepared=_log_prepared, run_child=_run_child,
               overview=_log_overview)
"""``task: ranking``: recommenders over a Dataset split, ranking metrics per user."""
