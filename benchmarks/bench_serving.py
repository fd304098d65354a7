"""Recommendation service latency and throughput: in process and over REST on 127.0.0.1.

Model: hybrid LightFM on MovieLens 100K (ratings >= 4, occupation / age / gender user
features, identity features on; 32 components, 10 epochs, one thread), wrapped in a
``RecommenderBundle`` and saved as an MLflow pyfunc folder (``recexp.serving.save_pyfunc``).

(a) In process, top-10 with seen items excluded, ``--calls`` calls each, sides interleaved
call by call so they see the same machine load:

- ``bundle``: ``RecommenderBundle.recommend`` (what the service runs: request checks, id
  lookup, scoring, output table);
- ``pyfunc``: ``mlflow.pyfunc.load_model(...).predict`` (adds MLflow's params enforcement;
  the model declares no input schema, so the request checks are the bundle's);
- ``model``: ``LightFMRecommender.recommend``, the model's own API (no service layer);
- ``lightfm``: the usual LightFM loop, ``predict(user, all items)``, seen items to ``-inf``,
  stable argsort: the peer.

One known user per call (a different one each call), then 1,000 known users in one call, and
1,000 *new* users sent with attributes (scored from their features) in one call.

(b) Over REST: ``mlflow models serve --env-manager local`` (``recexp.serving.start_server``)
on 127.0.0.1, one known user, ``k=10``, per request (``dataframe_split`` JSON). First one client
sending requests one after another (latency), then ``--clients`` threads sending
``--requests`` requests in all, each thread on its own keep-alive connection, stopped after
``--max-seconds`` (throughput and latency under load). Clients and server share the machine's
cores. Repeated for each ``--workers`` value (uvicorn worker processes).

Run from the project root::

    RECEXP_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_serving.py \
        --write benchmarks/details/serving.md
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import platform
import shlex
import socket
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recexp import serving
from recexp.columns import Columns
from recexp.datasets import load
from recexp.features import build_features
from recexp.models.lightfm import LightFMRecommender
from recexp.preprocess import preprocess

K = 10
USER_SPEC = [{"kind": "multi_hot", "column": "occupation"},
             {"kind": "bucket", "column": "age", "edges": [18, 25, 35, 45, 55]},
             {"kind": "multi_hot", "column": "gender"}]


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"n": len(ms), "p50": float(np.percentile(ms, 50)),
            "p99": float(np.percentile(ms, 99)), "mean": float(ms.mean())}


def build(epochs: int):
    data = load("movielens-100k", download=False)
    interactions, _ = preprocess(data.interactions, [{"step": "to_implicit", "threshold": 4}])
    users = data.users[data.users[Columns.User].isin(interactions[Columns.User].unique())]
    users = users.reset_index(drop=True)
    dataset = build_features({"user": USER_SPEC}, users=users).to_dataset(interactions)
    model = LightFMRecommender(no_components=32, epochs=epochs, use_features="both",
                               random_state=0).fit(dataset)
    bundle = serving.RecommenderBundle.from_training(model, dataset, feature_spec=USER_SPEC,
                                                     users=users)
    return model, dataset, users, bundle


def peer_features(model: LightFMRecommender, dataset) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The user and item feature matrices the model was trained with (identity if none)."""
    inputs = model.training_inputs(dataset)
    return tuple(sp.identity(n, dtype=np.float32, format="csr") if f is None else f
                 for f, n in ((inputs["user_features"], dataset.n_users),
                              (inputs["item_features"], dataset.n_items)))


def lightfm_loop(model: LightFMRecommender, user_idx: np.ndarray,
                 features: tuple[sp.csr_matrix, sp.csr_matrix]) -> np.ndarray:
    """The usual per-user LightFM predict with the training features, seen items excluded."""
    lfm = model.lightfm_
    seen = model.seen_
    n_items = seen.shape[1]
    all_items = np.arange(n_items, dtype=np.int32)
    out = np.empty((len(user_idx), K), dtype=np.int64)
    for row, user in enumerate(user_idx):
        scores = lfm.predict(int(user), all_items, user_features=features[0],
                             item_features=features[1], num_threads=1)
        scores[seen.indices[seen.indptr[user]:seen.indptr[user + 1]]] = -np.inf
        out[row] = np.argsort(-scores, kind="stable")[:K]
    return out


def in_process(model, dataset, users, bundle, pyfunc, calls: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    features = peer_features(model, dataset)
    warm = np.flatnonzero(np.bincount(dataset.user_idx, minlength=dataset.n_users))
    ids = dataset.users.to_external(warm)
    one = {name: [] for name in ("bundle", "pyfunc", "model", "lightfm")}
    sides = {
        "bundle": lambda u, i: bundle.recommend([str(u)], k=K),
        "pyfunc": lambda u, i: pyfunc.predict(pd.DataFrame({Columns.User: [str(u)]}),
                                              params={"k": K}),
        "model": lambda u, i: model.recommend([u], k=K),
        "lightfm": lambda u, i: lightfm_loop(model, np.array([i]), features),
    }
    for side in sides.values():  # warm-up
        side(ids[0], warm[0])
    gc.collect()
    for call in range(calls):
        pos = rng.integers(len(ids))
        order = list(sides) if call % 2 == 0 else list(reversed(sides))
        for name in order:
            start = time.perf_counter()
            side = sides[name](ids[pos], warm[pos])
            one[name].append(time.perf_counter() - start)
        del side
    # The lists agree (the service is the model's own top-k; LightFM's predict agrees up to
    # float rounding of the feature sums, so compare to the model's list).
    sample = rng.choice(len(ids), 200, replace=False)
    mine = bundle.recommend([str(u) for u in ids[sample]], k=K)[Columns.Item].to_numpy()
    theirs = model.recommend(ids[sample], k=K)[Columns.Item].to_numpy()
    agree_model = bool((mine == theirs).all())
    peer = dataset.items.to_external(lightfm_loop(model, warm[sample], features).ravel())
    agree_lightfm = float((mine == peer).mean())

    batch = {name: [] for name in ("bundle", "model", "lightfm", "bundle_new_users")}
    # ML-100K has 942 users: 1,000 requests repeat a few of them.
    thousand = rng.choice(len(ids), 1000, replace=len(ids) < 1000)
    batch_ids, batch_idx = ids[thousand], warm[thousand]
    request = [str(u) for u in batch_ids]
    attributes = users.set_index(Columns.User).loc[batch_ids, ["occupation", "age", "gender"]]
    attributes["age"] = attributes["age"].astype(float)
    newcomers = pd.concat([pd.DataFrame({Columns.User: [f"new-{u}" for u in batch_ids]}),
                           attributes.reset_index(drop=True)], axis=1)
    repeats = max(3, calls // 200)
    for _ in range(repeats):
        for name, run in (("bundle", lambda: bundle.recommend(request, k=K)),
                          ("model", lambda: model.recommend(batch_ids, k=K)),
                          ("lightfm", lambda: lightfm_loop(model, batch_idx, features)),
                          ("bundle_new_users", lambda: bundle.recommend(newcomers, k=K))):
            gc.collect()
            start = time.perf_counter()
            run()
            batch[name].append(time.perf_counter() - start)
    reasons = bundle.recommend(newcomers, k=K)["reason"].value_counts().to_dict()
    return {"one": {k: percentiles(v) for k, v in one.items()},
            "batch": {k: statistics.median(v) * 1000 for k, v in batch.items()},
            "batch_users": len(batch_ids), "batch_repeats": repeats,
            "agree_model": agree_model, "agree_lightfm": agree_lightfm,
            "new_user_reasons": reasons}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive HTTP connection to the scoring server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in (0, 1):
            try:
                self.conn.request("POST", "/invocations", body=body,
                                  headers={"Content-Type": "application/json"})
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def body_for(user: str, k: int = K) -> bytes:
    return json.dumps({"dataframe_split": {"columns": [Columns.User], "data": [[user]]},
                       "params": {"k": k}}).encode()


def rest(model_dir: Path, ids: np.ndarray, *, workers: int, sequential: int, clients: int,
         requests: int, max_seconds: float, seed: int, log_dir: Path) -> dict:
    rng = np.random.default_rng(seed)
    port = _free_port()
    server = serving.start_server(str(model_dir), port=port, workers=workers,
                                  log_path=log_dir / f"server-w{workers}.log")
    try:
        start = time.perf_counter()
        server.wait_ready(timeout=600)
        startup = time.perf_counter() - start
        client = Client(port)
        for _ in range(5):  # warm-up
            client.post(body_for(str(ids[0])))
        latencies = []
        for _ in range(sequential):
            body = body_for(str(ids[rng.integers(len(ids))]))
            t0 = time.perf_counter()
            status, payload = client.post(body)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {payload[:300]!r}")
        check = json.loads(client.post(body_for(str(ids[0])))[1])["predictions"]
        big = json.dumps({"dataframe_split": {"columns": [Columns.User],
                                              "data": [[str(ids[i % len(ids)])]
                                                       for i in range(1000)]},
                          "params": {"k": K}}).encode()
        big_times = []
        for _ in range(5):
            t0 = time.perf_counter()
            status, _ = client.post(big)
            big_times.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"HTTP {status} on the 1,000-user request")

        bodies = [body_for(str(ids[i])) for i in rng.integers(len(ids), size=requests)]
        next_index = iter(range(requests))
        lock = threading.Lock()
        load_latencies: list[float] = []
        errors: list[int] = []
        deadline = time.perf_counter() + max_seconds

        def worker() -> None:
            mine = Client(port)
            while time.perf_counter() < deadline:
                with lock:
                    i = next(next_index, None)
                if i is None:
                    return
                t0 = time.perf_counter()
                status, _ = mine.post(bodies[i])
                took = time.perf_counter() - t0
                with lock:
                    load_latencies.append(took)
                    if status != 200:
                        errors.append(status)

        t_load = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            for future in [pool.submit(worker) for _ in range(clients)]:
                future.result()
        elapsed = time.perf_counter() - t_load
    finally:
        server.stop()
    return {"workers": workers, "startup_s": startup, "sequential": percentiles(latencies),
            "batch_1000_ms": statistics.median(big_times) * 1000,
            "load": percentiles(load_latencies), "load_done": len(load_latencies),
            "load_seconds": elapsed, "throughput": len(load_latencies) / elapsed,
            "errors": len(errors), "check_rows": len(check)}


def report(args, info: dict, local: dict, remote: list[dict]) -> str:
    one = local["one"]
    lines = [
        "# Recommendation service: latency and throughput",
        "",
        f"Command: `{info['command']}`",
        "",
        f"Machine: {info['cpus']} cores, Python {info['python']}, numpy {info['numpy']}, "
        f"MLflow {info['mlflow']}; 1-min load average {info['load_start']:.1f} at the start, "
        f"{info['load_end']:.1f} at the end (other engineers' jobs share the machine: treat "
        "absolute times as upper bounds, ratios as the finding).",
        "",
        f"Model: hybrid LightFM on MovieLens 100K (ratings >= 4: {info['interactions']:,} "
        f"interactions, {info['n_users']:,} users, {info['n_items']:,} items), 32 components, "
        f"{args.epochs} epochs, user features occupation / age / gender. Top-{K}, seen items "
        "excluded.",
        "",
        f"## In process: one known user per call ({one['bundle']['n']:,} calls per side, "
        "interleaved)",
        "",
        "| side | p50 ms | p99 ms | mean ms | p50 vs lightfm loop |",
        "|---|---:|---:|---:|---:|",
    ]
    base = one["lightfm"]["p50"]
    labels = {"bundle": "RecommenderBundle.recommend (the service)",
              "pyfunc": "MLflow pyfunc predict (+ params checks)",
              "model": "LightFMRecommender.recommend",
              "lightfm": "LightFM predict loop (peer)"}
    for name in ("bundle", "pyfunc", "model", "lightfm"):
        row = one[name]
        lines.append(f"| {labels[name]} | {row['p50']:.2f} | {row['p99']:.2f} | "
                     f"{row['mean']:.2f} | {row['p50'] / base:.2f}x |")
    batch = local["batch"]
    n = local["batch_users"]
    lines += [
        "",
        f"## In process: {n:,} users in one call (median of {local['batch_repeats']})",
        "",
        "| side | ms | per user ms | vs lightfm loop |",
        "|---|---:|---:|---:|",
    ]
    blabels = {"bundle": "RecommenderBundle.recommend, known users",
               "bundle_new_users": "RecommenderBundle.recommend, new users with features",
               "model": "LightFMRecommender.recommend",
               "lightfm": "LightFM predict loop (peer)"}
    for name in ("bundle", "bundle_new_users", "model", "lightfm"):
        lines.append(f"| {blabels[name]} | {batch[name]:.1f} | {batch[name] / n:.3f} | "
                     f"{batch[name] / batch['lightfm']:.3f}x |")
    lines += [
        "",
        f"Lists: service == model.recommend for 200 sampled users: {local['agree_model']}; "
        f"share of items equal to the LightFM predict loop: {local['agree_lightfm']:.4f} "
        "(the loop sums feature embeddings in another order, so near-ties can swap).",
        f"New users: reasons {local['new_user_reasons']}.",
        "",
        "## REST: `mlflow models serve --env-manager local` on 127.0.0.1, one user per request",
        "",
        f"Sequential: one client, {args.sequential} requests. Load: {args.clients} client "
        f"threads (keep-alive connections), up to {args.requests:,} requests or "
        f"{args.max_seconds:.0f} s. 1,000 users: one request, median of 5.",
        "",
        "| workers | start-up s | sequential p50 ms | p99 ms | load p50 ms | load p99 ms | "
        "requests | req/s | errors | 1,000 users in one request ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in remote:
        lines.append(
            f"| {r['workers']} | {r['startup_s']:.1f} | {r['sequential']['p50']:.1f} | "
            f"{r['sequential']['p99']:.1f} | {r['load']['p50']:.1f} | {r['load']['p99']:.1f} | "
            f"{r['load_done']:,} in {r['load_seconds']:.1f} s | {r['throughput']:.1f} | "
            f"{r['errors']} | {r['batch_1000_ms']:.0f} |")
    lines += [
        "",
        "## Reading",
        "",
        f"- One user in process: the service adds {one['bundle']['p50'] - one['model']['p50']:.1f}"
        f" ms at p50 over the model's own `recommend` (request checks, id lookup, the six-column "
        f"answer table), and MLflow's pyfunc layer another "
        f"{one['pyfunc']['p50'] - one['bundle']['p50']:.1f} ms (params "
        "enforcement). Both are constant per call: the LightFM per-user loop is faster for a "
        "single user, because it builds no tables at all.",
        f"- Many users in one call: the service scores {n:,} users in "
        f"{batch['bundle']:.0f} ms, {batch['lightfm'] / batch['bundle']:.1f}x faster than the "
        "LightFM loop (one matrix product per batch against the cached item representations); "
        f"new users from their attributes cost {batch['bundle_new_users'] / batch['bundle']:.2f}x "
        "known users.",
    ]
    if remote:
        seq = remote[0]["sequential"]["p50"]
        lines += [
            f"- REST: a one-user request takes {seq / one['bundle']['p50']:.0f}x the in-process "
            "service call (HTTP, JSON both ways, MLflow's parsing and params enforcement); "
            "batching users into one request amortises it. Under load the 8 client threads, "
            "the server's workers and other jobs share 2 cores, so these throughputs are a "
            "floor for a dedicated machine, and a second worker cannot show its worth here.",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000,
                        help="in-process one-user calls per side")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--sequential", type=int, default=300,
                        help="REST requests from one client, one after another")
    parser.add_argument("--clients", type=int, default=8, help="concurrent REST clients")
    parser.add_argument("--requests", type=int, default=2000,
                        help="REST requests under load, in all")
    parser.add_argument("--max-seconds", type=float, default=90.0,
                        help="stop the load phase after this long")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                        help="uvicorn worker processes; one server run each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", type=Path, help="also write the markdown report here")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    info = {"command": " ".join(shlex.quote(a) for a in [".venv/bin/python", *sys.argv]),
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "mlflow": mlflow.__version__,
            "load_start": os.getloadavg()[0]}
    print(f"{info['cpus']} CPUs, load average {info['load_start']:.1f}", flush=True)
    model, dataset, users, bundle = build(args.epochs)
    info.update(interactions=dataset.n_interactions, n_users=dataset.n_users,
                n_items=dataset.n_items)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = serving.save_pyfunc(bundle, Path(tmp) / "pyfunc")
        pyfunc = mlflow.pyfunc.load_model(str(model_dir))
        local = in_process(model, dataset, users, bundle, pyfunc, args.calls, args.seed)
        print(json.dumps(local, indent=1), flush=True)
        warm = np.flatnonzero(np.bincount(dataset.user_idx, minlength=dataset.n_users))
        ids = dataset.users.to_external(warm)
        remote = []
        for workers in args.workers:
            result = rest(model_dir, ids, workers=workers, sequential=args.sequential,
                          clients=args.clients, requests=args.requests,
                          max_seconds=args.max_seconds, seed=args.seed, log_dir=Path(tmp))
            print(json.dumps(result, indent=1), flush=True)
            remote.append(result)
    info["load_end"] = os.getloadavg()[0]
    text = report(args, info, local, remote)
    print(text)
    if args.write:
        args.write.write_text(text)


if __name__ == "__main__":
    main()
