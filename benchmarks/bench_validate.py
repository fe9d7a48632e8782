"""Validation benchmark: the expectation suites over 1,000,000 staged rows and a plan, time and memory.

Usage::

    python -m benchmarks.bench_validate                  # 1,000,000 staged rows + 250,000 plan rows
    python -m benchmarks.bench_validate --rows 20000     # smoke size
    python -m benchmarks.bench_validate --task-rows 1000000   # also the whole task on SQLite staging

The staged frames are generated in-process with numpy from one seed, typed as staging hands them
to the ``validate`` task (text ids, UTC timestamps, floats): 40% HubSpot contacts, 30% Salesforce
Contacts, 20% Opportunities, 10% deals; about 1% of emails are malformed, 0.5% of owners and
stages unknown, so every expectation has failing rows to find and report. The plan has a
quarter as many rows (creates, linked updates, deal rows with pipelines and stages).

Measured: the whole :func:`crm_sync.quality.validation.validate` (prepare, Great Expectations,
row masks, failure rows, held-back plan rows), with the GX import and context creation timed
apart (a once-per-task cost). Peak memory is the process high-water mark during validation
(``VmHWM`` reset just before), so it includes the input frames. Staging I/O is not included
there; ``--task-rows N`` also stages N rows (and a quarter as many plan rows) in a SQLite file
and times the whole ``validate`` task on them: reading, validating, writing the quarantine and
rewriting the held-back plan rows.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # type: ignore[import-not-found]
from crm_sync.plan import PLAN_COLUMNS


def _status(field: str) -> int:
    match = re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(match.group(1)) if match else 0


def peak_mib() -> float:
    return round(_status("VmHWM") / 1024, 1)


def reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _ids(prefix: str, n: int) -> np.ndarray:
    return np.char.add(prefix, np.arange(n).astype(str)).astype(object)


def _some(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    return rng.random(n) < share


def _emails(rng: np.random.Generator, n: int) -> np.ndarray:
    good = np.char.add(np.char.add("person", np.arange(n).astype(str)), "@example.com").astype(object)
    return np.where(_some(rng, n, 0.01), "broken-address", good).astype(object)


def _owners(rng: np.random.Generator, n: int, pool: np.ndarray) -> np.ndarray:
    owners = pool[rng.integers(0, len(pool), size=n)]
    return np.where(_some(rng, n, 0.005), "unknown-owner", owners).astype(object)


def _stamps(rng: np.random.Generator, n: int) -> pd.Series:
    lo, hi = (
        pd.Timestamp("2020-01-01", tz="UTC").value // 10**9,
        pd.Timestamp("2027-01-01", tz="UTC").value // 10**9,
    )
    return pd.Series(pd.to_datetime(rng.integers(lo, hi, size=n) * 10**9, utc=True))


def staged(rows: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    """The staged frames: ``rows`` records over four objects plus their reference data."""
    rng = np.random.default_rng(seed)
    users = _ids("005U", 200)
    owners = _ids("9", 200)
    stages = np.array(["Prospecting", "Qualification", "Proposal", "Closed Won", "Closed Lost"], dtype=object)
    n_hs_contact, n_sf_contact, n_opp = int(rows * 0.4), int(rows * 0.3), int(rows * 0.2)
    n_deal = rows - n_hs_contact - n_sf_contact - n_opp
    stage = stages[rng.integers(0, len(stages), size=n_opp)]
    hs_stage = np.char.add("s", rng.integers(0, 5, size=n_deal).astype(str)).astype(object)
    return {
        "sf_user": pd.DataFrame({"Id": users, "IsActive": True, "_deleted": False}),
        "hs_owner": pd.DataFrame({"id": owners, "archived": False, "_deleted": False}),
        "sf_opportunity_stage": pd.DataFrame(
            {"Id": _ids("01J", len(stages)), "ApiName": stages, "IsActive": True, "_deleted": False}
        ),
        "hs_pipeline_stage": pd.DataFrame(
            {"id": [f"s{i}" for i in range(5)], "pipeline_id": "101", "_deleted": False}
        ),
        "sf_record_type": pd.DataFrame({"Id": ["012A"], "Name": ["New Business"], "_deleted": False}),
        "rule_pipelines": pd.DataFrame({"hs_pipeline_id": ["101"], "label": ["Salesforce - New Business"]}),
        "rule_pipeline_stages": pd.DataFrame(
            {"hs_pipeline_id": "101", "hs_stage_id": [f"s{i}" for i in range(5)]}
        ),
        "sync_link": pd.DataFrame(
            {"object": "Contact", "sf_id": _ids("003C", 1000), "hs_id": _ids("", 1000)}
        ),
        "hs_contact": pd.DataFrame(
            {
                "id": _ids("", n_hs_contact),
                "email": _emails(rng, n_hs_contact),
                "hubspot_owner_id": _owners(rng, n_hs_contact, owners),
                "_deleted": _some(rng, n_hs_contact, 0.02),
            }
        ),
        "sf_contact": pd.DataFrame(
            {
                "Id": _ids("003C", n_sf_contact),
                "Email": _emails(rng, n_sf_contact),
                "OwnerId": _owners(rng, n_sf_contact, users),
                "_deleted": False,
            }
        ),
        "sf_opportunity": pd.DataFrame(
            {
                "Id": _ids("006O", n_opp),
                "StageName": np.where(_some(rng, n_opp, 0.005), "Haggling", stage).astype(object),
                "CloseDate": _stamps(rng, n_opp).dt.strftime("%Y-%m-%d").astype(object),
                "Amount": rng.integers(1, 10**6, size=n_opp).astype(float),
                "OwnerId": _owners(rng, n_opp, users),
                "_deleted": False,
            }
        ),
        "hs_deal": pd.DataFrame(
            {
                "id": _ids("3", n_deal),
                "pipeline": "101",
                "dealstage": np.where(_some(rng, n_deal, 0.005), "zz", hs_stage).astype(object),
                "closedate": _stamps(rng, n_deal),
                "amount": rng.integers(1, 10**6, size=n_deal).astype(float),
                "hubspot_owner_id": _owners(rng, n_deal, owners),
                "_deleted": False,
            }
        ),
    }


def plan(rows: int, seed: int = 11) -> pd.DataFrame:
    """A plan of ``rows`` rows: contact creates and linked updates, deal creates with stages."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 3, size=rows)
    ids = np.arange(rows).astype(str)
    records: dict[str, Any] = {
        "run_id": "bench",
        "target": "hubspot",
        "object": np.where(kind == 2, "deals", "contacts").astype(object),
        "action": np.where(kind == 1, "update", "create").astype(object),
        "source_id": np.where(
            kind == 1, np.char.add("003C", (ids.astype(int) % 1000).astype(str)), ids
        ).astype(object),
        "target_id": np.where(kind == 1, (ids.astype(int) % 1000).astype(str), None).astype(object),
        "fields": [
            {"pipeline": "101", "dealstage": f"s{i % 5}"} if k == 2 else {"email": f"p{i}@x.com"}
            for i, k in enumerate(kind.tolist())
        ],
        "rules": [["DEAL-1"]] * rows,
        "reason": None,
    }
    return pd.DataFrame(records, columns=list(PLAN_COLUMNS))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="staged rows over all objects")
    parser.add_argument("--plan-rows", type=int, default=None, help="plan rows (default: rows / 4)")
    parser.add_argument(
        "--task-rows",
        type=int,
        default=0,
        help="also time the whole validate task on a SQLite staging of this many rows (0: skip)",
    )
    args = parser.parse_args()
    plan_rows = args.plan_rows if args.plan_rows is not None else args.rows // 4

    started = time.perf_counter()
    from crm_sync.quality.gx import GxRunner
    from crm_sync.quality.validation import validate

    runner = GxRunner()
    gx_setup = time.perf_counter() - started
    frames = staged(args.rows)
    the_plan = plan(plan_rows)
    reset_peak()
    started = time.perf_counter()
    result = validate(frames, the_plan, runner=runner)
    seconds = time.perf_counter() - started
    rows = [
        {
            "object": f"{o.scope} {o.system} {o.object}",
            "rows": o.rows,
            "failed": o.failed,
            "rate_pct": round(100 * o.rate, 3),
        }
        for o in result.objects
        if o.rows
    ]
    rows.append(
        {
            "object": "TOTAL validate()",
            "rows": args.rows + plan_rows,
            "failed": len(result.failures),
            "seconds": round(seconds, 2),
            "peak_mib": peak_mib(),
        }
    )
    report(
        "bench_validate",
        rows,
        {
            "staged_rows": args.rows,
            "plan_rows": plan_rows,
            "validate_seconds": round(seconds, 2),
            "gx_import_and_context_seconds": round(gx_setup, 2),
            "peak_mib": peak_mib(),
            "held_back_plan_rows": len(result.plan_reasons),
            **(task_timing(args.task_rows) if args.task_rows else {}),
        },
    )
    return 0


def task_timing(rows: int) -> dict[str, Any]:
    """The ``validate`` task end to end on SQLite staging: read, validate, quarantine, rewrite."""
    import json
    import os
    import tempfile

    import sqlalchemy as sa
    from crm_sync import staging
    from crm_sync.tasks.validate import validate_plan

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["AIRFLOW_CONN_CRM_STAGING"] = json.dumps({"conn_type": "sqlite", "host": f"{tmp}/s.db"})
        staging.dispose_engines()
        engine = staging.staging_engine()
        staging.ensure_schema(engine)
        started = time.perf_counter()
        for table, frame in staged(rows).items():
            if table.startswith("rule_"):
                staging.replace_run_rows(engine, table, frame, "bench")
                continue
            target = staging.table_for(engine, table)
            for column in target.c:
                if isinstance(column.type, sa.Date) and column.name in frame:
                    frame[column.name] = pd.to_datetime(frame[column.name]).dt.date
            records = frame.astype(object).where(frame.notna(), None).to_dict("records")
            keys = [c.name for c in target.primary_key.columns]
            staging.upsert_rows(engine, table, records, keys, chunk_size=20_000)
        staging.write_plan(engine, "bench", plan(rows // 4))
        loading = time.perf_counter() - started
        started = time.perf_counter()
        validate_plan("bench")
        seconds = time.perf_counter() - started
        staging.dispose_engines()
    return {
        "task_rows": rows,
        "task_seconds": round(seconds, 2),
        "task_staging_load_seconds": round(loading, 1),
    }


if __name__ == "__main__":
    raise SystemExit(main())
