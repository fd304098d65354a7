"""Click-prediction experiments (``task: ctr``): impressions in, click probabilities out.

A config with ``task: ctr`` names a dataset of impressions (``criteo-sample``,
``criteo-dac``), a split of its rows, and click models (:mod:`recexp.models.ctr`).
:func:`recexp.experiment.run` hands it to :func:`run_clicks`, which tracks it like a ranking
experiment: one MLflow parent run per invocation, a child run per (model, seed) with its
params, environment tags, the data digest as an MLflow input, per-epoch validation metrics
for iterative models (LightFM), the test metrics, the per-impression table, the calibration
table and plot, and the fitted model's files.

Splits of the impressions (``split:``, and ``validation:`` carved out of train):

``{kind: ordered, ratio: 0.2}``
    The last ``ratio`` of the rows, in file order, is the test set. Criteo's files are
    chronological, so this is "train on the past, predict the future".
``{kind: random, ratio: 0.2, seed: 42, stratify: true}``
    A seeded random ``ratio`` of the rows (scikit-learn's ``train_test_split``), stratified by
    the click label by default so that both sides keep the overall click rate.

Metrics (:func:`recexp.metrics.click_metrics`): ``roc_auc``, ``log_loss``, ``ctr`` (observed
click rate) and ``mean_prediction``, over the test impressions. The per-impression table
(``per_impression_metrics.parquet``) holds each test row's label, probability, log loss and
squared error, so ``recexp compare --metric log_loss`` pairs two models impression by
impression (paired t and Wilcoxon tests, Holm-corrected).
"""

from __future__ import annotations

import hashlib
import inspect
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recexp import tracking
from recexp.config import ExperimentConfig
from recexp.experiment import (
    ExperimentResult,
    RunResult,
    Task,
    child_tags,
    invoke,
    make_model,
)
from recexp.metrics import calibration, click_metrics
from recexp.models.ctr import ClickModel, Impressions, get_click_model

__all__ = ["CLICKS", "CLICK_METRICS", "PreparedClicks", "check_row_split", "per_impression",
           "prepare_clicks", "run_clicks", "split_rows"]

CLICK_METRICS = ("roc_auc", "log_loss", "ctr", "mean_prediction")
"""What every click-model run reports (see :func:`recexp.metrics.click_metrics`)."""

TABLE = "per_impression_metrics.parquet"
"""The per-impression artifact of a click-model run (the ``per_user_metrics.parquet`` of a
ranking run)."""

_ROW_SPLITS = {"ordered": ("ratio",), "random": ("ratio", "seed", "stratify")}


def check_row_split(spec: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the key if ``spec`` is not a valid impressions split."""
    import difflib

    kind = spec.get("kind")
    if kind not in _ROW_SPLITS:
        near = difflib.get_close_matches(str(kind), _ROW_SPLITS, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"kind: {kind!r} is not a split of impressions{hint} (valid: "
                         f"{', '.join(_ROW_SPLITS)})")
    allowed = ("kind", *_ROW_SPLITS[kind])
    for key in spec:
        if key not in allowed:
            near = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"{key}: unknown key for kind {kind!r}{hint} (valid: "
                             f"{', '.join(allowed)})")
    ratio = spec.get("ratio", 0.2)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < 1:
        raise ValueError(f"ratio: must be a number strictly between 0 and 1, got {ratio!r}")
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed: must be an integer, got {seed!r}")
    if not isinstance(spec.get("stratify", True), bool):
        raise ValueError(f"stratify: must be true or false, got {spec['stratify']!r}")


def split_rows(labels: np.ndarray, spec: Mapping[str, Any], *, what: str = "split"
               ) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(kept, held_out)`` of a split of ``len(labels)`` impressions.

    Both are sorted (file order). Raises ``ValueError`` when a side would be empty, or when
    the kept side would lack clicks or non-clicks (no click model can learn from it).
    """
    check_row_split(spec)
    labels = np.asarray(labels)
    n = len(labels)
    ratio = float(spec.get("ratio", 0.2))
    held = int(round(n * ratio))
    if held < 1 or held >= n:
        raise ValueError(f"{what}: ratio {ratio} of {n} impressions leaves a side empty")
    rows = np.arange(n)
    if spec["kind"] == "ordered":
        kept, out = rows[: n - held], rows[n - held:]
    else:
        from sklearn.model_selection import train_test_split

        stratify = labels if spec.get("stratify", True) else None
        try:
            kept, out = train_test_split(rows, test_size=held, random_state=spec.get("seed", 0),
                                         stratify=stratify)
        except ValueError as exc:  # too few rows of one label to stratify
            raise ValueError(f"{what}: cannot stratify {n} impressions by label: {exc}") \
                from None
        kept, out = np.sort(kept), np.sort(out)
    if len(np.unique(labels[kept])) < 2:
        raise ValueError(f"{what}: the {len(kept)} kept impressions are all "
                         f"{'clicks' if labels[kept][0] == 1 else 'non-clicks'}; a click "
                         "model needs both")
    return kept, out


@dataclass(frozen=True)
class PreparedClicks:
    """The impressions of a ``task: ctr`` experiment and their split (row positions).

    ``train`` excludes ``valid`` when there is one; ``full_train`` is both.
    """

    impressions: Impressions
    train: np.ndarray
    test: np.ndarray
    valid: np.ndarray | None
    source: str
    digest: str
    reports: list[dict] = field(default_factory=list)

    @property
    def full_train(self) -> np.ndarray:
        if self.valid is None:
            return self.train
        return np.sort(np.concatenate([self.train, self.valid]))

    def describe(self) -> dict[str, float]:
        """Row counts and click rates of every part."""
        labels = self.impressions.labels
        out: dict[str, float] = {"impressions": float(len(labels)),
                                 "features": float(self.impressions.features.shape[1]),
                                 "ctr": float(labels.mean())}
        parts = {"train": self.train, "valid": self.valid, "test": self.test}
        for name, rows in parts.items():
            if rows is not None:
                out[f"{name}_impressions"] = float(len(rows))
                out[f"{name}_ctr"] = float(labels[rows].mean())
        return out


def _digest(rows: Impressions) -> str:
    """SHA-256 (first 16 hex digits) of the labels, the feature matrix and the keys."""
    h = hashlib.sha256()
    m = rows.features
    for arr in (rows.labels, m.indptr, m.indices, m.data):
        h.update(np.ascontiguousarray(arr).view(np.uint8).tobytes())
    for keys in (rows.users, rows.items):
        if keys is not None:
            h.update(pd.util.hash_array(np.asarray(keys, dtype=object)).tobytes())
    return h.hexdigest()[:16]


def prepare_clicks(config: ExperimentConfig, *, progress: bool = True) -> PreparedClicks:
    """Load the impressions and split them as the config says (``progress`` is accepted for
    symmetry with :func:`recexp.experiment.prepare`; the loader shows its own bars)."""
    from recexp import datasets

    data = datasets.load(config.data.dataset, path=config.data.path,
                         on_bad_lines=config.data.on_bad_lines, **config.data.options)
    if getattr(data, "row_features", None) is None:
        raise ValueError(f"{config.data.dataset}: loaded without hashed row features; do not "
                         "set data.options.n_hash to null for task 'ctr'")
    reports = [{"step": "read", "file": r.path, "skipped": r.skipped,
                "examples": [f"line {b.line}: {b.reason}" for b in r.examples]}
               for r in data.reports if r.skipped]
    rows = Impressions.from_criteo(data)
    train, test = split_rows(rows.labels, config.split, what="split")
    valid = None
    if config.validation is not None:
        keep, held = split_rows(rows.labels[train], config.validation, what="validation")
        train, valid = train[keep], train[held]
    source = f"{config.data.dataset}:{config.data.path or 'registry'}"
    return PreparedClicks(impressions=rows, train=train, test=test, valid=valid,
                          source=source, digest=_digest(rows), reports=reports)


def per_impression(positions: np.ndarray, labels: np.ndarray, probabilities: np.ndarray
                   ) -> pd.DataFrame:
    """One row per impression: ``impression`` (row position in the loaded data), ``label``,
    ``probability``, ``log_loss`` (``-log p`` of the observed outcome, p clipped to
    ``[1e-7, 1 - 1e-7]``; its mean is the run's ``log_loss``) and ``squared_error``
    (``(p - label)^2``; its mean is the Brier score)."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    return pd.DataFrame({"impression": np.asarray(positions, dtype=np.int64),
                         "label": y.astype(np.int8), "probability": p,
                         "log_loss": -(y * np.log(p) + (1 - y) * np.log1p(-p)),
                         "squared_error": (p - y) ** 2})


def _fit(model: ClickModel, train: Impressions, valid: Impressions | None, *,
         on_epoch: Callable[[int, dict[str, float]], None], progress: bool, label: str
         ) -> tuple[pd.DataFrame | None, float]:
    rows: list[dict[str, float]] = []
    kwargs: dict[str, Any] = {}
    bar = None
    if "callback" in inspect.signature(model.fit).parameters:
        epochs = model.get_params().get("epochs")
        if progress and epochs:
            from tqdm.auto import tqdm

            bar = tqdm(total=epochs, desc=f"fit {label}", unit="epoch", leave=False)

        def callback(epoch: int, fitted: ClickModel) -> bool:
            if bar is not None:
                bar.update(1)
            if valid is not None:
                values = click_metrics(valid.labels, fitted.predict_proba(valid))
                values = {k: values[k] for k in ("roc_auc", "log_loss")}
                rows.append({"epoch": epoch, **values})
                on_epoch(epoch, values)
                if bar is not None:
                    bar.set_postfix({"log_loss": f"{values['log_loss']:.4f}"})
            return False

        kwargs["callback"] = callback
    start = time.perf_counter()
    try:
        model.fit(train, **kwargs)
    finally:
        if bar is not None:
            bar.close()
    return (pd.DataFrame(rows) if rows else None), time.perf_counter() - start


def run_clicks(config: ExperimentConfig, *, config_path: str | Path | None = None,
               progress: bool = True, log_models: bool = True) -> ExperimentResult:
    """Run every (click model, seed) of a ``task: ctr`` config, tracked in MLflow.

    What :func:`recexp.experiment.run` does for such a config; returns its
    :class:`~recexp.experiment.ExperimentResult` (``per_user`` of each run is the
    per-impression table).
    """
    return invoke(config, CLICKS, config_path=config_path, progress=progress,
                  log_models=log_models)


def _log_inputs(prepared: PreparedClicks, config: ExperimentConfig) -> None:
    parts = [("full", None), ("training", prepared.train), ("validation", prepared.valid),
             ("testing", prepared.test)]
    for context, rows in parts:
        if context != "full" and rows is None:
            continue
        digest = prepared.digest if rows is None else hashlib.sha256(
            prepared.digest.encode() + np.asarray(rows, np.int64).tobytes()).hexdigest()[:16]
        name = config.data.dataset if rows is None else f"{config.data.dataset}:{context}"
        tracking.log_dataset(None, name=name, source=prepared.source, context=context,
                             digest=digest)


def _log_prepared(prepared: PreparedClicks, config: ExperimentConfig) -> None:
    import mlflow

    tracking.log_params(tracking.flatten({"data": {"dataset": config.data.dataset,
                                                   "on_bad_lines": config.data.on_bad_lines,
                                                   **{f"options.{k}": v for k, v in
                                                      config.data.options.items()}},
                                          "split": dict(config.split)}))
    _log_inputs(prepared, config)
    facts = prepared.describe()
    mlflow.log_metrics({f"data.{k}": v for k, v in facts.items()})
    skipped = sum(r["skipped"] for r in prepared.reports)
    mlflow.log_metric("data.skipped_lines", float(skipped))
    mlflow.log_dict({"read": prepared.reports, "data": facts,
                     "digest": prepared.digest}, "data_report.json")


def _run_child(model_cfg, seed: int, prepared: PreparedClicks, config: ExperimentConfig,
               parent_id: str, env: dict[str, str], *, progress: bool,
               log_models: bool) -> RunResult:
    import mlflow

    from recexp import plots

    label = model_cfg.label
    model = make_model(model_cfg.model, model_cfg.params, seed=seed, threads=config.threads,
                       get_class=get_click_model)
    params = model.get_params()
    tags = child_tags(env, model_cfg, seed, params, task="ctr")
    rows = prepared.impressions
    train = rows.take(prepared.train)
    valid = rows.take(prepared.valid) if prepared.valid is not None else None
    test = rows.take(prepared.test)
    with tracking.tracked_run(f"{label}-seed{seed}", experiment=config.name,
                              parent_run_id=parent_id, tags=tags) as child:
        tracking.log_params({**tracking.flatten({"model": params}),
                             "model.name": model_cfg.model, "seed": seed,
                             **tracking.flatten({"split": dict(config.split)}),
                             "data.dataset": config.data.dataset})
        _log_inputs(prepared, config)
        with tracking.StepMetrics(child.info.run_id) as steps:
            def on_epoch(epoch: int, values: dict[str, float]) -> None:
                steps.log({f"valid.{k}": v for k, v in values.items()}, step=epoch)

            curve, seconds = _fit(model, train, valid, on_epoch=on_epoch, progress=progress,
                                  label=label)
        mlflow.log_metric("fit_seconds", seconds)
        start = time.perf_counter()
        probabilities = model.predict_proba(test)
        summary = click_metrics(test.labels, probabilities)
        table = per_impression(prepared.test, test.labels, probabilities)
        summary["brier"] = float(table["squared_error"].mean())
        buckets = calibration(test.labels, probabilities, bins=config.evaluation.calibration_bins)
        mlflow.log_metric("evaluate_seconds", time.perf_counter() - start)
        mlflow.log_metrics({k: v for k, v in summary.items() if np.isfinite(v)})
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / TABLE
            table.to_parquet(path, index=False)
            mlflow.log_artifact(str(path))
            path = Path(tmp) / "calibration.csv"
            buckets.to_csv(path, index=False)
            mlflow.log_artifact(str(path))
            saved = "false"
            if log_models and hasattr(model, "save"):
                # JSON + npz files (no pickle), loadable with ClickModel.load
                folder = model.save(Path(tmp) / "model")
                mlflow.log_artifacts(str(folder), "model")
                saved = "true"
            mlflow.set_tag("recexp.model_saved", saved)
        fig = plots.calibration({label: buckets}, title=f"{label}: calibration on test")
        mlflow.log_figure(fig, "plots/calibration.png")
        plots.close(fig)
        if curve is not None:
            fig = plots.learning_curves({label: curve}, title=f"{label}: validation per epoch")
            mlflow.log_figure(fig, "plots/learning_curves.png")
            plots.close(fig)
        return RunResult(label=label, seed=seed, run_id=child.info.run_id, summary=summary,
                         per_user=table, curve=curve, fit_seconds=seconds)


def _log_overview(results, prepared: PreparedClicks, config: ExperimentConfig) -> None:
    """Parent-run artifacts: every run's metrics, and bars with intervals per model."""
    import mlflow

    from recexp import plots
    from recexp.stats import RunTable, summarize_runs

    table = pd.DataFrame([{"model": r.label, "seed": r.seed, **r.summary} for r in results])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.csv"
        table.to_csv(path, index=False)
        mlflow.log_artifact(str(path))
    runs = [RunTable(r.label, r.seed, r.per_user) for r in results]
    for metric in ("log_loss", "squared_error"):
        summary = summarize_runs(runs, metric=metric)
        fig = plots.metric_bars(summary, metric=metric)
        mlflow.log_figure(fig, f"plots/{metric}.png")
        plots.close(fig)
    best = table.groupby("model")["log_loss"].mean()
    mlflow.log_metric("best.log_loss", float(best.min()))
    if table["roc_auc"].notna().any():
        mlflow.log_metric("best.roc_auc", float(table.groupby("model")["roc_auc"].mean().max()))


CLICKS = Task(prepare=prepare_clicks, log_prepared=_log_prepared, run_child=_run_child,
              overview=_log_overview)
"""``task: ctr``: click models over a row split of impressions, click metrics."""
