"""Report benchmark: compare every synced field of N linked pairs, build the document and the HTML.

Usage::

    python -m benchmarks.bench_report                  # 600,000 linked pairs
    python -m benchmarks.bench_report --pairs 10000    # smoke size

Pairs are generated in-process with numpy from one seed: 1/6 Account/company pairs, 1/2
Contact/contact pairs, 1/3 Opportunity/deal pairs, typed as staging hands them over; about 2%
of each side's values differ (or are blank on one side), so comparison, examples and the charts
have work to do. Measured separately: the comparison (:func:`crm_sync.quality.comparison.compare_all`,
owner map included), the document and the HTML rendering; peak memory is the process
high-water mark during the three (``VmHWM`` reset first). Staging I/O is not included.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import report  # type: ignore[import-not-found]
from crm_sync.quality import findings, render
from crm_sync.quality.comparison import compare_all
from crm_sync.quality.report import document
from crm_sync.rules.owners import build_owner_map
from crm_sync.settings import load_config


def peak_mib() -> float:
    match = re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())
    return round(int(match.group(1)) / 1024, 1) if match else 0.0


def reset_peak() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _ids(prefix: str, n: int) -> np.ndarray:
    return np.char.add(prefix, np.arange(n).astype(str)).astype(object)


def _drift(rng: np.random.Generator, values: np.ndarray, other: Any) -> np.ndarray:
    """``values`` with ~2% replaced by ``other`` (a different value, or None: one side blank)."""
    out = values.copy()
    out[rng.random(len(values)) < 0.02] = other
    return out


def frames(pairs: int, seed: int = 5) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n_acc, n_con = pairs // 6, pairs // 2
    n_opp = pairs - n_acc - n_con
    names = _ids("Company ", n_acc)
    emails = np.char.add(_ids("p", n_con).astype(str), "@example.com").astype(object)
    amounts = rng.integers(1, 10**6, size=n_opp).astype(float)
    close = pd.Series(pd.to_datetime("2026-01-01") + pd.to_timedelta(rng.integers(0, 365, n_opp), unit="D"))
    links = pd.concat(
        [
            pd.DataFrame({"object": "Account", "sf_id": _ids("001", n_acc), "hs_id": _ids("1", n_acc)}),
            pd.DataFrame({"object": "Contact", "sf_id": _ids("003", n_con), "hs_id": _ids("2", n_con)}),
            pd.DataFrame({"object": "Opportunity", "sf_id": _ids("006", n_opp), "hs_id": _ids("3", n_opp)}),
        ],
        ignore_index=True,
    )
    return {
        "sync_link": links,
        "sf_user": pd.DataFrame(
            {"Id": ["005A"], "Email": ["a@x.com"], "IsActive": [True], "_deleted": False}
        ),
        "hs_owner": pd.DataFrame({"id": ["901"], "email": ["a@x.com"], "_deleted": False}),
        "sf_account": pd.DataFrame(
            {
                "Id": _ids("001", n_acc),
                "Name": names,
                "Website": "https://www.example.com",
                "OwnerId": "005A",
                "NumberOfEmployees": 50.0,
                "_deleted": False,
            }
        ),
        "hs_company": pd.DataFrame(
            {
                "id": _ids("1", n_acc),
                "name": _drift(rng, names, "Other Co"),
                "domain": "example.com",
                "hubspot_owner_id": "901",
                "numberofemployees": _drift(rng, np.full(n_acc, 50.0), None),
                "_deleted": False,
            }
        ),
        "sf_contact": pd.DataFrame(
            {
                "Id": _ids("003", n_con),
                "FirstName": "Pat",
                "LastName": _ids("L", n_con),
                "Email": emails,
                "OwnerId": "005A",
                "_deleted": False,
            }
        ),
        "hs_contact": pd.DataFrame(
            {
                "id": _ids("2", n_con),
                "firstname": _drift(rng, np.full(n_con, "Pat", dtype=object), "Patricia"),
                "lastname": _ids("L", n_con),
                "email": emails,
                "hubspot_owner_id": "901",
                "_deleted": False,
            }
        ),
        "sf_opportunity": pd.DataFrame(
            {
                "Id": _ids("006", n_opp),
                "Name": _ids("Deal ", n_opp),
                "Amount": amounts,
                "CloseDate": close.dt.strftime("%Y-%m-%d").astype(object),
                "StageName": "Closed Won",
                "CurrencyIsoCode": "USD",
                "OwnerId": "005A",
                "_deleted": False,
            }
        ),
        "hs_deal": pd.DataFrame(
            {
                "id": _ids("3", n_opp),
                "dealname": _ids("Deal ", n_opp),
                "amount": _drift(rng, amounts, 1.0),
                "closedate": close.dt.tz_localize("UTC"),
                "dealstage": "won",
                "deal_currency_code": "USD",
                "hubspot_owner_id": "901",
                "_deleted": False,
            }
        ),
        "sf_opportunity_stage": pd.DataFrame({"ApiName": ["Closed Won"], "MasterLabel": ["Closed Won"]}),
        "hs_pipeline_stage": pd.DataFrame({"id": ["won"], "pipeline_id": ["101"], "label": ["Closed Won"]}),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=600_000, help="linked pairs over all objects")
    args = parser.parse_args()
    config = load_config()
    staged = frames(args.pairs)
    reset_peak()
    started = time.perf_counter()
    owners = build_owner_map(staged["sf_user"], staged["hs_owner"], config.integration_user_email)
    objects = compare_all(staged, config, owners, config.quality.examples)
    compared = time.perf_counter() - started
    found = {
        "duplicates": [],
        "quarantine": findings.open_entries(pd.DataFrame(), (), (), 5),
        "dead_letters": findings.open_entries(None, (), (), 5),
        "mixed_currency": [],
        "rollups": [],
    }
    started = time.perf_counter()
    doc = document(
        run_id="bench",
        dag_id="bench",
        source_run_id=None,
        generated_at=datetime.now(UTC),
        objects=objects,
        findings=found,
        history=[],
    )
    documented = time.perf_counter() - started
    started = time.perf_counter()
    page = render.html(doc)
    rendered = time.perf_counter() - started
    rows = [
        {
            "object": o["object"],
            "pairs": o["pairs_compared"],
            "fields": len(o["fields"]),
            "match_rate_pct": round(
                100
                * sum(f["matches"] for f in o["fields"])
                / max(sum(f["compared"] for f in o["fields"]), 1),
                2,
            ),
        }
        for o in doc["objects"]
    ]
    rows.append({"object": "TOTAL", "pairs": doc["summary"]["pairs_compared"], "seconds": round(compared, 2)})
    report(
        "bench_report",
        rows,
        {
            "pairs": args.pairs,
            "compare_seconds": round(compared, 2),
            "document_seconds": round(documented, 3),
            "html_seconds": round(rendered, 3),
            "html_kib": round(len(page.encode()) / 1024, 1),
            "peak_mib": peak_mib(),
            "match_rate": doc["summary"]["match_rate"],
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
