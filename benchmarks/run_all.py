"""Run every benchmark in turn (``make bench``; ``make bench-quick`` for small sizes).

Each benchmark prints its own table and writes ``benchmarks/results/<name>.json``. Targets are
checked there, never in tests. The full sizes are the issues' targets: sandbox at 1M
opportunities, extraction at 100k and 1M records, account dedup at 1M accounts, the plan at
1M opportunities / 500k contacts / 200k accounts, the HubSpot load at 100k and 1M records
(rate limits on: 1M takes about nine minutes at 190 requests per 10 s), Salesforce loads at 100k
and 1M upserts, validation at 1M staged rows, the report at 600k linked pairs, the backfill at
100k opportunities (1M takes 77 minutes on 2 cores with ``--limits relaxed``, and at least 68
minutes of HubSpot's own rate limits: see bench_backfill's docstring).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

FULL: list[tuple[str, list[str]]] = [
    ("bench_sandbox", ["--sizes", "1000000"]),
    ("bench_extract", ["--sizes", "100000,1000000"]),
    ("bench_dedup", ["--sizes", "100000,300000,1000000"]),
    ("bench_plan", ["--scale", "1.0"]),
    ("bench_load_hubspot", ["--sizes", "100000,1000000"]),
    ("bench_load_salesforce", ["--sizes", "100000,1000000"]),
    ("bench_validate", ["--rows", "1000000", "--task-rows", "1000000"]),
    ("bench_report", ["--pairs", "600000"]),
    ("bench_backfill", ["--sizes", "100000", "--chunk-days", "730"]),
]
QUICK: list[tuple[str, list[str]]] = [
    ("bench_sandbox", ["--sizes", "20000", "--samples", "10", "--requests", "100", "--batches", "5"]),
    ("bench_extract", ["--sizes", "10000"]),
    ("bench_dedup", ["--sizes", "20000"]),
    ("bench_plan", ["--scale", "0.02", "--repeat", "1"]),
    ("bench_load_hubspot", ["--sizes", "10000"]),
    ("bench_load_salesforce", ["--sizes", "10000", "--chunk", "10000", "--job-rows", "10000"]),
    ("bench_validate", ["--rows", "20000", "--task-rows", "20000"]),
    ("bench_report", ["--pairs", "10000"]),
    ("bench_backfill", ["--sizes", "10000", "--chunk-days", "180"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every benchmark")
    parser.add_argument("--only", help="comma-separated benchmark names (e.g. bench_plan)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.only:
        wanted = set(args.only.split(","))
        plan = [item for item in plan if item[0] in wanted]
    failures = []
    for name, extra in plan:
        print(f"\n=== {name} {' '.join(extra)}", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *extra], check=False)
        print(f"=== {name}: exit {result.returncode} in {time.monotonic() - started:.0f} s", flush=True)
        if result.returncode != 0:
            failures.append(name)
    if failures:
        print(f"failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
