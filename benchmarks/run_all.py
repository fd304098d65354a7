"""Run every benchmark in this folder, one after another, printing each one's report.

    RECEXP_DATA_DIR=../shared/data .venv/bin/python benchmarks/run_all.py [NAME ...]

Each script measures recexp against the real peer side by side in one run and prints ratios;
benchmarks/RESULTS.md records the figures and the command of each. On a 2-core machine the
whole set takes a while (the 10M-row inputs dominate).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    wanted = set(sys.argv[1:])
    scripts = sorted(p for p in here.glob("bench_*.py")
                     if not wanted or p.stem.removeprefix("bench_") in wanted)
    failed = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        if subprocess.call([sys.executable, str(script)]) != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
