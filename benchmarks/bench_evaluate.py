"""recexp's ``evaluate`` against ``lightfm.evaluation`` on the same LightFM model.

Both compute precision@10, recall@10 and ROC AUC of every test user over the full catalogue
with the user's training items excluded:

- recexp: one ``evaluate(model, split, k=10, metrics=("precision", "recall", "auc"))`` call
  (scores from the cached representations, one matrix product per batch of users, exact
  positions of the relevant items);
- LightFM: ``precision_at_k`` + ``recall_at_k`` + ``auc_score`` with ``train_interactions``
  (what a LightFM user runs to get the three numbers; each call runs ``predict_rank``), with
  ``num_threads=1`` and ``num_threads=2``.

The numbers must be identical: the script asserts every mean, and every per-user value, to
1e-6 (LightFM's AUC is float32). Both count ties differently (LightFM puts an item tied with
a relevant one above it, recexp breaks ties by the lower index), so the models here have no
tied scores, and no cold items (a cold item's representation is zeroed by recexp, not by
LightFM).

Cases:

- **ML-100K**: a random 80/20 split of the 100,000 ratings (test interactions of items that
  would have no training interaction stay in train), LightFM WARP, 32 components, 10 epochs,
  one thread; every test user is evaluated by both.
- **synthetic**: 100,000 users x 10,000 items, ~20 training and 10 test items per user
  drawn from the model's own preferences (the top 30 of 300 random items by score plus
  Gumbel noise of scale 1/4), so the metrics are not those of a random model. The LightFM
  arrays are set directly: embeddings in multiples of 1/8 (|e| <= 1/2, 32 components),
  user biases in multiples of 1/8, item biases distinct multiples of 2^-20 below 1/64.
  Every product and partial sum is then exact in float32 whatever the summation order, so
  BLAS and LightFM's own loop give bit-identical scores, and no two items of a user tie
  (the script checks both on a few users). recexp evaluates all 100,000 users; LightFM is
  timed on a random sample of ``--lightfm-users`` users (0: all) and extrapolated linearly
  (its cost is per user), and recexp is timed on the same sample too, side by side, for
  the identity check and the like-for-like ratio.
- **recexp, BLAS 1 thread**: the same recexp call with BLAS limited to one thread
  (threadpoolctl).
  OpenBLAS's second thread spins for a while after each product of the scoring, and that
  spinning counts in the process's CPU time; this arm is the like-for-like CPU figure
  against LightFM's one thread.
- **before** (with ``--before FILE``): ``evaluate`` of another ``recexp/metrics.py``, e.g.
  ``git show 9208138:recexp/metrics.py > /tmp/metrics_before.py``, loaded from FILE and run
  on the same model and split, to show what a change bought (its numbers must be the same).

Memory: peak bytes allocated during ``evaluate`` (tracemalloc, which numpy reports to) and
the peak rise of RSS (psutil, sampled every millisecond) for several batch sizes, on all
synthetic users.

Timings are medians of ``--repeats`` interleaved runs; wall and CPU seconds both (the machine
is shared: wall time moves with other jobs' load, CPU time less so). Each timed run starts
0.3 s after the previous one, so OpenBLAS threads still spinning from it are not billed to it.

Run from the project root::

    git show 9208138:recexp/metrics.py > /tmp/metrics_before.py   # optional "before" arm
    RECEXP_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_evaluate.py \
        --before /tmp/metrics_before.py
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import platform
import statistics
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import pandas as pd
import psutil
from lightfm import LightFM
from lightfm import __version__ as lightfm_version
from lightfm.evaluation import auc_score, precision_at_k, recall_at_k
from threadpoolctl import ThreadpoolController

from recexp.columns import Columns
from recexp.dataset import Dataset
from recexp.datasets import load
from recexp.metrics import evaluate
from recexp.models.lightfm import LightFMRecommender
from recexp.split import Split

K = 10
METRICS = ("precision", "recall", "auc")
NAMES = (f"precision@{K}", f"recall@{K}", "auc")
TOLERANCE = 1e-6


# ------------------------------------------------------------------------------ the cases
def warm_split(data: Dataset, ratio: float, seed: int) -> Split:
    """Random ``ratio`` of the interactions to test, except those of items train would lack."""
    test = np.random.default_rng(seed).random(data.n_interactions) < ratio
    warm = np.bincount(data.item_idx[~test], minlength=data.n_items) > 0
    test &= warm[data.item_idx]
    return Split(data.subset(~test), data.subset(test), check=False)


def movielens(seed: int) -> tuple[LightFMRecommender, Split]:
    data = load("movielens-100k", download=False).to_dataset()
    split = warm_split(data, 0.2, seed)
    model = LightFMRecommender(no_components=32, loss="warp", epochs=10, num_threads=1,
                               random_state=seed, use_features="none").fit(split.train)
    return model, split


def synthetic(n_users: int, n_items: int, seed: int, *, d: int = 32, pool: int = 300,
              n_train: int = 20, n_test: int = 10) -> tuple[LightFMRecommender, Split]:
    rng = np.random.default_rng(seed)
    user_emb = (rng.integers(-4, 5, (n_users, d)) / 8).astype(np.float32)
    item_emb = (rng.integers(-4, 5, (n_items, d)) / 8).astype(np.float32)
    user_bias = (rng.integers(-8, 9, n_users) / 8).astype(np.float32)
    item_bias = (rng.permutation(n_items) * 2.0**-20).astype(np.float32)  # < 1/64, distinct
    # Each user's pool: distinct random items (a random walk of steps < n_items / pool).
    per_user = n_train + n_test
    chosen = np.empty((n_users, per_user), dtype=np.int64)
    for start in range(0, n_users, 4096):
        u = np.arange(start, min(start + 4096, n_users))
        steps = rng.integers(1, n_items // pool, (len(u), pool)).cumsum(axis=1)
        items = (rng.integers(0, n_items, (len(u), 1)) + steps) % n_items
        taste = np.einsum("ud,upd->up", user_emb[u], item_emb[items])
        taste += 0.25 * rng.gumbel(size=taste.shape)  # noise below the taste's spread (~0.6)
        best = np.argpartition(-taste, per_user - 1, axis=1)[:, :per_user]
        chosen[u] = rng.permuted(np.take_along_axis(items, best, axis=1), axis=1)
    users = np.repeat(np.arange(n_users), per_user)
    items = chosen.ravel()
    is_test = np.tile(np.r_[np.zeros(n_train, bool), np.ones(n_test, bool)], n_users)
    # Every item needs a training interaction (see the module docstring): give each missing
    # one to a random user who does not have it yet.
    counts = np.bincount(items[~is_test], minlength=n_items)
    extra_users, extra_items = [], []
    for item in np.flatnonzero(counts == 0):
        while True:
            user = int(rng.integers(n_users))
            if item not in chosen[user]:
                break
        extra_users.append(user)
        extra_items.append(item)
    users = np.r_[users, extra_users]
    items = np.r_[items, extra_items]
    is_test = np.r_[is_test, np.zeros(len(extra_items), bool)]
    frame = pd.DataFrame({Columns.User: users, Columns.Item: items})
    data = Dataset.from_frames(frame, users=np.arange(n_users), items=np.arange(n_items))
    split = Split(data.subset(~is_test), data.subset(is_test), check=False)

    lfm = LightFM(no_components=d, loss="warp", random_state=seed)
    lfm._initialize(d, n_items, n_users)  # allocates every array predict_rank checks
    u_ext, i_ext = data.user_ids.astype(np.int64), data.item_ids.astype(np.int64)
    lfm.user_embeddings = np.ascontiguousarray(user_emb[u_ext])
    lfm.user_biases = np.ascontiguousarray(user_bias[u_ext])
    lfm.item_embeddings = np.ascontiguousarray(item_emb[i_ext])
    lfm.item_biases = np.ascontiguousarray(item_bias[i_ext])
    model = LightFMRecommender.from_lightfm(lfm, split.train, use_features="none")
    # the premise of the comparison: bit-identical scores, no ties
    probe = rng.choice(n_users, 5, replace=False).astype(np.int32)
    ours = model.score(probe)
    all_items = np.arange(n_items, dtype=np.int32)
    for row, user in enumerate(probe):
        theirs = lfm.predict(np.full(n_items, user, np.int32), all_items)
        if not np.array_equal(ours[row], theirs):
            raise AssertionError(f"user {user}: recexp and LightFM scores differ")
        if len(np.unique(ours[row])) != n_items:
            raise AssertionError(f"user {user}: tied scores")
    return model, split


def restrict(split: Split, users: np.ndarray) -> Split:
    """The split with test interactions of ``users`` (internal indices) only."""
    keep = np.isin(split.test.user_idx, users)
    return Split(split.train, split.test.subset(keep), check=False)


# ---------------------------------------------------------------------------- the runs
def timed(fn: Callable[[], object]) -> tuple[object, float, float]:
    gc.collect()
    # OpenBLAS's worker threads spin for up to ~0.1 s after a product before they sleep, and
    # that counts in the process's CPU time: let the previous run's spinning end first.
    time.sleep(0.3)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def run_recexp(model: LightFMRecommender, split: Split, batch_size: int = 2048):
    return evaluate(model, split, k=K, metrics=METRICS, batch_size=batch_size, segments=False)


def run_lightfm(model: LightFMRecommender, split: Split, threads: int) -> dict[str, np.ndarray]:
    lfm = model.lightfm_
    test, train = split.test.binary, split.train.binary
    return {
        f"precision@{K}": precision_at_k(lfm, test, train, k=K, num_threads=threads),
        f"recall@{K}": recall_at_k(lfm, test, train, k=K, num_threads=threads),
        "auc": auc_score(lfm, test, train, num_threads=threads),
    }


def check_identical(result, theirs: dict[str, np.ndarray], split: Split, what: str) -> float:
    """Largest difference, per user and of the means; raises above TOLERANCE."""
    table = result.per_user
    order = np.argsort(split.test.users.to_internal(table[Columns.User].to_numpy()))
    worst = 0.0
    for name in NAMES:
        ref = theirs[name].astype(np.float64)
        ours = table[name].to_numpy()[order]
        if ours.shape != ref.shape:
            raise AssertionError(f"{what} {name}: {ours.shape} users vs LightFM {ref.shape}")
        worst = max(worst, float(np.abs(ours - ref).max()),
                    abs(result.summary[name] - float(ref.mean())))
    if worst > TOLERANCE:
        raise AssertionError(f"{what}: recexp and LightFM differ by {worst:.3g}")
    return worst


BLAS = ThreadpoolController()  # once: creating one looks through every loaded library


def run_recexp_blas1(model: LightFMRecommender, split: Split):
    with BLAS.limit(limits=1, user_api="blas"):
        return run_recexp(model, split)


def load_before(path: str) -> Callable:
    """``evaluate`` of the ``recexp/metrics.py`` saved at ``path``."""
    spec = importlib.util.spec_from_file_location("recexp_metrics_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module.evaluate


def run_before(before: Callable, model: LightFMRecommender, split: Split):
    return before(model, split, k=K, metrics=METRICS, segments=False)


def compare(name: str, model: LightFMRecommender, split: Split, sample: int, repeats: int,
            seed: int, before: Callable | None) -> dict:
    users = np.unique(split.test.user_idx)
    sampled = users
    if sample and sample < len(users):
        sampled = np.sort(np.random.default_rng(seed).choice(users, sample, replace=False))
    part = restrict(split, sampled) if len(sampled) < len(users) else split
    times: dict[str, list[tuple[float, float]]] = {}
    worst = 0.0
    for _ in range(repeats):
        runs = [("recexp", lambda: run_recexp(model, part)),
                ("recexp-blas1", lambda: run_recexp_blas1(model, part)),
                ("lightfm-1", lambda: run_lightfm(model, part, 1)),
                ("lightfm-2", lambda: run_lightfm(model, part, 2))]
        if before is not None:
            runs.append(("recexp-before", lambda: run_before(before, model, part)))
        if part is not split:
            runs.append(("recexp-all", lambda: run_recexp(model, split)))
        results = {}
        for label, fn in runs:
            results[label], wall, cpu = timed(fn)
            times.setdefault(label, []).append((wall, cpu))
        for label in ("lightfm-1", "lightfm-2"):
            worst = max(worst, check_identical(results["recexp"], results[label], part,
                                               f"{name} {label}"))
        if results["recexp-blas1"].summary != results["recexp"].summary:
            raise AssertionError(f"{name}: one BLAS thread gives other numbers")
        if before is not None:
            if results["recexp-before"].summary != results["recexp"].summary:
                raise AssertionError(f"{name}: the previous evaluate gives other numbers")
    med = {label: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
           for label, v in times.items()}
    summary = results["recexp"].summary
    row = {"case": name, "users": len(users), "items": split.test.n_items,
           "test": split.test.n_interactions, "timed_users": len(sampled), "max_diff": worst,
           "medians": med, "all": times, "summary": {n: summary[n] for n in NAMES}}
    scale = len(users) / len(sampled)
    print(f"\n{name}: {len(users):,} test users x {split.test.n_items:,} items, "
          f"{split.test.n_interactions:,} test interactions; side by side on "
          f"{len(sampled):,} users; medians of {repeats}")
    print("  " + ", ".join(f"{n} {summary[n]:.6f}" for n in NAMES)
          + f"; largest difference to LightFM {worst:.2g}")
    for label, (wall, cpu) in med.items():
        line = f"  {label:14s} wall {wall:8.3f} s  cpu {cpu:8.3f} s"
        if label.startswith("lightfm"):
            line += (f"  -> recexp is {wall / med['recexp'][0]:5.1f}x faster (wall), "
                     f"{cpu / med['recexp'][1]:5.1f}x (cpu), "
                     f"{cpu / med['recexp-blas1'][1]:5.1f}x (cpu, recexp BLAS 1 thread)")
            if scale > 1:
                line += f"; all users ~{wall * scale:,.0f} s extrapolated"
        elif label == "recexp-before":
            line += (f"  -> this change: {wall / med['recexp'][0]:4.1f}x faster (wall), "
                     f"{cpu / med['recexp'][1]:4.1f}x (cpu)")
        print(line)
    return row


# ----------------------------------------------------------------------------- memory
def peak_memory(model: LightFMRecommender, split: Split, batch_size: int) -> tuple[int, int]:
    """(peak bytes traced during evaluate, peak RSS rise in bytes)."""
    process = psutil.Process()
    gc.collect()
    base = process.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        run_recexp(model, split, batch_size)
        _, traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        stop.set()
        sampler.join()
    return traced, peak[0] - base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="synthetic users")
    parser.add_argument("--items", type=int, default=10_000, help="synthetic items")
    parser.add_argument("--lightfm-users", type=int, default=5_000,
                        help="synthetic users timed side by side with LightFM (0: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024, 4096])
    parser.add_argument("--before", metavar="FILE",
                        help="also time evaluate() of this earlier recexp/metrics.py")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, numpy {np.__version__}, lightfm "
          f"{lightfm_version}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")

    before = load_before(args.before) if args.before else None
    model, split = movielens(args.seed)
    compare("ML-100K", model, split, 0, args.repeats, args.seed, before)

    start = time.perf_counter()
    model, split = synthetic(args.users, args.items, args.seed)
    print(f"\nsynthetic data and model built in {time.perf_counter() - start:.0f} s: "
          f"{split.train.n_interactions:,} train, {split.test.n_interactions:,} test")
    compare("synthetic", model, split, args.lightfm_users, args.repeats, args.seed, before)

    print(f"\nmemory of evaluate on all {len(np.unique(split.test.user_idx)):,} synthetic users "
          f"(scores of one batch: batch x {split.test.n_items:,} x 4 bytes)")
    run_recexp(model, split, args.batch_sizes[0])  # caches (train.binary layout) built once
    for batch_size in args.batch_sizes:
        traced, rss = peak_memory(model, split, batch_size)
        scores = batch_size * split.test.n_items * 4
        print(f"  batch {batch_size:5d}: traced peak {traced / 2**20:7.1f} MiB, RSS rise "
              f"{rss / 2**20:7.1f} MiB (one batch of scores {scores / 2**20:6.1f} MiB)")
    print(f"\nload average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
