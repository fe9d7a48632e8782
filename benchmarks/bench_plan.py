"""Plan benchmark: the whole rule pipeline over 1,000,000 Opportunities, 500,000 Contacts and
200,000 Accounts, time and peak memory; and the rollups as ONE DuckDB SQL query for comparison.

Usage::

    python benchmarks/bench_plan.py                  # full size (targets: < 60 s, < 3 GiB)
    python benchmarks/bench_plan.py --scale 0.1      # a tenth of every count
    python -m benchmarks.bench_plan --quick          # a tenth, one repeat: the smoke run

How it is built, and why:

* The staged frames are generated in-process with numpy from one seed (deterministic), shaped
  like a steady-state org a while after sync was switched on: 60% of Accounts, Contacts and
  Opportunities are linked (with link table rows, link properties on both sides and SYNC-3
  snapshots); of the linked pairs 5% were edited in Salesforce and 5% in HubSpot since the last
  sync; the rest are new on one side (creates), older than ``sync_enabled_at`` (DEAL-9 skips),
  in HubSpot's own pipeline (DEAL-3 skips), or broken (quarantine). Opportunities carry two
  currencies so DEAL-8 and the mixed-currency flags have work to do. Column types are the ones
  staging hands the rule tasks (text ids, UTC timestamps, floats, booleans).
* ``build_plan`` runs every stage in order, each stage timed separately. Peak memory is the
  process's high-water mark *during planning* (``VmHWM`` reset just before, via
  ``/proc/self/clear_refs``), so it includes the input frames but not the generator's temporaries.
* The rollups (ROLL-1..5 and the DEAL-8 currency check, contacts and companies) are timed twice
  over the same post-plan deal state: our vectorized groupby (``compute_rollups``), and one
  DuckDB SQL query. The results are compared, so the comparison is between equal answers.

Measurements (full size, seed 7, on the shared 2-core machine; wall seconds there vary by a
third with the other jobs' load, so the planning process's CPU seconds, from a second run of
the same stages, are given too):

===============  ========================  ========================
stage            main 038487e (s / CPU s)  branch perf (s / CPU s)
===============  ========================  ========================
match_contacts   11.7 / 12.7              10.5 / 10.6
assign_owners    0.1 / 0.1                0.0 / 0.0
dedup_accounts   11.1 / 11.9              7.8 / 6.7
name_pipelines   1.2 / 1.2                0.5 / 0.5
plan_deals       45.0 / 45.2              37.3 / 38.0
compute_rollups  13.8 / 15.8              8.7 / 9.0
build_plan       14.6 / 12.2              9.5 / 11.5
TOTAL            97.4 / 99.0              74.3 / 76.1
peak RSS         3,424 MiB                3,335 MiB
===============  ========================  ========================

(main measured 78.2 s and 3.43 GiB on a quiet machine.) Issue 13 asks for < 60 s and < 3 GiB.
Most of the peak is the stage outputs themselves: until 2026-12-06 equal texts were one string
per cell (a million ``"USD"`` codes, snapshot and rollup JSON values, the sync time on every
snapshot row, skip reasons, per-row rule lists and the empty fields of skip rows). They are now
one string each (``upper_codes``, ``iso_texts``, ``shared_texts``), and every table is identical.
Measured back to back on the quiet machine of 2026-12-06 (a faster VM than the one above: the
same commit took 79-89 s there), full size:

=================  =================  ==================
stage              before (859d55a)   after (shared texts)
=================  =================  ==================
match_contacts     7.69               6.16
dedup_accounts     4.18               3.65
plan_deals         24.27              21.60
compute_rollups    5.23               4.92
build_plan         5.17               5.52
TOTAL              46.82 s            42.12 s
peak RSS           3,366 MiB          2,981 MiB (2.91 GiB)
=================  =================  ==================

Both targets are met there (``meets_time_target`` and ``meets_memory_target`` true); rollups
1.50 s against DuckDB's 0.59 s (2.5x, target <= 3x).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:  # the shared report helper, when present (benchmarks/common.py)
    from common import report as _report  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - fallback keeps the benchmark standalone
    _report = None

from crm_sync.rules import pipeline as rules_pipeline
from crm_sync.rules.inputs import RuleInputs
from crm_sync.rules.rollups import compute_rollups
from crm_sync.settings import SyncConfig, load_config

ENABLED = pd.Timestamp("2026-01-01", tz="UTC")
NOW = datetime(2026, 6, 1, tzinfo=UTC)
#: Issue 13's targets for the whole pipeline at full size.
TARGET_SECONDS, TARGET_PEAK_GIB = 60, 3
STAGES = [
    ("Prospecting", 10, False, False),
    ("Qualification", 20, False, False),
    ("Needs Analysis", 30, False, False),
    ("Proposal", 60, False, False),
    ("Negotiation", 80, False, False),
    ("Closed Won", 100, True, True),
    ("Closed Lost", 0, True, False),
]
RECORD_TYPES = [
    ("012000000000001AAA", "New Business"),
    ("012000000000002AAA", "Renewal"),
    ("012000000000003AAA", "Upsell"),
]
WORDS = [
    "Alpha", "Bright", "Cedar", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Iris", "Juniper", "Kestrel",
    "Lumen", "Maple", "Nimbus", "Onyx", "Pioneer", "Quartz", "Raven", "Summit", "Tidal", "Umber", "Vertex",
    "Willow", "Xenon", "Yarrow", "Zephyr", "Atlas", "Beacon", "Comet", "Dune", "Echo", "Fjord", "Glacier",
    "Horizon", "Indigo", "Jade", "Keystone", "Lagoon", "Meadow", "Nova",
]  # fmt: skip


# --------------------------------------------------------------------------- memory


def _status(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    match = re.search(rf"{field}:\s+(\d+)", text)
    return int(match.group(1)) if match else 0


def rss_mib() -> float:
    return round(_status("VmRSS") / 1024, 1)


def peak_mib() -> float:
    return round(_status("VmHWM") / 1024, 1)


def reset_peak() -> None:
    """Reset the high-water mark so the next peak is the measured work's own (Linux)."""
    with contextlib.suppress(OSError):  # not Linux: the peak then includes generation
        Path("/proc/self/clear_refs").write_text("5")


# --------------------------------------------------------------------------- generator


def _ids(prefix: str, n: int, start: int = 0) -> np.ndarray:
    numbers = np.arange(start, start + n).astype(str)
    return np.char.add(prefix, np.char.zfill(numbers, 15 - len(prefix) + 3)).astype(object)


def _hs_ids(n: int, start: int) -> np.ndarray:
    return np.arange(start, start + n).astype(str).astype(object)


def _stamps(rng: np.random.Generator, n: int, start: str, end: str) -> pd.Series:
    lo, hi = pd.Timestamp(start, tz="UTC").value, pd.Timestamp(end, tz="UTC").value
    ns = rng.integers(lo // 10**9, hi // 10**9, size=n) * 10**9
    return pd.Series(pd.to_datetime(ns, utc=True))


def _pick(rng: np.random.Generator, pool: list[str], n: int) -> np.ndarray:
    return np.asarray(pool, dtype=object)[rng.integers(0, len(pool), size=n)]


def generate(n_opps: int, n_contacts: int, n_accounts: int, seed: int) -> RuleInputs:
    """Staged frames of a steady-state org (see the module docstring), deterministic per seed."""
    rng = np.random.default_rng(seed)
    linked = 0.6
    n_users = 500

    # Users and owners: 400 of 500 users have a HubSpot owner with the same email.
    user_ids = _ids("005", n_users)
    emails = np.array([f"user{i}@northwind-demo.com" for i in range(n_users)], dtype=object)
    emails[0] = "integration@northwind-demo.com"
    sf_user = pd.DataFrame(
        {
            "Id": user_ids,
            "Email": emails,
            "FirstName": [f"First{i}" for i in range(n_users)],
            "LastName": [f"Last{i}" for i in range(n_users)],
            "Name": [f"First{i} Last{i}" for i in range(n_users)],
            "IsActive": True,
            "_deleted": False,
        }
    )
    hs_owner = pd.DataFrame(
        {
            "id": [str(1000 + i) for i in range(400)],
            "email": emails[:400],
            "firstName": [f"First{i}" for i in range(400)],
            "lastName": [f"Last{i}" for i in range(400)],
            "archived": False,
        }
    )
    owner_of_user = dict(zip(user_ids[:400], hs_owner["id"], strict=True))

    sf_record_type = pd.DataFrame(
        {
            "Id": [r for r, _ in RECORD_TYPES],
            "Name": [n for _, n in RECORD_TYPES],
            "SobjectType": "Opportunity",
            "IsActive": True,
            "_deleted": False,
        }
    )
    sf_stage = pd.DataFrame(
        {
            "Id": [f"01J{i:015d}" for i in range(len(STAGES))],
            "ApiName": [s[0] for s in STAGES],
            "MasterLabel": [s[0] for s in STAGES],
            "SortOrder": list(range(1, len(STAGES) + 1)),
            "DefaultProbability": [s[1] for s in STAGES],
            "IsClosed": [s[2] for s in STAGES],
            "IsWon": [s[3] for s in STAGES],
            "IsActive": True,
            "_deleted": False,
        }
    )
    pipe_ids = [str(70_000 + i) for i in range(len(RECORD_TYPES))]
    hs_pipeline = pd.DataFrame(
        {
            "id": [*pipe_ids, "default"],
            "label": [f"Salesforce - {n}" for _, n in RECORD_TYPES] + ["Sales Pipeline"],
            "displayOrder": [*range(1, len(RECORD_TYPES) + 1), 0],
            "archived": False,
        }
    )
    stage_rows = []
    for p, pid in enumerate(pipe_ids):
        for i, (name, prob, closed, won) in enumerate(STAGES):
            stage_rows.append(
                {
                    "id": f"{pid}-{i}",
                    "pipeline_id": pid,
                    "label": name,
                    "displayOrder": i,
                    "probability": 1.0 if won else (0.0 if closed else prob / 100),
                    "isClosed": closed,
                    "archived": False,
                }
            )
        del p
    stage_rows.append(
        {"id": "appointmentscheduled", "pipeline_id": "default", "label": "Appointment", "displayOrder": 0,
         "probability": 0.2, "isClosed": False, "archived": False}
    )  # fmt: skip
    hs_pipeline_stage = pd.DataFrame(stage_rows)

    # Accounts <-> companies.
    acc_ids = _ids("001", n_accounts)
    w1, w2 = _pick(rng, WORDS, n_accounts), _pick(rng, WORDS, n_accounts)
    serial = np.arange(n_accounts).astype(str).astype(object)
    acc_names = w1 + " " + w2 + " " + serial + " Inc"
    sites = "https://www." + np.char.lower((w1 + w2 + serial).astype(str)).astype(object) + ".com"
    acc_created = _stamps(rng, n_accounts, "2025-01-01", "2026-05-01")
    acc_linked = rng.random(n_accounts) < linked
    n_co = int(acc_linked.sum())
    co_ids = _hs_ids(n_co, 10_000_000)
    acc_hs = np.full(n_accounts, None, dtype=object)
    acc_hs[acc_linked] = co_ids
    sf_account = pd.DataFrame(
        {
            "Id": acc_ids,
            "CreatedDate": acc_created,
            "LastModifiedDate": acc_created,
            "SystemModstamp": acc_created,
            "IsDeleted": False,
            "Name": acc_names,
            "Website": sites,
            "OwnerId": _pick(rng, list(user_ids[1:]), n_accounts),
            "HubSpot_Id__c": acc_hs,
            "_deleted": False,
        }
    )
    hs_company = pd.DataFrame(
        {
            "id": co_ids,
            "createdate": acc_created[acc_linked].to_numpy(),
            "hs_lastmodifieddate": acc_created[acc_linked].to_numpy(),
            "name": acc_names[acc_linked],
            "domain": np.char.lower((w1 + w2 + serial).astype(str))[acc_linked].astype(object) + ".com",
            "hubspot_owner_id": [owner_of_user.get(u) for u in sf_account["OwnerId"][acc_linked]],
            "salesforceaccountid": acc_ids[acc_linked],
            "lifecyclestage": "lead",
            "_deleted": False,
        }
    )

    # Contacts <-> HubSpot contacts (+ unlinked HubSpot contacts and Leads).
    con_ids = _ids("003", n_contacts)
    first, last = _pick(rng, WORDS, n_contacts), _pick(rng, WORDS, n_contacts)
    cserial = np.arange(n_contacts).astype(str).astype(object)
    con_email = np.char.lower((first + "." + last + cserial).astype(str)).astype(object) + "@example.org"
    con_account = acc_ids[rng.integers(0, n_accounts, size=n_contacts)]
    con_created = _stamps(rng, n_contacts, "2025-06-01", "2026-05-01")
    con_linked = rng.random(n_contacts) < linked
    n_hc = int(con_linked.sum())
    hc_ids = _hs_ids(n_hc, 20_000_000)
    con_hs = np.full(n_contacts, None, dtype=object)
    con_hs[con_linked] = hc_ids
    con_owner = _pick(rng, list(user_ids[1:]), n_contacts)
    sf_contact = pd.DataFrame(
        {
            "Id": con_ids,
            "CreatedDate": con_created,
            "LastModifiedDate": con_created,
            "SystemModstamp": con_created,
            "IsDeleted": False,
            "FirstName": first,
            "LastName": last,
            "Email": con_email,
            "AccountId": con_account,
            "OwnerId": con_owner,
            "HubSpot_Id__c": con_hs,
            "_deleted": False,
        }
    )
    n_new_hc = n_contacts // 5
    new_hc_ids = _hs_ids(n_new_hc, 30_000_000)
    hs_contact = pd.DataFrame(
        {
            "id": np.concatenate([hc_ids, new_hc_ids]),
            "createdate": pd.concat(
                [con_created[con_linked], _stamps(rng, n_new_hc, "2026-01-02", "2026-05-01")]
            ).to_numpy(),
            "lastmodifieddate": pd.concat(
                [con_created[con_linked], _stamps(rng, n_new_hc, "2026-01-02", "2026-05-01")]
            ).to_numpy(),
            "email": np.concatenate(
                [
                    con_email[con_linked],
                    np.array([f"new{i}@prospects.net" for i in range(n_new_hc)], dtype=object),
                ]
            ),
            "firstname": np.concatenate([first[con_linked], _pick(rng, WORDS, n_new_hc)]),
            "lastname": np.concatenate([last[con_linked], _pick(rng, WORDS, n_new_hc)]),
            "hubspot_owner_id": np.concatenate(
                [[owner_of_user.get(u) for u in con_owner[con_linked]], [None] * n_new_hc]
            ),
            "lifecyclestage": np.concatenate(
                [
                    _pick(rng, ["lead", "opportunity", "customer"], n_hc),
                    _pick(rng, ["lead", "salesqualifiedlead"], n_new_hc),
                ]
            ),
            "salesforcecontactid": np.concatenate([con_ids[con_linked], [None] * n_new_hc]),
            "_deleted": False,
        }
    )
    n_leads = n_contacts // 10
    sf_lead = pd.DataFrame(
        {
            "Id": _ids("00Q", n_leads),
            "CreatedDate": _stamps(rng, n_leads, "2026-01-02", "2026-05-01"),
            "IsDeleted": False,
            "LastName": _pick(rng, WORDS, n_leads),
            "Company": _pick(rng, WORDS, n_leads),
            "Email": np.array([f"lead{i}@leads.example" for i in range(n_leads)], dtype=object),
            "OwnerId": _pick(rng, list(user_ids[1:]), n_leads),
            "IsConverted": False,
            "_deleted": False,
        }
    )
    sf_lead["LastModifiedDate"] = sf_lead["CreatedDate"]
    sf_lead["SystemModstamp"] = sf_lead["CreatedDate"]

    # Opportunities <-> deals.
    opp_ids = _ids("006", n_opps)
    stage_idx = rng.integers(0, len(STAGES), size=n_opps)
    stage_names = np.asarray([s[0] for s in STAGES], dtype=object)[stage_idx]
    rt_idx = rng.integers(0, len(RECORD_TYPES), size=n_opps)
    opp_created = _stamps(rng, n_opps, "2025-06-01", "2026-05-01")
    opp_modified = opp_created.copy()
    old = (opp_created < ENABLED).to_numpy()
    touched = old & (rng.random(n_opps) < 0.3)
    opp_modified[touched] = _stamps(rng, int(touched.sum()), "2026-01-02", "2026-05-01").to_numpy()
    amount = np.round(rng.gamma(2.0, 5000.0, size=n_opps), 2)
    currency = np.where(rng.random(n_opps) < 0.9, "USD", "EUR").astype(object)
    currency[rng.random(n_opps) < 0.005] = None  # DEAL-8: quarantined in a multi-currency org
    close = (opp_created + pd.to_timedelta(rng.integers(10, 200, size=n_opps), unit="D")).dt.strftime(
        "%Y-%m-%d"
    )
    opp_linked = rng.random(n_opps) < linked
    n_dl = int(opp_linked.sum())
    deal_ids = _hs_ids(n_dl, 40_000_000)
    opp_hs = np.full(n_opps, None, dtype=object)
    opp_hs[opp_linked] = deal_ids
    opp_owner = _pick(rng, list(user_ids[1:]), n_opps)
    names = np.char.add("Deal ", np.arange(n_opps).astype(str)).astype(object)
    sf_opportunity = pd.DataFrame(
        {
            "Id": opp_ids,
            "CreatedDate": opp_created,
            "LastModifiedDate": opp_modified,
            "SystemModstamp": opp_modified,
            "IsDeleted": False,
            "Name": names,
            "StageName": stage_names,
            "CloseDate": close.to_numpy(dtype=object),
            "Amount": amount,
            "AccountId": acc_ids[rng.integers(0, n_accounts, size=n_opps)],
            "OwnerId": opp_owner,
            "RecordTypeId": np.asarray([r for r, _ in RECORD_TYPES], dtype=object)[rt_idx],
            "CurrencyIsoCode": currency,
            "IsClosed": np.asarray([s[2] for s in STAGES])[stage_idx],
            "IsWon": np.asarray([s[3] for s in STAGES])[stage_idx],
            "HubSpot_Id__c": opp_hs,
            "_deleted": False,
        }
    )
    lk = np.flatnonzero(opp_linked)
    hs_amount = amount[lk].copy()
    hs_name = names[lk].copy()
    # Edits since the last sync: 5% of pairs in HubSpot (name), 5% in Salesforce (amount).
    hs_edit = rng.random(n_dl) < 0.05
    sf_edit = rng.random(n_dl) < 0.05
    hs_name[hs_edit] = hs_name[hs_edit] + " (edited)"
    sf_opportunity.loc[lk[sf_edit], "Amount"] = amount[lk[sf_edit]] + 100.0
    sf_opportunity.loc[lk[sf_edit], "LastModifiedDate"] = pd.Timestamp("2026-05-20", tz="UTC")
    pipe_of_rt = np.asarray(pipe_ids, dtype=object)
    n_new_deals = n_opps // 10
    n_default = n_opps // 20
    new_deal_ids = _hs_ids(n_new_deals + n_default, 50_000_000)
    new_rt = rng.integers(0, len(RECORD_TYPES), size=n_new_deals)
    new_stage = rng.integers(0, len(STAGES), size=n_new_deals)
    deal_created = opp_created[lk].to_numpy()
    hs_deal = pd.DataFrame(
        {
            "id": np.concatenate([deal_ids, new_deal_ids]),
            "createdate": np.concatenate(
                [deal_created, _stamps(rng, n_new_deals + n_default, "2026-01-02", "2026-05-01").to_numpy()]
            ),
            "hs_lastmodifieddate": np.concatenate(
                [deal_created, _stamps(rng, n_new_deals + n_default, "2026-01-02", "2026-05-01").to_numpy()]
            ),
            "dealname": np.concatenate(
                [
                    hs_name,
                    np.char.add("HS deal ", np.arange(n_new_deals + n_default).astype(str)).astype(object),
                ]
            ),
            "amount": np.concatenate(
                [hs_amount, np.round(rng.gamma(2.0, 5000.0, size=n_new_deals + n_default), 2)]
            ),
            "closedate": np.concatenate(
                [
                    close.to_numpy(dtype=object)[lk],
                    np.full(n_new_deals + n_default, "2026-09-30", dtype=object),
                ]
            ),
            "dealstage": np.concatenate(
                [
                    np.char.add(
                        np.char.add(pipe_of_rt[rt_idx[lk]].astype(str), "-"), stage_idx[lk].astype(str)
                    ).astype(object),
                    np.char.add(
                        np.char.add(pipe_of_rt[new_rt].astype(str), "-"), new_stage.astype(str)
                    ).astype(object),
                    np.full(n_default, "appointmentscheduled", dtype=object),
                ]
            ),
            "pipeline": np.concatenate(
                [pipe_of_rt[rt_idx[lk]], pipe_of_rt[new_rt], np.full(n_default, "default", dtype=object)]
            ),
            "hubspot_owner_id": np.concatenate(
                [
                    [owner_of_user.get(u) for u in opp_owner[lk]],
                    _pick(rng, list(hs_owner["id"]), n_new_deals + n_default),
                ]
            ),
            "salesforceopportunityid": np.concatenate(
                [opp_ids[lk], np.full(n_new_deals + n_default, None, dtype=object)]
            ),
            "deal_currency_code": np.concatenate(
                [currency[lk], np.full(n_new_deals + n_default, "USD", dtype=object)]
            ),
            "_deleted": False,
        }
    )
    hs_deal.loc[np.flatnonzero(hs_edit), "hs_lastmodifieddate"] = pd.Timestamp("2026-05-10", tz="UTC")
    hs_deal["createdate"] = pd.to_datetime(hs_deal["createdate"], utc=True)
    hs_deal["hs_lastmodifieddate"] = pd.to_datetime(hs_deal["hs_lastmodifieddate"], utc=True)

    # Contact roles (half the Opportunities) and HubSpot associations for the linked part.
    n_ocr = n_opps // 2
    ocr_opp = rng.choice(n_opps, size=n_ocr, replace=False)
    ocr_con = rng.integers(0, n_contacts, size=n_ocr)
    sf_ocr = pd.DataFrame(
        {
            "Id": _ids("00K", n_ocr),
            "OpportunityId": opp_ids[ocr_opp],
            "ContactId": con_ids[ocr_con],
            "IsDeleted": False,
            "_deleted": False,
        }
    )
    both = opp_linked[ocr_opp] & con_linked[ocr_con]
    deal_to_contact = pd.DataFrame(
        {
            "from_type": "deals",
            "from_id": opp_hs[ocr_opp[both]],
            "to_type": "contacts",
            "to_id": con_hs[ocr_con[both]],
            "type_id": 3,
        }
    )
    opp_acc = sf_opportunity["AccountId"].to_numpy(dtype=object)
    acc_pos = pd.Index(acc_ids).get_indexer(opp_acc[lk])
    with_co = acc_linked[acc_pos]
    deal_to_company = pd.DataFrame(
        {
            "from_type": "deals",
            "from_id": deal_ids[with_co],
            "to_type": "companies",
            "to_id": acc_hs[acc_pos[with_co]],
            "type_id": 5,
        }
    )
    con_acc_pos = pd.Index(acc_ids).get_indexer(con_account)
    cc = con_linked & acc_linked[con_acc_pos]
    contact_to_company = pd.DataFrame(
        {
            "from_type": "contacts",
            "from_id": con_hs[cc],
            "to_type": "companies",
            "to_id": acc_hs[con_acc_pos[cc]],
            "type_id": 1,
        }
    )
    hs_association = pd.concat([deal_to_contact, deal_to_company, contact_to_company], ignore_index=True)
    hs_association["_deleted"] = False

    links = pd.concat(
        [
            pd.DataFrame({"object": "Account", "sf_id": acc_ids[acc_linked], "hs_id": co_ids}),
            pd.DataFrame({"object": "Contact", "sf_id": con_ids[con_linked], "hs_id": hc_ids}),
            pd.DataFrame({"object": "Opportunity", "sf_id": opp_ids[lk], "hs_id": deal_ids}),
            pd.DataFrame({"object": "RecordType", "sf_id": [r for r, _ in RECORD_TYPES], "hs_id": pipe_ids}),
        ],
        ignore_index=True,
    )
    links["linked_at"] = "2026-01-15T00:00:00+00:00"

    # SYNC-3 snapshot of the linked Opportunities (values as of the last sync).
    fields = [
        ("Name", "dealname"),
        ("Amount", "amount"),
        ("StageName", "dealstage"),
        ("CloseDate", "closedate"),
    ]
    snap_values = {
        "Name": ('"' + names[lk] + '"'),
        "Amount": np.char.mod("%.2f", amount[lk]).astype(object),
        "StageName": ('"' + stage_names[lk] + '"'),
        "CloseDate": ('"' + close.to_numpy(dtype=object)[lk] + '"'),
    }
    snapshot = pd.concat(
        [
            pd.DataFrame(
                {
                    "object": "Opportunity",
                    "sf_id": opp_ids[lk],
                    "hs_id": deal_ids,
                    "sf_field": sf_f,
                    "hs_field": hs_f,
                    "value": snap_values[sf_f],
                }
            )
            for sf_f, hs_f in fields
        ],
        ignore_index=True,
    )
    snapshot["synced_at"] = "2026-01-15T00:00:00+00:00"

    return RuleInputs(
        now=NOW,
        sf_user=sf_user,
        sf_record_type=sf_record_type,
        sf_opportunity_stage=sf_stage,
        sf_account=sf_account,
        sf_contact=sf_contact,
        sf_lead=sf_lead,
        sf_opportunity=sf_opportunity,
        sf_opportunity_contact_role=sf_ocr,
        hs_owner=hs_owner,
        hs_pipeline=hs_pipeline,
        hs_pipeline_stage=hs_pipeline_stage,
        hs_company=hs_company,
        hs_contact=hs_contact,
        hs_deal=hs_deal,
        hs_association=hs_association,
        links=links,
        snapshot=snapshot,
        imported=pd.DataFrame({"object": pd.Series(dtype=object), "sf_id": pd.Series(dtype=object)}),
    )


# --------------------------------------------------------------------------- DuckDB rollups

ROLLUP_SQL = """
WITH edges AS (
    SELECT 'contacts' AS object, contact_key AS record_id, deal_key FROM deal_contacts
    UNION
    SELECT 'companies' AS object, l.hs_id AS record_id, d.deal_key
    FROM deals d JOIN account_links l ON d.account_id = l.sf_id
),
joined AS (
    SELECT e.object, e.record_id, d.deal_key, d.amount, d.currency, d.created_at, d.close_date, d.is_won,
           coalesce(try_cast(d.deal_key AS DOUBLE), 'inf'::DOUBLE) AS deal_num
    FROM edges e JOIN deals d USING (deal_key)
)
SELECT object, record_id,
       count(*) AS num_associated_deals,
       min(created_at) AS first_deal_created_date,
       max(close_date) FILTER (WHERE is_won) AS recent_deal_close_date,
       arg_max(amount, (created_at, deal_num, deal_key)) FILTER (WHERE is_won) AS recent_deal_amount,
       CASE WHEN count(*) FILTER (WHERE is_won) > 0
            THEN coalesce(sum(amount) FILTER (WHERE is_won), 0) END AS total_revenue,
       count(DISTINCT currency) FILTER (WHERE is_won) > 1 AS mixed_currency
FROM joined
GROUP BY object, record_id
"""


def ours_rollups(
    deals: pd.DataFrame, deal_contacts: pd.DataFrame, account_links: pd.DataFrame
) -> pd.DataFrame:
    """The same computation through our code path: compute_rollups for contacts and companies."""
    contacts = compute_rollups(
        deal_contacts.rename(columns={"contact_key": "record_id"})[["record_id", "deal_key"]], deals
    )
    links = account_links.rename(columns={"sf_id": "account_id", "hs_id": "record_id"})[
        ["account_id", "record_id"]
    ]
    company_edges = (
        deals[["deal_key", "account_id"]]
        .dropna()
        .merge(links.dropna().drop_duplicates("account_id"), on="account_id")
    )
    companies = compute_rollups(company_edges[["record_id", "deal_key"]], deals)
    return pd.concat([contacts.assign(object="contacts"), companies.assign(object="companies")]).reset_index()


def duckdb_rollups(
    deals: pd.DataFrame, deal_contacts: pd.DataFrame, account_links: pd.DataFrame
) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    con.register(
        "deals", deals[["deal_key", "account_id", "amount", "currency", "created_at", "close_date", "is_won"]]
    )
    con.register("deal_contacts", deal_contacts[["deal_key", "contact_key"]])
    con.register("account_links", account_links[["sf_id", "hs_id"]].drop_duplicates("sf_id"))
    out = con.execute(ROLLUP_SQL).fetchdf()
    con.close()
    return out


def _compare(ours: pd.DataFrame, theirs: pd.DataFrame) -> dict[str, Any]:
    a = ours.set_index(["object", "record_id"]).sort_index()
    b = theirs.set_index(["object", "record_id"]).sort_index()
    same_keys = a.index.equals(b.index)
    out: dict[str, Any] = {"records": len(a), "same_records": bool(same_keys)}
    if same_keys:
        for col in ("num_associated_deals", "recent_deal_amount", "total_revenue"):
            x = pd.to_numeric(a[col], errors="coerce").to_numpy(dtype=float)
            y = pd.to_numeric(b[col], errors="coerce").to_numpy(dtype=float)
            out[f"same_{col}"] = bool(np.allclose(x, y, equal_nan=True, rtol=1e-9, atol=1e-6))
        mixed = a["currencies"].astype("str").str.contains(",", regex=False).fillna(False).to_numpy()
        out["same_mixed_currency_flags"] = bool(
            (mixed == b["mixed_currency"].fillna(False).to_numpy(dtype=bool)).all()
        )
    return out


# --------------------------------------------------------------------------- run


def run(scale: float, seed: int, repeat: int) -> None:
    n_opps, n_contacts, n_accounts = int(1_000_000 * scale), int(500_000 * scale), int(200_000 * scale)
    t0 = time.perf_counter()
    inputs = generate(n_opps, n_contacts, n_accounts, seed)
    gen_s = time.perf_counter() - t0
    config: SyncConfig = load_config()
    gc.collect()
    rss_inputs = rss_mib()
    reset_peak()

    stage_rows: list[dict[str, Any]] = []
    tables: dict[str, pd.DataFrame] = {}
    t_all = time.perf_counter()
    for name in rules_pipeline.STAGES[:-1]:
        t = time.perf_counter()
        tables.update(rules_pipeline.run_stage(name, inputs, config, tables, "bench"))
        stage_rows.append({"stage": name, "seconds": round(time.perf_counter() - t, 2), "rss_mib": rss_mib()})
    t = time.perf_counter()
    result = rules_pipeline.assemble_plan(inputs, config, tables, "bench")
    stage_rows.append(
        {"stage": "build_plan", "seconds": round(time.perf_counter() - t, 2), "rss_mib": rss_mib()}
    )
    plan_s = time.perf_counter() - t_all
    plan_peak = peak_mib()
    stage_rows.append({"stage": "TOTAL", "seconds": round(plan_s, 2), "rss_mib": plan_peak})

    counts = result.plan.groupby(["target", "object", "action"]).size().reset_index(name="rows")
    deals = tables["rule_deal_state"]
    deal_contacts = tables["rule_deal_contacts"]
    account_links = tables["rule_account_pairs"]

    ours_samples, duck_samples = [], []
    ours = duck = pd.DataFrame()
    for _ in range(repeat):
        t = time.perf_counter()
        ours = ours_rollups(deals, deal_contacts, account_links)
        ours_samples.append(time.perf_counter() - t)
        t = time.perf_counter()
        duck = duckdb_rollups(deals, deal_contacts, account_links)
        duck_samples.append(time.perf_counter() - t)
    agree = _compare(ours, duck)
    ours_s, duck_s = min(ours_samples), min(duck_samples)

    rows = [
        *stage_rows,
        {"stage": "rollups: ours (compute_rollups)", "seconds": round(ours_s, 3)},
        {"stage": "rollups: DuckDB (one SQL query)", "seconds": round(duck_s, 3)},
    ]
    meta: dict[str, Any] = {
        "opportunities": n_opps,
        "contacts": n_contacts,
        "accounts": n_accounts,
        "hubspot_deals": len(inputs.hs_deal),
        "hubspot_contacts": len(inputs.hs_contact),
        "seed": seed,
        "generate_seconds": round(gen_s, 1),
        "plan_seconds": round(plan_s, 1),
        "plan_peak_rss_mib": plan_peak,
        "rss_after_generation_mib": rss_inputs,
        "plan_rows": len(result.plan),
        "target_seconds": TARGET_SECONDS,
        "target_peak_gib": TARGET_PEAK_GIB,
        "meets_time_target": plan_s < TARGET_SECONDS,
        "meets_memory_target": plan_peak < TARGET_PEAK_GIB * 1024,
        "rollup_records": agree["records"],
        "rollups_ours_over_duckdb": round(ours_s / duck_s, 2) if duck_s else None,
        "meets_duckdb_target_3x": ours_s <= 3 * duck_s,
        "rollups_agree": agree,
        "plan_counts": counts.to_dict("records"),
    }
    if _report is not None:
        _report("plan", rows, meta)
    else:  # pragma: no cover - standalone fallback
        out = Path(__file__).resolve().parent / "results" / "plan.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"name": "plan", "meta": meta, "rows": rows}, indent=2, default=str))
        for r in rows:
            print(r)
    print()
    print(counts.to_string(index=False))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (default 1.0)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="rollup timing repeats (best is reported)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the size, one repeat (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.scale, args.repeat = 0.1, 1
    run(args.scale, args.seed, args.repeat)


if __name__ == "__main__":
    main()
