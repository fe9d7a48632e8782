"""Salesforce load benchmark: upserts through the sandbox by sObject Collections and Bulk API 2.0.

Run: ``python -m benchmarks.bench_load_salesforce [--sizes 100000,1000000] [--modes collections,bulk]``.

Per size and mode it serves an empty org with ``crm-sandbox serve`` in its own process (daily API
limit lifted: the reserve logic is covered by the integration tests), then, in a fresh worker
process (so peak RSS is the writer's alone), feeds :class:`SalesforceWriter` ``size`` Account
creates in groups of ``--chunk`` rows, as the load runner hands over one page of plan rows at a
time. It prints

* records/s of the whole load (emulator included, so a floor for crm-sync's own cost);
* API calls the writer made (its own count, checked against the sandbox's ``/__sandbox/stats``)
  against the minimum: ``ceil(n/200)`` collection requests, or for Bulk API 2.0 the job count
  ``ceil(n/bulk_job_rows)`` times the six requests a job needs (create, upload, close, one poll,
  successful and failed results); target <= 1.05x;
* peak RSS of the worker, which should stay flat as ``n`` grows (groups, not the whole load, are
  held in memory).

The end state is checked: the org holds exactly ``n`` Accounts with distinct external ids.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import peak_rss_mib, report

NAME = "load_salesforce"
COLLECTION = 200
REQUESTS_PER_BULK_JOB = 6


def worker_peak_rss_mib() -> float:
    """Peak RSS of this process image (``VmHWM``, reset by exec unlike ``ru_maxrss``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return peak_rss_mib()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(workdir: Path) -> tuple[subprocess.Popen[str], int, int, str]:
    scenario = workdir / "empty.json"
    scenario.write_text(json.dumps({"salesforce": {}, "hubspot": {}}))
    sf_port, hs_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crm_sandbox.cli", "serve", "--salesforce-port", str(sf_port),
         "--hubspot-port", str(hs_port), "--scenario", str(scenario),
         "--salesforce-daily-api-limit", "1000000000000"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("crm-sandbox ready:"):
            return proc, sf_port, hs_port, line.strip().rsplit("ca_bundle=", 1)[1]
    raise RuntimeError(f"crm-sandbox serve exited with {proc.wait()}")


def bench(size: int, mode: str, chunk: int, job_rows: int, workdir: Path) -> dict[str, Any]:
    proc, sf_port, hs_port, ca = _serve(workdir)
    try:
        worker = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_load_salesforce", "--worker", "--size", str(size),
             "--mode", mode, "--chunk", str(chunk), "--job-rows", str(job_rows), "--sf-port", str(sf_port),
             "--hs-port", str(hs_port), "--ca", ca],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        print(exc.stdout[-5000:], exc.stderr[-5000:], file=sys.stderr)
        raise
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    row: dict[str, Any] = json.loads(worker.stdout.strip().splitlines()[-1])
    return row


# -- worker --------------------------------------------------------------------------------------


def _items(size: int, chunk: int) -> Iterator[list[Any]]:
    from crm_sync.load.writer import LoadItem

    for start in range(0, size, chunk):
        yield [
            LoadItem(
                seq=i,
                target="salesforce",
                object="Account",
                action="create",
                source_id=f"hs-{i}",
                target_id=None,
                fields={
                    "Name": f"Bench Account {i}",
                    "Industry": "Technology",
                    "NumberOfEmployees": i % 5000,
                    "Website": f"https://bench{i}.example.com",
                    "HubSpot_Id__c": f"hs-{i}",
                },
            )
            for i in range(start, min(size, start + chunk))
        ]


def worker(args: argparse.Namespace) -> dict[str, Any]:
    import requests
    from crm_sandbox.server import connection_env
    from crm_sync.load.salesforce import SalesforceWriter
    from crm_sync.load.salesforce_http import WriteSettings
    from simple_salesforce.api import Salesforce

    os.environ.update(connection_env(args.sf_port, args.hs_port, Path(args.ca)))
    sf_url = f"https://127.0.0.1:{args.sf_port}"
    threshold = 0 if args.mode == "bulk" else 10**12
    writer = SalesforceWriter(settings=WriteSettings(bulk_threshold=threshold, bulk_job_rows=args.job_rows))
    writer.prepare()
    before = writer.api_calls()
    failed = written = 0
    started = time.perf_counter()
    for group in _items(args.size, args.chunk):
        for outcome in writer.write("Account", "create", group):
            written += outcome.ok
            failed += not outcome.ok
    seconds = time.perf_counter() - started
    calls = writer.api_calls() - before
    served = requests.get(f"{sf_url}/__sandbox/stats", timeout=60, verify=args.ca).json()["total"]
    writer.close()
    reader = Salesforce(instance_url=sf_url, session_id="sandbox-session")
    in_org = int(reader.query("SELECT COUNT() FROM Account WHERE HubSpot_Id__c != null")["totalSize"])
    if args.mode == "bulk":
        jobs = sum(
            math.ceil(min(args.chunk, args.size - s) / args.job_rows) for s in range(0, args.size, args.chunk)
        )
        minimum = REQUESTS_PER_BULK_JOB * math.ceil(args.size / args.job_rows)
    else:
        jobs = 0
        minimum = math.ceil(args.size / COLLECTION)
    return {
        "mode": args.mode,
        "size": args.size,
        "written": written,
        "failed": failed,
        "in_org": in_org,
        "seconds": round(seconds, 1),
        "records_per_s": round(args.size / seconds) if seconds else None,
        "api_calls": calls,
        "sandbox_requests": served,
        "bulk_jobs": jobs or None,
        "minimum_calls": minimum,
        "calls_vs_minimum": round(calls / minimum, 3) if minimum else None,
        "peak_rss_mib": worker_peak_rss_mib(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100000", help="comma-separated record counts")
    parser.add_argument("--modes", default="collections,bulk")
    parser.add_argument("--chunk", type=int, default=100_000, help="plan rows per write() call")
    parser.add_argument("--job-rows", type=int, default=100_000, help="rows per Bulk API 2.0 job")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--sf-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hs-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ca", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="crm-bench-load-sf-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            for mode in args.modes.split(","):
                print(f"[{size} {mode}] loading...", flush=True)
                rows.append(bench(size, mode, args.chunk, args.job_rows, Path(tmp)))
    report(
        NAME,
        rows,
        {
            "what": "Account upserts on HubSpot_Id__c into an empty sandbox org",
            "chunk": args.chunk,
            "bulk_job_rows": args.job_rows,
            "target_calls_vs_minimum": 1.05,
        },
    )
    bad = [r for r in rows if r["in_org"] != r["size"] or r["calls_vs_minimum"] > 1.05]
    for r in bad:
        print(f"target missed: {r}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
