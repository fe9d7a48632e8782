"""Extraction benchmark: throughput, peak memory and API calls against the minimum possible.

Run: ``python -m benchmarks.bench_extract [--sizes 100000,1000000] [--staging sqlite|postgres]``.

Per size (total records across both CRMs, approximately) it

1. generates a scenario with ``crm-sandbox generate`` (``--accounts size/12``: the generator's
   ratios give about twelve records per account) and serves it with ``crm-sandbox serve`` in its
   own process, rate limits lifted (the point is crm-sync's own speed; the limits are exercised by
   the integration tests, and the table shows what HubSpot's real limits would cost);
2. runs the extraction task functions exactly as the DAG does, in a fresh worker process so its
   peak RSS is the extraction's alone: an initial full load, a second run with no changes, and a
   run after ``--changes`` Salesforce contacts and HubSpot contacts were updated through the APIs;
3. counts the requests each emulator served per run (``/__sandbox/stats``) and compares them with
   the minimum for that data: pages of 2,000 SOQL rows, 100 HubSpot list rows, 200 search rows.
   HubSpot calls are split into list pages (archived lists included: one call per object even
   when empty), search pages, association batch reads (1,000 records per call) and metadata
   (owners, pipelines, property options).

Salesforce objects above ``extract.bulk_threshold`` (10,000) are read through Bulk API 2.0, whose
result pages hold 10,000 rows, so a bulk read can beat the 2,000-row REST minimum.
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
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import peak_rss_mib, report

NAME = "extract"
SEARCH_ROWS, LIST_ROWS, SOQL_ROWS = 200, 100, 2000
#: HubSpot's documented limits, to translate call counts into wall time against a real portal.
HUBSPOT_REQUESTS_PER_10S, HUBSPOT_SEARCH_PER_SECOND = 190, 5


def worker_peak_rss_mib() -> float:
    """Peak RSS of this process image (``VmHWM``).

    ``getrusage`` would do on a fresh interpreter, but Linux carries ``ru_maxrss`` over from the
    parent through fork and exec, and the parent held the generated scenario; ``VmHWM`` is reset
    by exec, so it measures the extraction worker alone.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return peak_rss_mib()


def current_rss_mib() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return peak_rss_mib()


# -- orchestration (parent process) ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(scenario: Path) -> tuple[subprocess.Popen[str], int, int, str]:
    sf_port, hs_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crm_sandbox.cli", "serve", "--salesforce-port", str(sf_port),
         "--hubspot-port", str(hs_port), "--scenario", str(scenario),
         "--hubspot-requests-per-10s", "1000000000", "--hubspot-search-per-second", "1000000000",
         "--salesforce-daily-api-limit", "1000000000000"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("crm-sandbox ready:"):
            ca = line.strip().rsplit("ca_bundle=", 1)[1]
            return proc, sf_port, hs_port, ca
    raise RuntimeError(f"crm-sandbox serve exited with {proc.wait()}")


def bench_size(size: int, seed: int, changes: int, staging_kind: str, workdir: Path) -> list[dict[str, Any]]:
    from crm_sandbox.generate import GeneratorConfig, generate_file

    accounts = max(50, size // 12)
    path = workdir / f"scenario-{size}.json"
    started = time.perf_counter()
    counts = generate_file(GeneratorConfig(seed=seed, accounts=accounts), path)
    print(
        f"[{size}] generated {sum(counts.values()):,} records in {time.perf_counter() - started:.0f}s",
        flush=True,
    )
    proc, sf_port, hs_port, ca = _serve(path)
    print(f"[{size}] sandbox serving on {sf_port}/{hs_port}", flush=True)
    try:
        worker = subprocess.run(
            [sys.executable, "-m", "benchmarks.bench_extract", "--worker", "--sf-port", str(sf_port),
             "--hs-port", str(hs_port), "--ca", ca, "--changes", str(changes), "--staging", staging_kind,
             "--workdir", str(workdir)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        print(exc.stdout[-5000:], exc.stderr[-5000:], file=sys.stderr)
        raise
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        path.unlink(missing_ok=True)
    result: list[dict[str, Any]] = json.loads(worker.stdout.strip().splitlines()[-1])
    for row in result:
        row["size"] = size
    return result


# -- measurement (worker process) --------------------------------------------------------------


def _stats(url: str) -> Counter[str]:
    import requests

    body = requests.get(f"{url}/__sandbox/stats", timeout=60).json()
    return Counter({f"{r['method']} {r['path']}": r["count"] for r in body["requests"]})


def _minimum(results: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Pages the data needs at the documented page sizes (REST SOQL, HubSpot list/search)."""
    sf = sum(math.ceil(r["read"] / SOQL_ROWS) for k, r in results.items() if k.startswith("salesforce."))
    hs = 0
    for key, r in results.items():
        if key in ("hubspot.companies", "hubspot.contacts", "hubspot.deals", "hubspot.owners"):
            rows = SEARCH_ROWS if r["mode"] == "search" else LIST_ROWS
            hs += math.ceil(r["read"] / rows)
    return {"salesforce": sf, "hubspot": hs}


def _run(
    label: str, run_id: str, sf_url: str, hs_url: str, config: Any
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    from crm_sync.tasks import (
        HUBSPOT_OBJECTS,
        SALESFORCE_OBJECTS,
        commit_watermarks,
        extract_hubspot,
        extract_salesforce,
    )

    before_sf, before_hs = _stats(sf_url), _stats(hs_url)
    results: dict[str, dict[str, Any]] = {}
    timings: dict[str, float] = {}
    for system, objects, fn in (
        ("salesforce", SALESFORCE_OBJECTS, extract_salesforce),
        ("hubspot", HUBSPOT_OBJECTS, extract_hubspot),
    ):
        started = time.perf_counter()
        for obj in objects:
            results[f"{system}.{obj}"] = fn(obj, run_id=run_id, config=config)
        timings[system] = time.perf_counter() - started
    commit_watermarks(run_id)
    sf_calls = _stats(sf_url) - before_sf
    hs_calls = _stats(hs_url) - before_hs
    minimum = _minimum(results)
    read = {
        s: sum(r["read"] for k, r in results.items() if k.startswith(s)) for s in ("salesforce", "hubspot")
    }
    changed = sum(r["changed"] for r in results.values())
    assoc = sum(sum(a["read"] for a in r.get("associations", {}).values()) for r in results.values())
    search_calls = sum(c for k, c in hs_calls.items() if k.endswith("/search"))
    list_calls = sum(c for k, c in hs_calls.items() if k.startswith("GET /crm/v3/objects/"))
    assoc_calls = sum(c for k, c in hs_calls.items() if "/associations/" in k)
    meta_calls = sum(hs_calls.values()) - search_calls - list_calls - assoc_calls
    real_limits_s = max(
        search_calls / HUBSPOT_SEARCH_PER_SECOND, sum(hs_calls.values()) / (HUBSPOT_REQUESTS_PER_10S / 10)
    )
    total_s = sum(timings.values())
    row = {
        "run": label,
        "records": read["salesforce"] + read["hubspot"],
        "changed": changed,
        "seconds": round(total_s, 1),
        "records_per_s": round((read["salesforce"] + read["hubspot"]) / total_s) if total_s else None,
        "sf_records_per_s": round(read["salesforce"] / timings["salesforce"])
        if timings["salesforce"]
        else None,
        "hs_records_per_s": round(read["hubspot"] / timings["hubspot"]) if timings["hubspot"] else None,
        "assoc_edges": assoc,
        "peak_rss_mib": worker_peak_rss_mib(),
        "sf_calls": sum(sf_calls.values()),
        "sf_min_calls": minimum["salesforce"],
        "hs_calls": sum(hs_calls.values()),
        "hs_min_calls": minimum["hubspot"],
        "hs_list_calls": list_calls,
        "hs_search_calls": search_calls,
        "hs_assoc_calls": assoc_calls,
        "hs_meta_calls": meta_calls,
        "hs_at_real_limits_s": round(real_limits_s, 1),
        "sf_modes": ",".join(sorted({r["mode"] for k, r in results.items() if k.startswith("salesforce.")})),
    }
    print(f"{label}: {row}", file=sys.stderr, flush=True)
    return row, results


def _change(sf_url: str, hs_url: str, changes: int) -> dict[str, int]:
    """Update ``changes`` Salesforce contacts and HubSpot contacts through the real clients."""
    from crm_sync import staging
    from hubspot import HubSpot
    from simple_salesforce.api import Salesforce

    engine = staging.staging_engine()
    sf_ids = [str(i) for i in staging.read_frame(engine, "sf_contact", ["Id"]).Id if i][:changes]
    hs_ids = [str(i) for i in staging.read_frame(engine, "hs_contact", ["id"]).id][:changes]
    sf = Salesforce(instance_url=sf_url, session_id="bench", version="59.0")
    for start in range(0, len(sf_ids), 200):
        records = [
            {"attributes": {"type": "Contact"}, "Id": i, "Title": "Benchmarked"}
            for i in sf_ids[start : start + 200]
        ]
        sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records})
    batch = HubSpot(access_token="bench", host=hs_url).crm.contacts.batch_api
    for start in range(0, len(hs_ids), 100):
        batch.update(
            {
                "inputs": [
                    {"id": i, "properties": {"jobtitle": "Benchmarked"}} for i in hs_ids[start : start + 100]
                ]
            }
        )
    return {"salesforce": len(sf_ids), "hubspot": len(hs_ids)}


def worker(args: argparse.Namespace) -> None:
    import dataclasses

    from crm_sandbox.server import connection_env
    from crm_sync.settings import load_config

    env = connection_env(args.sf_port, args.hs_port, Path(args.ca))
    hubspot_conn = json.loads(env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
    hubspot_conn["extra"]["search_per_second"] = 0  # the server's limits are lifted too
    env["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = json.dumps(hubspot_conn)
    os.environ.update(env)
    if args.staging == "postgres":
        import sqlalchemy as sa

        schema = f"bench_extract_{os.getpid()}"
        with sa.create_engine("postgresql+psycopg2://root@127.0.0.1:5432/test").begin() as conn:
            conn.execute(sa.text(f"drop schema if exists {schema} cascade; create schema {schema}"))
        os.environ["AIRFLOW_CONN_CRM_STAGING"] = json.dumps(
            {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "root", "schema": "test",
             "extra": {"options": f"-csearch_path={schema}"}}
        )  # fmt: skip
    else:
        db = Path(args.workdir) / f"staging-{os.getpid()}.db"
        os.environ["AIRFLOW_CONN_CRM_STAGING"] = json.dumps({"conn_type": "sqlite", "host": str(db)})
    sf_url, hs_url = f"https://127.0.0.1:{args.sf_port}", f"http://127.0.0.1:{args.hs_port}"
    config = load_config()
    config = dataclasses.replace(config, extract=dataclasses.replace(config.extract, bulk_poll_seconds=0.2))
    # Warm up what an Airflow worker has loaded before any task runs (Airflow itself, the
    # connection lookup), so the timings are extraction's own.
    from airflow.sdk import BaseHook

    BaseHook.get_connection("salesforce_default")
    baseline = current_rss_mib()
    rows = []
    row, _ = _run("1 initial load", "bench-1", sf_url, hs_url, config)
    rows.append({**row, "rss_before_mib": baseline})
    row, _ = _run("2 no changes", "bench-2", sf_url, hs_url, config)
    rows.append(row)
    changed = _change(sf_url, hs_url, args.changes)
    row, results = _run(
        f"3 after {changed['salesforce']:,}+{changed['hubspot']:,} updates", "bench-3", sf_url, hs_url, config
    )
    row["sf_contact_changed"] = results["salesforce.Contact"]["changed"]
    row["hs_contact_changed"] = results["hubspot.contacts"]["changed"]
    rows.append(row)
    if args.staging == "postgres":
        import sqlalchemy as sa
        from crm_sync import staging

        staging.dispose_engines()
        with sa.create_engine("postgresql+psycopg2://root@127.0.0.1:5432/test").begin() as conn:
            conn.execute(sa.text(f"drop schema if exists {schema} cascade"))
    print(json.dumps(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000", help="comma-separated total record counts")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--changes", type=int, default=10_000, help="contacts updated on each side before run 3"
    )
    parser.add_argument("--staging", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sf-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hs-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--ca", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            rows += bench_size(size, args.seed, args.changes, args.staging, Path(tmp))
    ordered = [{"size": r.pop("size"), **r} for r in rows]
    report(
        f"{NAME}-{args.staging}",
        ordered,
        {
            "sizes": args.sizes,
            "seed": args.seed,
            "changes": args.changes,
            "staging": args.staging,
            "page_minimum": f"SOQL {SOQL_ROWS}, HubSpot list {LIST_ROWS}, search {SEARCH_ROWS} rows per call",
            "note": "emulators in a separate process with rate limits lifted; hs_at_real_limits_s = HubSpot "
            "calls at 190/10s and 5 searches/s",
        },
    )


if __name__ == "__main__":
    main()
