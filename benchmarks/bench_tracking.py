"""What MLflow tracking costs: a 30-epoch LightFM run on ML-100K, tracked vs untracked.

Every arm fits the same model (same data, params, seed, one thread) and computes the same
validation metrics after every epoch; the tracked arms also log them to MLflow (step =
epoch) inside a run:

- ``tracked``: as ``recexp run`` does, through :class:`recexp.tracking.StepMetrics` (values
  kept with their timestamps, one ``log_batch`` at most every 5 s and at the end of the fit,
  which counts as done only once they are stored);
- ``per-epoch sync`` (``--all-arms``): one ``mlflow.log_metrics`` call per epoch;
- ``per-epoch async`` (``--all-arms``): ``log_metrics(synchronous=False)`` per epoch and
  ``mlflow.flush_async_logging()`` after the fit.

The arms alternate, repeated, and the medians are compared. The one-time costs of a tracked
run (creating the store, plots, the per-user table, the model) are timed separately.

    RECEXP_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_tracking.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--all-arms", action="store_true",
                        help="also time a log_metrics call per epoch, sync and async")
    args = parser.parse_args()

    import mlflow

    from recexp import plots, tracking
    from recexp.datasets import load
    from recexp.experiment import _valid_split
    from recexp.metrics import evaluate
    from recexp.models.lightfm import LightFMRecommender
    from recexp.preprocess import preprocess
    from recexp.split import make_splitter

    data = load("movielens-100k", download=False)
    table, _ = preprocess(data.interactions, [{"step": "to_implicit", "threshold": 4}])
    from recexp.dataset import Dataset

    ds = Dataset.from_frames(table)
    split = make_splitter({"kind": "user_ratio", "ratio": 0.2, "seed": 42}).split(ds)
    split = split.with_validation(make_splitter({"kind": "user_ratio", "ratio": 0.1,
                                                 "seed": 7}))
    valid = _valid_split(split)

    def fit(arm: str) -> float:
        model = LightFMRecommender(no_components=64, epochs=args.epochs, num_threads=1,
                                   random_state=0)
        steps = tracking.StepMetrics() if arm == "tracked" else None

        def callback(epoch, fitted):
            values = evaluate(fitted, valid, k=(10,), metrics=("precision", "recall", "ndcg",
                                                                "map", "auc"),
                              segments=False).summary
            named = {f"valid.{k.replace('@', '_at_')}": v for k, v in values.items()}
            if steps is not None:
                steps.log(named, step=epoch)
            elif arm == "per-epoch sync":
                mlflow.log_metrics(named, step=epoch)
            elif arm == "per-epoch async":
                mlflow.log_metrics(named, step=epoch, synchronous=False)
            return False

        start = time.perf_counter()
        model.fit(split.train, callback=callback)
        # the run is only done when its metrics are stored
        if steps is not None:
            steps.flush()
        elif arm == "per-epoch async":
            mlflow.flush_async_logging()
        return time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "mlruns").mkdir()
        os.environ["RECEXP_HOME"] = str(root)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        start = time.perf_counter()
        tracking.configure()
        tracking.experiment_id("bench")
        store_seconds = time.perf_counter() - start

        arms = ["untracked", "tracked"]
        if args.all_arms:
            arms += ["per-epoch sync", "per-epoch async"]
        times: dict[str, list[float]] = {arm: [] for arm in arms}
        fit("untracked")  # warm caches and imports once
        for _ in range(args.repeats):
            for arm in arms:
                if arm == "untracked":
                    times[arm].append(fit(arm))
                    continue
                with tracking.tracked_run(arm, experiment="bench"):
                    times[arm].append(fit(arm))

        # one-time costs of a tracked run, measured in one more run
        model = LightFMRecommender(no_components=64, epochs=args.epochs, num_threads=1,
                                   random_state=0).fit(split.train)
        result = evaluate(model, split, k=(5, 10, 20))
        one_time = {}
        with tracking.tracked_run("one-time", experiment="bench"):
            t = time.perf_counter()
            fig = plots.learning_curves({"m": _curve(args.epochs)})
            mlflow.log_figure(fig, "plots/learning_curves.png")
            train = split.full_train
            import numpy as np

            fig2 = plots.popularity_tail(np.bincount(train.item_idx, minlength=train.n_items),
                                         {"m": result.recommended.ravel()})
            mlflow.log_figure(fig2, "plots/popularity_tail.png")
            one_time["plots"] = time.perf_counter() - t
            t = time.perf_counter()
            path = root / "per_user.parquet"
            frame = result.per_user.copy()
            frame["user_id"] = frame["user_id"].astype(str)
            frame.to_parquet(path, index=False)
            mlflow.log_artifact(str(path))
            one_time["per-user table"] = time.perf_counter() - t
            t = time.perf_counter()
            folder = model.save(root / "model")
            mlflow.log_artifacts(str(folder), "model")
            one_time["model"] = time.perf_counter() - t

    print(f"{args.epochs}-epoch LightFM fit with per-epoch validation on ML-100K, "
          f"{args.repeats} repeats, arms interleaved")
    base = statistics.median(times["untracked"])
    for arm, runs in times.items():
        median = statistics.median(runs)
        extra = "" if arm == "untracked" else f"   {100 * (median / base - 1):+6.1f}%"
        print(f"  {arm:<16} median {median:6.2f} s{extra}   runs {[round(x, 2) for x in runs]}")
    overhead = 100 * (statistics.median(times["tracked"]) / base - 1)
    print(f"  overhead of per-epoch logging as recexp run does it: {overhead:+.1f}%  "
          f"(target <= +5%)")
    print("one-time costs of a tracked run:")
    print(f"  store creation (new sqlite db + experiment)  {store_seconds:6.2f} s")
    for name, seconds in one_time.items():
        print(f"  {name:<44} {seconds:6.2f} s")


def _curve(epochs: int):
    import pandas as pd

    return pd.DataFrame({"epoch": range(1, epochs + 1), "ndcg@10": [0.1] * epochs})


if __name__ == "__main__":
    main()
