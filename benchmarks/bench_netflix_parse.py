"""Parsing Netflix Prize rating files: recexp's streaming reader vs a plain pandas reader.

A synthetic ``combined_data``-style file (a ``MovieID:`` line, then ``CustomerID,Rating,Date``
lines) of ``--ratings`` ratings (default 10M; 480,189 customers, 17,770 movies, like the real
set) is written once into ``benchmarks/_work/`` (git-ignored). Then each parser runs in its
own fresh subprocess, alternating, ``--repeats`` times:

- recexp: ``recexp.datasets.netflix.read_netflix_ratings`` (byte search for the movie lines,
  pyarrow for the rest, narrow dtypes, blocks of 64 MiB);
- pandas: what one writes by hand (and what the popular Kaggle notebooks do):
  ``pd.read_csv(header=None)`` of the three columns, the ``MovieID:`` lines found by their
  missing rating and forward-filled into an item column, those rows dropped, the date parsed
  with ``pd.to_datetime(format="%Y-%m-%d")``, ids cast to int64 and the rating to float32.

Each child measures wall time, CPU time (all threads) and the rise of its peak resident
memory (``VmHWM`` after the parse minus the resident size just before it, imports done).
After measuring, each child puts its table in one canonical form (int64 ids, float32 rating,
datetime64[s]) and hashes it; the script checks the two hashes are equal and that the table
equals the generator's truth. Figures are medians over the repeats.

Run from the project root::

    .venv/bin/python benchmarks/bench_netflix_parse.py            # 10M ratings, 3 repeats
    .venv/bin/python benchmarks/bench_netflix_parse.py --ratings 100000000 --repeats 1 \
        --parsers recexp --append          # the full Prize size (pandas would need ~20 GB)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work"
RESULTS = ROOT / "benchmarks" / "details" / "netflix.md"


# ---------------------------------------------------------------------------- the two parsers
def parse_recexp(path: Path):
    from recexp.datasets.netflix import read_netflix_ratings

    frame, _ = read_netflix_ratings(path, progress=False)
    return frame


def parse_pandas(path: Path):
    import pandas as pd

    df = pd.read_csv(path, header=None, names=["user_id", "rating", "timestamp"])
    is_movie = df["rating"].isna()
    df["item_id"] = df["user_id"].where(is_movie).str[:-1].ffill()
    df = df[~is_movie]
    return pd.DataFrame({
        "user_id": df["user_id"].astype("int64"),
        "item_id": df["item_id"].astype("int64"),
        "rating": df["rating"].astype("float32"),
        "timestamp": pd.to_datetime(df["timestamp"], format="%Y-%m-%d"),
    })


PARSERS = {"recexp": parse_recexp, "pandas": parse_pandas}


def canonical_digest(frame) -> tuple[int, str]:
    """Rows and SHA-256 of the table in one canonical layout, so two parsers can be compared."""
    import numpy as np

    h = hashlib.sha256()
    columns = (("user_id", "int64"), ("item_id", "int64"), ("rating", "float32"),
               ("timestamp", "datetime64[s]"))
    for name, dtype in columns:
        h.update(np.ascontiguousarray(frame[name].to_numpy(dtype=dtype)).view(np.uint8))
    return len(frame), h.hexdigest()


def peak_rss() -> int:
    """Peak resident bytes of this process image. Not ``ru_maxrss``: Linux carries that over
    ``execve`` from the parent, so a child would report the parent's peak."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_peak() -> None:
    """Start the peak over from the current size (Linux >= 4.0), so imports do not count."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def child(parser: str, path: Path) -> None:
    import numpy  # noqa: F401  (imports are not part of the measurement)
    import pandas  # noqa: F401
    import psutil
    import pyarrow.csv  # noqa: F401

    import recexp.datasets.netflix  # noqa: F401

    reset_peak()
    rss_before = psutil.Process().memory_info().rss
    wall0, cpu0 = time.perf_counter(), time.process_time()
    frame = PARSERS[parser](path)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    peak = peak_rss()
    rows, digest = canonical_digest(frame)
    print(json.dumps({"parser": parser, "wall": wall, "cpu": cpu,
                      "peak_rise": peak - rss_before, "rows": rows, "digest": digest}))


# ---------------------------------------------------------------------------- driver
def make_file(n_ratings: int, seed: int) -> tuple[Path, str, str]:
    """The input file (written unless already there), its truth digest, how it was made."""
    from recexp.datasets.synthetic import write_netflix

    folder = WORK / f"netflix_{n_ratings}_{seed}"
    path = folder / "combined_data_1.txt"
    truth_file = folder / "truth.json"
    if path.is_file() and truth_file.is_file():
        made = json.loads(truth_file.read_text())
        return path, made["digest"], made["how"] + " (in an earlier run)"
    print(f"writing {n_ratings:,} ratings to {folder} ...", flush=True)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    files = write_netflix(folder, n_ratings=n_ratings, n_users=480_189, n_movies=17_770,
                          seed=seed, n_files=1, probe_fraction=0.0, n_qualifying=0)
    how = (f"written in {time.perf_counter() - wall0:.1f} s wall, "
           f"{time.process_time() - cpu0:.1f} s CPU")
    print(f"  {how}", flush=True)
    _, digest = canonical_digest(files.ratings)
    truth_file.write_text(json.dumps({"digest": digest, "how": how}))
    return path, digest, how


def run_child(parser: str, path: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", parser, "--file", str(path)],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ratings", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parsers", default="recexp,pandas")
    parser.add_argument("--no-write", action="store_true",
                        help=f"do not write {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--append", action="store_true",
                        help="add to the results file instead of replacing it")
    parser.add_argument("--child", choices=sorted(PARSERS), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.file)
        return

    path, truth, how = make_file(args.ratings, args.seed)
    size = path.stat().st_size
    names = args.parsers.split(",")
    runs: dict[str, list[dict]] = {name: [] for name in names}
    load = []
    for k in range(args.repeats):
        for name in names if k % 2 == 0 else names[::-1]:  # alternate who goes first
            load.append(os.getloadavg()[0])
            result = run_child(name, path)
            runs[name].append(result)
            print(f"  {name:7s} run {k + 1}: {result['wall']:6.2f} s wall, "
                  f"{result['cpu']:6.2f} s cpu, peak +{result['peak_rise'] / 2**20:7.0f} MiB",
                  flush=True)
    digests = {name: {r["digest"] for r in rs} for name, rs in runs.items()}
    same = all(d == {truth} for d in digests.values())
    summary = {}
    for name, rs in runs.items():
        wall = statistics.median(r["wall"] for r in rs)
        cpu = statistics.median(r["cpu"] for r in rs)
        peak = statistics.median(r["peak_rise"] for r in rs)
        rows = rs[0]["rows"]
        summary[name] = {"wall": wall, "cpu": cpu, "peak": peak, "rows": rows,
                         "mb_s": size / 1e6 / wall, "rows_s": rows / wall}
    lines = [
        "# Netflix Prize rating file parse: recexp vs pandas",
        "",
        f"Command: `.venv/bin/python benchmarks/bench_netflix_parse.py --ratings "
        f"{args.ratings} --repeats {args.repeats} --parsers {args.parsers}`",
        "",
        f"Input: one synthetic `combined_data`-format file, {args.ratings:,} ratings, "
        f"{size / 1e6:,.0f} MB, 17,770 `MovieID:` lines, by "
        f"`recexp.datasets.synthetic.write_netflix` (seed {args.seed}; {how}).",
        f"Machine: {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"Python {platform.python_version()}; 1-min load average during the runs "
        f"{min(load):.1f}..{max(load):.1f} (other jobs shared the machine).",
        f"Median of {args.repeats} runs, each parser in a fresh subprocess; peak memory is "
        "the rise of peak RSS over the parse.",
        "",
        "| parser | wall s | CPU s | MB/s | rows/s | peak RSS rise MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['wall']:.2f} | {s['cpu']:.2f} | {s['mb_s']:.0f} | "
                     f"{s['rows_s'] / 1e6:.2f}M | {s['peak'] / 2**20:,.0f} |")
    if {"recexp", "pandas"} <= summary.keys():
        r, p = summary["recexp"], summary["pandas"]
        lines += [
            "",
            f"Ratios recexp / pandas: throughput (wall) **{p['wall'] / r['wall']:.1f}x**, "
            f"CPU time {r['cpu'] / p['cpu']:.2f}x, peak memory "
            f"**{r['peak'] / p['peak']:.2f}x** (target: >= 3x throughput at <= 0.5x memory).",
        ]
    lines += ["", f"Identical tables (both equal the generator's truth): {same}."]
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    if not args.no_write:
        if args.append and RESULTS.is_file():
            text = RESULTS.read_text() + "\n" + text.replace("# ", "## ", 1)
        RESULTS.write_text(text)
    if not same:
        raise SystemExit(f"the parsers disagree: {digests} (truth {truth})")


if __name__ == "__main__":
    main()
