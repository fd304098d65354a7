"""Does pruning pay? The same sweep on MovieLens 100K with and without a pruner.

For each sampler seed, one study per pruner runs the same trial budget with the same TPE seed
on the search config (default ``experiments/ml100k_lightfm.search.yaml``), without MLflow
tracking and without the final retrain. Reported per study: epochs trained by all trials,
the best validation NDCG@10 (of trials that ran to the end), trials pruned, wall time. The
ratio column is epochs relative to the unpruned study of the same seed.

    python benchmarks/bench_pruning.py --n-trials 20 --seeds 0 1 --pruners none median \
        --write benchmarks/details/pruning.md

Studies go to journal files in a temporary folder (nothing is kept). Times are wall-clock on
whatever else the machine is doing: compare epochs, not seconds.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(config_path: Path, *, n_trials: int, seeds: list[int], pruners: list[str],
        overrides: list[str]) -> list[dict]:
    from recexp import tuning

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for pruner in pruners:
                config = tuning.with_choices(
                    tuning.load_search_config(config_path, overrides=overrides), pruner=pruner)
                start = time.perf_counter()
                result = tuning.sweep(config, n_trials=n_trials, seed=seed,
                                      storage=str(Path(tmp) / f"{pruner}-{seed}.journal"),
                                      study=f"bench-{pruner}-{seed}", progress=False,
                                      retrain=False, track=False)
                row = {"seed": seed, "pruner": pruner, "spec": dict(config.search.pruner),
                       "epochs": result.epochs_trained, "best": result.best_value,
                       "best_trial": result.best_trial,
                       "pruned": result.states.get("PRUNED", 0),
                       "complete": result.states.get("COMPLETE", 0),
                       "failed": result.states.get("FAIL", 0),
                       "seconds": time.perf_counter() - start}
                rows.append(row)
                print(f"seed {seed} {pruner:>18}: {row['epochs']:5d} epochs, best "
                      f"{row['best']:.4f} (trial {row['best_trial']}), {row['pruned']} "
                      f"pruned, {row['seconds']:.0f} s", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    base = {r["seed"]: r["epochs"] for r in rows if r["pruner"] == "none"}
    lines = ["| seed | pruner | epochs trained | vs none | best valid NDCG@10 | best trial "
             "| pruned / complete | wall s |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = f"{r['epochs'] / base[r['seed']]:.2f}" if r["seed"] in base else "-"
        lines.append(f"| {r['seed']} | {r['pruner']} | {r['epochs']} | {ratio} | "
                     f"{r['best']:.4f} | {r['best_trial']} | {r['pruned']} / {r['complete']} "
                     f"| {r['seconds']:.0f} |")
    return "\n".join(lines)


def _shown(path: Path) -> Path:
    path = path.resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path,
                        default=ROOT / "experiments" / "ml100k_lightfm.search.yaml")
    parser.add_argument("--n-trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--pruners", nargs="+", default=["none", "median"])
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="config override key.path=value (repeatable)")
    parser.add_argument("--write", type=Path, help="also write the markdown table here")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = run(args.config, n_trials=args.n_trials, seeds=args.seeds, pruners=args.pruners,
               overrides=args.overrides)
    text = table(rows)
    print(text)
    if args.write:
        specs = {r["pruner"]: r["spec"] for r in rows}
        args.write.write_text(
            "# Pruning on MovieLens 100K: same trials, same seed, fewer epochs?\n\n"
            f"Command: `python benchmarks/bench_pruning.py --n-trials {args.n_trials} "
            f"--seeds {' '.join(map(str, args.seeds))} --pruners {' '.join(args.pruners)}"
            + "".join(f" --set {o}" for o in args.overrides)
            + (f" --write {args.write}`" if args.write else "`") + "\n\n"
            f"Config: `{_shown(args.config)}`; "
            f"pruners: {specs}; machine: {platform.platform()}, Python "
            f"{platform.python_version()}; total {time.perf_counter() - start:.0f} s.\n\n"
            + text + "\n")
        print(f"wrote {args.write}")


if __name__ == "__main__":
    main()
