"""MLflow tracking: where runs are stored, how a run starts and ends, what every run carries.

Store: ``MLFLOW_TRACKING_URI`` when set (a tracking server); otherwise MLflow's own default
layout at the project root, ``sqlite:///<root>/mlflow.db`` with artifacts in ``<root>/mlruns``,
so a plain ``mlflow ui`` started at the root shows every run. The root is ``$RECEXP_HOME``, else
the nearest folder above the working directory that holds ``pyproject.toml`` and ``mlruns/``
(so notebooks in ``notebooks/`` and the CLI at the root agree), else the working directory.

Nothing here runs at import time: :func:`configure` is called by whoever starts a run.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "StepMetrics",
    "configure",
    "environment_tags",
    "experiment_id",
    "flatten",
    "log_dataset",
    "project_root",
    "tracked_run",
    "tracking_uri",
]

_VERSIONED = ("recexp", "rectools-lightfm", "numpy", "scipy", "pandas", "scikit-learn",
              "implicit", "mlflow", "optuna")


def project_root() -> Path:
    """The folder whose ``mlflow.db`` and ``mlruns/`` hold this project's runs."""
    if home := os.environ.get("RECEXP_HOME"):
        return Path(home).expanduser().resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "mlruns").is_dir():
            return folder
    return here


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<project root>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"


def configure() -> str:
    """Point MLflow at the project's store; returns the tracking URI."""
    import mlflow

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri


def experiment_id(name: str) -> str:
    """Id of experiment ``name``, created when missing (artifacts under ``<root>/mlruns``)."""
    import mlflow

    configure()
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if tracking_uri().startswith("sqlite:"):
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        location = (project_root() / "mlruns" / slug).as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except mlflow.exceptions.MlflowException:
        # Another process created it between our look-up and our create.
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _git(*args: str) -> str | None:
    # The code that ran is what matters: ask the checkout recexp was imported from.
    source = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", *args], cwd=source, capture_output=True,
                             text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def environment_tags(*, threads: int | None = None, reproducible: bool | None = None
                     ) -> dict[str, str]:
    """Tags every run carries: git commit and dirty flag, library versions, threads.

    ``reproducible`` says whether the run's results are bit-for-bit repeatable (LightFM is
    only with one thread).
    """
    tags: dict[str, str] = {"recexp.python": platform.python_version(),
                            "recexp.platform": platform.platform()}
    commit = _git("rev-parse", "HEAD")
    if commit:
        tags["recexp.git_commit"] = commit
        status = _git("status", "--porcelain", "--untracked-files=no")
        tags["recexp.git_dirty"] = str(bool(status)).lower()
    for dist in _VERSIONED:
        try:
            tags[f"recexp.version.{dist}"] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    if threads is not None:
        tags["recexp.threads"] = str(threads)
    if reproducible is not None:
        tags["recexp.bit_reproducible"] = str(reproducible).lower()
    return tags


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model": {"no_components": 32}}`` -> ``{"model.no_components": 32}``.

    Lists of scalars stay values (JSON text when logged); lists of mappings are indexed.
    """
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            for i, item in enumerate(value):
                flat.update(flatten(item, f"{name}.{i}."))
        else:
            flat[name] = value
    return flat


def _param_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value)


def log_params(params: Mapping[str, Any]) -> None:
    """Log a flat params dict (values as JSON text, strings as they are)."""
    import mlflow

    items = {k: _param_value(v) for k, v in params.items()}
    keys = list(items)
    for start in range(0, len(keys), 100):  # MLflow caps one batch at 100 params
        mlflow.log_params({k: items[k] for k in keys[start:start + 100]})


def log_dataset(dataset: Any, *, name: str, source: str, context: str,
                digest: str | None = None) -> None:
    """Record a :class:`~recexp.dataset.Dataset` as an MLflow input: name, digest, source.

    ``digest`` stands in for ``dataset.digest()`` for data that is not a Dataset
    (impressions); ``dataset`` may then be None.
    """
    import mlflow
    from mlflow.data.http_dataset_source import HTTPDatasetSource
    from mlflow.data.meta_dataset import MetaDataset

    meta = MetaDataset(HTTPDatasetSource(url=source), name=name,
                       digest=digest if digest is not None else dataset.digest())
    mlflow.log_input(meta, context=context)


class StepMetrics:
    """Per-step metrics of one run (validation after every epoch), written in batches.

    A store write costs milliseconds (about 8 ms per ``log_metrics`` call on the local
    sqlite store), as much as a short epoch; and MLflow's async queue costs about a second to
    flush at the end of every fit. So values are kept with the time they were measured and
    written with one ``log_batch`` at most every ``interval`` seconds (the MLflow UI still
    shows a live curve on long fits), and what is left by :meth:`flush`. Step, value and
    timestamp are exactly what a ``log_metric`` per step would have stored.

    >>> with StepMetrics(run_id) as log:                       # doctest: +SKIP
    ...     for epoch in range(1, 31):
    ...         log.log({"valid.ndcg_at_10": 0.31}, step=epoch)
    """

    _MAX_BATCH = 1000  # MLflow's limit of metrics per log_batch call

    def __init__(self, run_id: str | None = None, *, interval: float = 5.0) -> None:
        import mlflow

        if run_id is None:
            active = mlflow.active_run()
            if active is None:
                raise RuntimeError("StepMetrics needs a run_id or an active MLflow run")
            run_id = active.info.run_id
        self.run_id = run_id
        self.interval = interval
        self._pending: list[Any] = []
        self._last_write = time.monotonic()

    def log(self, values: Mapping[str, float], *, step: int) -> None:
        """Record ``values`` at ``step`` now; written when ``interval`` has passed."""
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self._pending.extend(Metric(key, float(value), stamp, int(step))
                             for key, value in values.items())
        if time.monotonic() - self._last_write >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Write every value recorded so far."""
        from mlflow.tracking import MlflowClient

        pending, self._pending = self._pending, []
        self._last_write = time.monotonic()
        if not pending:
            return
        client = MlflowClient()
        for start in range(0, len(pending), self._MAX_BATCH):
            client.log_batch(self.run_id, metrics=pending[start:start + self._MAX_BATCH])

    def __enter__(self) -> StepMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        # Also on failure or Ctrl-C: the curve up to the last epoch is the useful part.
        self.flush()


@contextlib.contextmanager
def tracked_run(run_name: str, *, experiment: str, parent_run_id: str | None = None,
                tags: Mapping[str, str] | None = None) -> Iterator[Any]:
    """Start an MLflow run that always ends: FINISHED, FAILED or KILLED, never RUNNING.

    An exception marks the run FAILED and stores the traceback as ``error.txt``; Ctrl-C
    (KeyboardInterrupt) or SIGTERM marks it KILLED. The exception is re-raised.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    exp_id = experiment_id(experiment)
    all_tags = dict(tags or {})
    if parent_run_id is not None:
        all_tags["mlflow.parentRunId"] = parent_run_id
    client = MlflowClient()
    run = client.create_run(exp_id, run_name=run_name, tags=all_tags)
    run_id = run.info.run_id
    status = "FINISHED"
    with _sigterm_as_interrupt():
        try:
            with mlflow.start_run(run_id=run_id, nested=True, log_system_metrics=False):
                try:
                    yield mlflow.active_run()
                except KeyboardInterrupt:
                    status = "KILLED"
                    raise
                except BaseException as exc:
                    status = "FAILED"
                    text = "".join(traceback.format_exception(exc))
                    with contextlib.suppress(Exception):
                        mlflow.log_text(text, "error.txt")
                        mlflow.set_tag("recexp.error", f"{type(exc).__name__}: {exc}"[:5000])
                    raise
        finally:
            with contextlib.suppress(Exception):
                client.set_terminated(run_id, status=status)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interrupt so runs end KILLED."""


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
