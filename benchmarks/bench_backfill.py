"""Backfill benchmark: N historical Opportunities through crm_backfill_opportunities' tasks.

Run: ``python -m benchmarks.bench_backfill [--sizes 10000] [--chunk-days 180]``.

Per size, a generated org (``crm_sandbox.generate``: N Opportunities over 2022-2025 with their
Accounts, Contacts and contact roles, all created before ``sync_enabled_at``; an empty portal;
Opportunity ``Type`` removed, as HubSpot's ``dealtype`` has no value maps yet) is served by
``crm-sandbox serve`` in its own process with HubSpot's rate limits on, so the peak RSS printed
is the backfill's alone. The chunks run in-process through the same task functions the DAG's
tasks call (``crm_sync.tasks.backfill``), one after another, on a SQLite staging file.

Columns:

- ``seconds``, ``records_per_s``: wall time of the whole backfill, Opportunities per second;
- ``chunks``, ``s_per_chunk``: chunks and mean seconds per chunk;
- ``rss_first_mib`` / ``peak_rss_mib``: peak RSS after the first chunk and at the end, and
  ``chunk_peak_max_mib``: the largest of each chunk's own peak (``VmHWM`` reset before each
  chunk; printed per chunk with the seconds of each step and kept under ``meta.per_chunk``).
  A chunk finds its window's neighbourhood (``crm_sync.backfill.focus``) in staging's key
  columns, then reads only the neighbourhood's rows, so its peak follows the chunk, not the
  number of chunks. In this generated org every Account has Opportunities in every year, so a
  window's neighbourhood holds most of its Accounts' other Opportunities too (rollup and ROLL-7
  context), and the windows of late 2025 hold the most Opportunities.
- ``hs_floor_s``: the seconds the HubSpot calls made need at HubSpot's published limits (190
  requests per 10 s; 5 searches per second), the floor a real portal sets whatever crm-sync does.
  ``--limits relaxed`` serves the sandbox without those limits, and tells the client so (its
  connection's ``search_per_second``), so a large run measures crm-sync and the emulator.
- ``emulator_rss_mib``: the sandbox process at the end (it holds both CRMs in memory);
- ``deals`` vs ``expected``: HubSpot deals created and the live (not deleted) Opportunities;
- ``hs_writes`` vs ``hs_min_writes``: HubSpot write requests against the fewest calls that could
  write the same records, all chunks pooled (:data:`PER_CALL`); the difference is what chunking
  and the per-chunk partial batches cost;
- ``sf_writes`` vs ``sf_min_writes``: the same for Salesforce;
- ``sf_reads``: Salesforce requests that read (queries, describes, Bulk API 2.0 results).

Measured (2026-12-06, 2-core VM, ``--limits relaxed``):

- **1,000,000** Opportunities, ``--chunk-days 90`` (17 chunks), on commit 9620cd0 (before the
  key-column neighbourhood reads): 4,608 s (77 min), 216 records/s; 995,061 deals created for
  995,061 live Opportunities; HubSpot writes 19,643 against a minimum of 18,576 (1.06x),
  Salesforce 7,397 against 7,376; ``hs_floor_s`` 4,063 (the same calls at HubSpot's published
  limits need 68 min, mostly its 20,317 searches at 5 per second); emulator 10.3 GiB. Chunk
  sizes grow from 1,946 to 199,822 Opportunities (the generator's dates lean to recent years)
  and each chunk's peak with them, 1.1 to 13.7 GiB (1.1 GiB of it the scenario generator's,
  which now runs in a child process): that commit still read the whole of staging to find each
  neighbourhood. The two largest chunks split into about 20-27% extraction
  (mostly reading back what the chunk before wrote), 50% rules (finding the neighbourhood in all
  of staging included), 10-20% loads and 10% commit.
- **100,000** in 5 chunks (``--chunk-days 365``), current code: 317 s, 314 records/s (990 s
  before the client's search pacing followed the relaxed sandbox); 99,493 deals of 99,493;
  HubSpot writes 1,969 against 1,853, Salesforce 743 against 739; ``hs_floor_s`` 250; the
  largest chunk (58,766 Opportunities) peaks at 1,907 MiB, in its rules step (``transform``:
  extract 689, load 1,052, commit 1,054 MiB); emulator 1.3 GiB.
- **50,000**, the same range in 5 chunks (``--chunk-days 365``) and in 17 (``90``), current
  code: 151 s and 264 s; the largest chunk peak 1,139 MiB and 832 MiB. More chunks never raise
  the peak: it follows the largest chunk (29,625 and 10,132 Opportunities).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.common import peak_rss_mib, report

NAME = "backfill"
START, END = "2022-01-01", "2026-01-01"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scenario(size: int, seed: int, path: Path) -> dict[str, int]:
    """Write the scenario file; returns the counts the minimum calls are computed from."""
    from crm_sandbox.generate import GeneratorConfig, generate_scenario

    accounts = max(10, size // 4)
    scenario = generate_scenario(
        GeneratorConfig(
            seed=seed,
            accounts=accounts,
            contacts_per_account=1,
            leads=0,
            opportunities=size,
            hubspot_companies=0,
            hubspot_contacts=0,
            hubspot_deals=0,
            linked_fraction=0.0,
            duplicate_fraction=0.0,
            start=f"{START}T00:00:00Z",
            as_of="2025-12-31T00:00:00Z",
        )
    )
    sf = scenario["salesforce"]
    for opp in sf["Opportunity"]:
        opp.pop("Type", None)
    path.write_text(json.dumps(scenario), encoding="utf-8")
    return {"opportunities": sum(1 for o in sf["Opportunity"] if not o.get("IsDeleted"))}


#: HubSpot's published limits (private app, Professional/Enterprise): 190 requests per 10 s,
#: and 5 search requests per second (developers.hubspot.com, "API usage guidelines and limits").
HUBSPOT_PER_10S, HUBSPOT_SEARCH_PER_S = 190, 5
#: ``--limits relaxed`` serves HubSpot this much faster, so a 1M run measures crm-sync and the
#: emulator rather than HubSpot's quota; ``hs_floor_s`` then gives the time the same calls need
#: at the published limits.
RELAXED = {"--hubspot-requests-per-10s": "100000", "--hubspot-search-per-second": "10000"}


def _serve(scenario: Path, limits: str = "real") -> tuple[subprocess.Popen[str], dict[str, str]]:
    sf_port, hs_port = _free_port(), _free_port()
    ports = ["--salesforce-port", str(sf_port), "--hubspot-port", str(hs_port)]
    relaxed = [v for pair in RELAXED.items() for v in pair] if limits == "relaxed" else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "crm_sandbox.cli", "serve", *ports, *relaxed, "--scenario", str(scenario)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("crm-sandbox ready:"):
            break
    else:
        raise RuntimeError(f"crm-sandbox serve exited with {proc.wait()}")
    exports = subprocess.run(
        [sys.executable, "-m", "crm_sandbox.cli", "connections", *ports],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    env = {}
    for line in exports.splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = shlex.split(value)[0]
    if limits == "relaxed":  # the client paces searches at the portal's limit: tell it this one's
        hubspot = json.loads(env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
        hubspot.setdefault("extra", {})["search_per_second"] = float(RELAXED["--hubspot-search-per-second"])
        env["AIRFLOW_CONN_HUBSPOT_DEFAULT"] = json.dumps(hubspot)
    return proc, env


def _stats(base_url: str, ca: str | None = None) -> dict[str, Any]:
    from crm_sandbox.stats import fetch_stats

    return fetch_stats(base_url, verify=ca or True)


def _search_calls(stats: dict[str, Any]) -> int:
    return sum(int(row["count"]) for row in stats.get("requests", []) if str(row["path"]).endswith("/search"))


def hubspot_floor_s(stats: dict[str, Any]) -> float:
    """Seconds the HubSpot calls made need at least at the published limits (search apart)."""
    search = _search_calls(stats)
    other = int(stats["total"]) - search
    return round(max(other / (HUBSPOT_PER_10S / 10), search / HUBSPOT_SEARCH_PER_S), 1)


def _count(stats: dict[str, Any], *, writes: bool) -> int:
    from crm_sandbox.stats import write_requests

    written = sum(write_requests(stats).values())
    return written if writes else int(stats["total"]) - written


def bench_size(size: int, chunk_days: int, seed: int, workdir: Path, limits: str = "real") -> dict[str, Any]:
    from crm_sync import staging
    from crm_sync.tasks import backfill

    # Generated in a child process: the generator's memory (1.1 GiB at 1M) is not the backfill's.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
        counts = pool.submit(_scenario, size, seed, workdir / f"scenario-{size}.json").result()
    proc, env = _serve(workdir / f"scenario-{size}.json", limits)
    try:
        os.environ.update(env)
        os.environ["AIRFLOW_CONN_CRM_STAGING"] = json.dumps(
            {"conn_type": "sqlite", "host": str(workdir / f"staging-{size}.db")}
        )
        staging.dispose_engines()
        sf_url = json.loads(env["AIRFLOW_CONN_SALESFORCE_DEFAULT"])["extra"]["instance_url"]
        hs_url = json.loads(env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])["extra"]["host"]
        started = time.perf_counter()
        rss_first = None
        per_chunk = []
        chunks = backfill.plan_opportunity_chunks(START, END, chunk_days, dag_run_id=f"bench-{size}")
        for chunk in chunks:
            row = _run_chunk(backfill, chunk, f"bench-{size}", proc.pid)
            per_chunk.append(row)
            rss_first = rss_first or peak_rss_mib()
            print(
                f"[{size}] chunk {chunk['index'] + 1}/{len(chunks)}: {time.perf_counter() - started:.0f} s "
                + " ".join(f"{k}={v}" for k, v in row.items()),
                flush=True,
            )
        elapsed = time.perf_counter() - started
        sf_stats, hs_stats = _stats(sf_url, env.get("REQUESTS_CA_BUNDLE")), _stats(hs_url)
        written = _written(staging.staging_engine())
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    n = counts["opportunities"]
    return {
        "size": size,
        "chunks": len(chunks),
        "seconds": round(elapsed, 1),
        "records_per_s": round(n / elapsed, 1),
        "s_per_chunk": round(elapsed / len(chunks), 1),
        "deals": written.get(("hubspot", "deals", "create"), 0),
        "expected": n,
        "hs_writes": _count(hs_stats, writes=True),
        "hs_min_writes": _minimum(written, "hubspot"),
        "sf_writes": _count(sf_stats, writes=True),
        "sf_min_writes": _minimum(written, "salesforce"),
        "sf_reads": _count(sf_stats, writes=False),
        "hs_reads": _count(hs_stats, writes=False),
        "hs_search_calls": _search_calls(hs_stats),
        "hubspot_limits": limits,
        "hs_floor_s": hubspot_floor_s(hs_stats),
        "rss_first_mib": rss_first,
        # Resetting VmHWM per chunk resets ru_maxrss too: the run's peak is the largest chunk's.
        "peak_rss_mib": max(peak_rss_mib(), *(r["peak_mib"] for r in per_chunk)),
        "chunk_peak_max_mib": max(r["peak_mib"] for r in per_chunk),
        "emulator_rss_mib": per_chunk[-1]["emulator_mib"],
        "per_chunk": per_chunk,
    }


def _run_chunk(backfill: Any, chunk: dict[str, Any], dag_run_id: str, emulator_pid: int) -> dict[str, Any]:
    """One chunk through the DAG's task functions: seconds and peak RSS per step (``VmHWM`` reset
    before each), so a peak that follows N rather than the chunk shows, and in which step."""
    steps: dict[str, float] = {}
    peaks: dict[str, float] = {}

    def step(name: str, run: Callable[[], Any]) -> Any:
        _reset_peak()
        started = time.perf_counter()
        out = run()
        steps[f"{name}_s"] = round(time.perf_counter() - started, 1)
        peaks[f"{name}_mib"] = _status_mib("self", "VmHWM")
        return out

    state = step(
        "extract",
        lambda: backfill.extract_chunk(chunk, dag_id=backfill.BACKFILL_DAG_ID, dag_run_id=dag_run_id),
    )
    state = step("transform", lambda: backfill.transform_chunk(state))
    step("load", lambda: [backfill.load_chunk(target, state) for target in ("salesforce", "hubspot")])
    step("commit", lambda: backfill.commit_chunk(state))
    return {
        "chunk": chunk["index"] + 1,
        "opportunities": state.get("records", 0),
        **steps,
        "peak_mib": max(peaks.values()),
        **{f"peak_{k}": v for k, v in peaks.items()},
        "emulator_mib": _status_mib(str(emulator_pid), "VmRSS"),
    }


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux 4.0+)


def _status_mib(pid: str, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _written(engine: Any) -> dict[tuple[str, str, str], int]:
    """Records written, by (target, object, action), from the load journals of every chunk."""
    import sqlalchemy as sa
    from crm_sync import staging

    journal = staging.load_journal
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(journal.c.target, journal.c.object, journal.c.action, sa.func.count())
            .where(journal.c.ok.is_(True))
            .group_by(journal.c.target, journal.c.object, journal.c.action)
        ).all()
    return {(str(t), str(o), str(a)): int(n) for t, o, a, n in rows}


#: Records per write call, by (target, object): the writers' batch sizes (HubSpot: 100 per
#: batch call, 1,000 per v4 association batch, one call per pipeline; Salesforce: 200 per sObject
#: Collections call). ``link`` rows pair existing records and cost no call.
PER_CALL: dict[tuple[str, str], int] = {("hubspot", "associations"): 1000, ("hubspot", "pipelines"): 1}


def _minimum(written: dict[tuple[str, str, str], int], target: str) -> int:
    """Fewest write calls for those records if each object and action went in full batches."""
    default = 100 if target == "hubspot" else 200
    return sum(
        math.ceil(n / PER_CALL.get((t, obj), default))
        for (t, obj, action), n in written.items()
        if t == target and action != "link"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="100000", help="comma-separated Opportunity counts")
    parser.add_argument("--chunk-days", type=int, default=180, help="days per chunk")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--limits", choices=("real", "relaxed"), default="real", help="HubSpot rate limits of the sandbox"
    )
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(bench_size(size, args.chunk_days, args.seed, Path(tmp), args.limits))
    per_chunk = {row["size"]: row.pop("per_chunk") for row in rows}
    report(
        NAME,
        rows,
        {
            "sizes": args.sizes,
            "chunk_days": args.chunk_days,
            "range": f"[{START}, {END})",
            "targets": "deals == expected; hs_writes close to hs_min_writes; "
            "peak_rss_mib close to rss_first_mib",
            "note": "emulator in its own process (HubSpot's rate limits on unless --limits relaxed); "
            "chunks run in-process through the DAG's task functions. 1M takes about 77 minutes on a "
            "2-core machine with --limits relaxed (see the module docstring), so run_all runs 100k.",
            "per_chunk": per_chunk,
        },
    )


if __name__ == "__main__":
    main()
