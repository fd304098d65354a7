"""Building the interaction and item-feature matrices: recexp's Dataset vs LightFM's Dataset.

Both start from the same tables, the way a loader returns them: interactions
``(user_id, item_id[, weight])`` and an items table whose ``genres``/``tags`` column is
``|``-joined. Each side does its own natural thing with them, and the clock runs over all of it:

- recexp: split the tag column into a long ``(item_id, feature)`` table, then
  ``Dataset.from_frames`` + ``.interactions`` + ``.item_features``;
- LightFM: ``fit`` on the id and tag columns, then ``build_interactions`` over tuples from
  the DataFrame and ``build_item_features`` over ``(item_id, [tags])``, as its docs show.

Both use identity features and row normalisation (LightFM's defaults). After timing, the
matrices are checked equal after mapping LightFM's rows and columns onto recexp's ids.

Cases: (a) MovieLens 100K with genres, from ``$RECEXP_DATA_DIR``; (b) a synthetic table of
10M unique pairs, 500k users x 50k items, long-tail item popularity, 1-5 tags per item.

Run from the project root::

    RECEXP_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_dataset.py
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from lightfm.data import Dataset as LightFMDataset

from recexp.columns import Columns
from recexp.dataset import Dataset


# ---------------------------------------------------------------------------- the two sides
def tags_long(items: pd.DataFrame, tag_column: str) -> pd.DataFrame:
    """The ``|``-joined tag column as a long ``(item_id, feature)`` table, split by Arrow."""
    lists = pc.split_pattern(pa.array(items[tag_column]), "|")
    flat = pc.list_flatten(lists)
    parent = pc.list_parent_indices(lists).to_numpy()
    keep = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
    if not keep.all():  # "" is an item without tags
        flat, parent = flat.filter(pa.array(keep)), parent[keep]
    return pd.DataFrame({Columns.Item: items[Columns.Item].to_numpy()[parent],
                         Columns.Feature: flat.to_pandas()}, copy=False)


def build_recexp(interactions: pd.DataFrame, items: pd.DataFrame, tag_column: str):
    ds = Dataset.from_frames(interactions, item_features=tags_long(items, tag_column),
                             items=items[Columns.Item], normalize_features=True)
    return ds, ds.interactions, ds.item_features


def build_lightfm(interactions: pd.DataFrame, items: pd.DataFrame, tag_column: str):
    cols = [Columns.User, Columns.Item]
    if Columns.Weight in interactions.columns:
        cols.append(Columns.Weight)
    tag_lists = [(i, t.split("|") if t else []) for i, t in
                 zip(items[Columns.Item], items[tag_column], strict=True)]
    ds = LightFMDataset()
    ds.fit(interactions[Columns.User], interactions[Columns.Item],
           item_features=(t for _, tags in tag_lists for t in tags))
    ds.fit_partial(items=items[Columns.Item])
    ones, weights = ds.build_interactions(interactions[cols].itertuples(index=False, name=None))
    features = ds.build_item_features(tag_lists, normalize=True)
    return ds, (ones, weights), features


# ---------------------------------------------------------------------------- checks
def check_equal(ours, theirs) -> None:
    """Raise unless both sides built the same matrices, up to the order of ids."""
    ds, interactions, item_features = ours
    lfm, (ones, weights), lfm_features = theirs
    user_map, _, item_map, feature_map = lfm.mapping()
    rows_u = np.fromiter((user_map[u] for u in ds.user_ids.tolist()), np.int64, ds.n_users)
    rows_i = np.fromiter((item_map[i] for i in ds.item_ids.tolist()), np.int64, ds.n_items)
    names = ds.item_feature_names
    # recexp names identity columns str(id); LightFM keys them by the id itself.
    keys = ds.item_ids.tolist() + names[ds.n_items:].tolist()
    cols_f = np.fromiter((feature_map[k] for k in keys), np.int64, len(keys))

    def same(a: sp.spmatrix, b: sp.spmatrix, what: str) -> None:
        if a.shape != b.shape:
            raise AssertionError(f"{what}: shapes {a.shape} vs {b.shape}")
        a, b = sp.csr_matrix(a), sp.csr_matrix(b)
        a.eliminate_zeros()
        b.eliminate_zeros()
        a.sort_indices()
        b.sort_indices()
        if not (np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)):
            raise AssertionError(f"{what}: different non-zero pattern")
        if not np.array_equal(a.data, b.data):
            raise AssertionError(f"{what}: different values")

    same(interactions, sp.csr_matrix(weights)[rows_u][:, rows_i], "interactions (weights)")
    same(ds.binary, sp.csr_matrix(ones, dtype=np.float32)[rows_u][:, rows_i], "binary")
    same(item_features, lfm_features[rows_i][:, cols_f], "item features")


# ---------------------------------------------------------------------------- data
def movielens_100k() -> tuple[pd.DataFrame, pd.DataFrame] | None:
    if not os.environ.get("RECEXP_DATA_DIR"):
        return None
    from recexp.datasets import load

    data = load("movielens-100k", download=False)
    return data.interactions, data.items[[Columns.Item, "genres"]]


def synthetic(n_interactions: int, n_users: int, n_items: int, n_tags: int, seed: int,
              id_kind: str = "int") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Unique (user, item) pairs with Zipf-like item popularity and a few tags per item.

    ``id_kind="str"`` spells the ids as strings (``"u1234567"``), which recexp factorizes
    with pandas' hash table instead of its integer path.
    """
    rng = np.random.default_rng(seed)
    # Popularity ~ 1 / (rank + 10)^0.9: a long tail where the top item is in ~1% of draws.
    item_cdf = np.cumsum(1.0 / (np.arange(n_items) + 10.0) ** 0.9)
    keys = np.empty(0, np.int64)
    while len(keys) < n_interactions:
        draw = int((n_interactions - len(keys)) * 1.1) + 1000
        users = rng.integers(0, n_users, draw, dtype=np.int64)
        items = np.searchsorted(item_cdf, rng.random(draw) * item_cdf[-1])
        keys = np.unique(np.concatenate([keys, users * n_items + items]))
    keys = rng.permutation(keys)[:n_interactions]
    # Sparse external ids, as real systems have: not 0..n-1, not in the order they appear.
    user_ids = rng.permutation(n_users * 10)[:n_users].astype(np.int64) + 1_000_000
    item_ids = rng.permutation(n_items * 10)[:n_items].astype(np.int64) + 5_000_000
    if id_kind == "str":
        user_ids = np.array([f"u{k}" for k in user_ids.tolist()], dtype=object)
        item_ids = np.array([f"i{k}" for k in item_ids.tolist()], dtype=object)
    interactions = pd.DataFrame({
        Columns.User: pd.Series(user_ids[keys // n_items], dtype=user_ids.dtype
                                if id_kind == "int" else "str"),
        Columns.Item: pd.Series(item_ids[keys % n_items], dtype=item_ids.dtype
                                if id_kind == "int" else "str"),
        Columns.Weight: rng.integers(1, 6, n_interactions).astype(np.float32),
    })
    # 1-5 tags per item, Zipf-popular, repeats within an item dropped.
    tag_cdf = np.cumsum(1.0 / (np.arange(n_tags) + 1.0))
    counts = rng.integers(1, 6, n_items)
    drawn = np.searchsorted(tag_cdf, rng.random(counts.sum()) * tag_cdf[-1])
    tag_names = [f"tag{k}" for k in range(n_tags)]
    bounds = np.concatenate([[0], np.cumsum(counts)])
    tags = ["|".join(dict.fromkeys(tag_names[t] for t in drawn[a:b]))
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    items = pd.DataFrame({Columns.Item: pd.Series(item_ids, dtype=item_ids.dtype
                                                  if id_kind == "int" else "str"),
                          "tags": pd.Series(tags, dtype="str")})
    return interactions, items


# ---------------------------------------------------------------------------- timing
def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """Wall-clock (perf_counter) and CPU time (process_time) of one call, and its result."""
    gc.collect()
    start, start_cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - start, time.process_time() - start_cpu, result


def run_case(name: str, interactions: pd.DataFrame, items: pd.DataFrame, tag_column: str,
             repeats: int) -> dict[str, object]:
    """Best of ``repeats`` for each side, the two sides taking turns.

    Taking turns, and showing CPU time beside the wall clock, because the machine may be
    shared: other processes then stretch both sides alike, and not the CPU time either
    side spends itself.
    """
    best = {"recexp": [np.inf, np.inf], "lightfm": [np.inf, np.inf]}
    for _ in range(repeats):
        for side, build in (("recexp", build_recexp), ("lightfm", build_lightfm)):
            wall, cpu, result = timed(lambda b=build: b(interactions, items, tag_column))
            best[side] = [min(best[side][0], wall), min(best[side][1], cpu)]
            if side == "recexp":
                ours = result
            else:
                theirs = result
            result = None
    (t_ours, cpu_ours), (t_theirs, cpu_theirs) = best["recexp"], best["lightfm"]
    print(f"{name}: recexp {t_ours:.4f} s (cpu {cpu_ours:.4f}), LightFM {t_theirs:.4f} s "
          f"(cpu {cpu_theirs:.4f}), recexp {t_theirs / t_ours:.1f}x faster "
          f"(cpu {cpu_theirs / cpu_ours:.1f}x)", flush=True)
    check_equal(ours, theirs)
    print(f"{name}: matrices equal", flush=True)
    ds = ours[0]
    return {"case": name, "interactions": ds.n_interactions, "users": ds.n_users,
            "items": ds.n_items, "item_features": ours[2].shape[1], "repeats": repeats,
            "recexp_s": t_ours, "lightfm_s": t_theirs, "ratio": t_theirs / t_ours,
            "recexp_cpu": cpu_ours, "lightfm_cpu": cpu_theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats-small", type=int, default=10)
    parser.add_argument("--repeats-large", type=int, default=2)
    parser.add_argument("--n-interactions", type=int, default=10_000_000)
    parser.add_argument("--n-users", type=int, default=500_000)
    parser.add_argument("--n-items", type=int, default=50_000)
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--id-kind", choices=["int", "str"], default="int",
                        help="how the synthetic table spells its user and item ids")
    args = parser.parse_args()

    import lightfm
    import scipy

    print(f"python {platform.python_version()}, numpy {np.__version__}, pandas "
          f"{pd.__version__}, scipy {scipy.__version__}, lightfm {lightfm.__version__}, "
          f"{os.cpu_count()} cpus", flush=True)
    rows = []
    ml = movielens_100k()
    if ml is None:
        print("MovieLens 100K: skipped (set RECEXP_DATA_DIR to the shared data folder)")
    else:
        rows.append(run_case("MovieLens 100K + genres", *ml, "genres", args.repeats_small))
    if not args.skip_large:
        start = time.perf_counter()
        table = synthetic(args.n_interactions, args.n_users, args.n_items, 1000, args.seed,
                          args.id_kind)
        print(f"synthetic data generated in {time.perf_counter() - start:.1f} s", flush=True)
        rows.append(run_case(f"synthetic {args.n_interactions / 1e6:g}M + tags, "
                             f"{args.id_kind} ids", *table, "tags", args.repeats_large))
    print()
    print("| case | interactions | users | items | item features | repeats | recexp (s) "
          "| LightFM (s) | ratio | ratio, CPU time |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['interactions']:,} | {r['users']:,} | {r['items']:,} "
              f"| {r['item_features']:,} | best of {r['repeats']} | {r['recexp_s']:.4f} "
              f"| {r['lightfm_s']:.3f} | {r['ratio']:.1f}x "
              f"| {r['lightfm_cpu'] / r['recexp_cpu']:.1f}x |")


if __name__ == "__main__":
    main()
