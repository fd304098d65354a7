"""What MLflow tracking costs: a 30-epoch LightFM run on ML-100K, tracked vs untracked.

Both arms fit the same model (same data, params, seed, one thread) and compute the same
validation metrics after every epoch; the tracked arm also logs them to MLflow (step =
epoch) inside a run, as ``recexp run`` does: queued to MLflow's async logging thread and
flushed before the fit counts as done. The arms alternate, repeated, and the medians are
compared. The one-time costs of a tracked run (creating the store, plots, the per-user
table, the model) are timed separately.

    RECEXP_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_tracking.py [--repeats 3]
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

    def fit(log: bool) -> float:
        model = LightFMRecommender(no_components=64, epochs=args.epochs, num_threads=1,
                                   random_state=0)

        def callback(epoch, fitted):
            values = evaluate(fitted, valid, k=(10,), metrics=("precision", "recall", "ndcg",
                                                                "map", "auc"),
                              segments=False).summary
            if log:
                mlflow.log_metrics({f"valid.{k.replace('@', '_at_')}": v
                                    for k, v in values.items()}, step=epoch,
                                   synchronous=False)
            return False

        start = time.perf_counter()
        model.fit(split.train, callback=callback)
        if log:
            mlflow.flush_async_logging()  # the run is only done when its metrics are stored
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

        untracked, tracked = [], []
        fit(False)  # warm caches and imports once
        for _ in range(args.repeats):
            untracked.append(fit(False))
            with tracking.tracked_run("tracked", experiment="bench"):
                tracked.append(fit(True))

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

    u, tr = statistics.median(untracked), statistics.median(tracked)
    print(f"30-epoch LightFM fit with per-epoch validation on ML-100K, {args.repeats} repeats")
    print(f"  untracked  median {u:7.2f} s   runs {[round(x, 2) for x in untracked]}")
    print(f"  tracked    median {tr:7.2f} s   runs {[round(x, 2) for x in tracked]}")
    print(f"  overhead of per-epoch logging: {100 * (tr / u - 1):+.1f}%  (target <= +5%)")
    print("one-time costs of a tracked run:")
    print(f"  store creation (new sqlite db + experiment)  {store_seconds:6.2f} s")
    for name, seconds in one_time.items():
        print(f"  {name:<44} {seconds:6.2f} s")


def _curve(epochs: int):
    import pandas as pd

    return pd.DataFrame({"epoch": range(1, epochs + 1), "ndcg@10": [0.1] * epochs})


if __name__ == "__main__":
    main()
