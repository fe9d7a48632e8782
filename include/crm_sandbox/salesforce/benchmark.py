"""Manual benchmark: load a large org and time sync-shaped requests through simple-salesforce.

Run ``python -m crm_sandbox.salesforce.benchmark --opportunities 1000000``. It prints how long
the scenario takes to load and how long the requests an incremental sync makes take over HTTPS:
the first and a later 2,000-record page of ``WHERE SystemModstamp > X ORDER BY SystemModstamp,
Id``, an upsert by external id and a query by email. This is a measurement to read, not a test
(timings depend on the machine); the integration tests check the behaviour.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from crm_sandbox.salesforce.testing import serve_salesforce


def build_scenario(opportunities: int, accounts: int) -> dict[str, Any]:
    """Opportunities spread over a year of ``SystemModstamp`` values, in roughly random order."""
    base = datetime(2025, 1, 1, tzinfo=UTC)
    step = max(1, 365 * 86400 // max(1, opportunities))
    account_rows = [
        {
            "Name": f"Account {i}",
            "Website": f"https://www.account{i}.example.com",
            "HubSpot_Id__c": f"hs-a{i}",
        }
        for i in range(accounts)
    ]
    contacts = [
        {"LastName": f"Person {i}", "Email": f"person{i}@account{i}.example.com"} for i in range(accounts)
    ]
    stages = ("Prospecting", "Qualification", "Negotiation/Review", "Closed Won", "Closed Lost")
    rows = []
    for i in range(opportunities):
        j = (i * 7919) % opportunities  # shuffled stamps: the index must really sort
        stamp = (base + timedelta(seconds=j * step)).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(
            {
                "Name": f"Opportunity {i}",
                "StageName": stages[i % len(stages)],
                "CloseDate": "2025-12-31",
                "Amount": float(i % 10_000),
                "HubSpot_Id__c": f"hs-d{i}",
                "CreatedDate": stamp,
                "LastModifiedDate": stamp,
                "SystemModstamp": stamp,
            }
        )
    return {
        "salesforce": {
            "User": [{"Username": "bench@example.com", "LastName": "Bench", "Email": "bench@example.com"}],
            "Account": account_rows,
            "Contact": contacts,
            "Opportunity": rows,
        }
    }


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def run(opportunities: int, accounts: int) -> dict[str, float]:
    scenario = build_scenario(opportunities, accounts)
    results: dict[str, float] = {}
    start = time.perf_counter()
    with serve_salesforce(scenario) as endpoint:
        results["load_s"] = time.perf_counter() - start
        sf = endpoint.session.client()
        soql = (
            "SELECT Id, Name, StageName, Amount, CloseDate, AccountId, OwnerId, SystemModstamp "
            "FROM Opportunity WHERE SystemModstamp > 2025-03-01T00:00:00Z ORDER BY SystemModstamp, Id"
        )
        results["first_page_cold_s"], first = _timed(lambda: sf.query(soql))
        results["first_page_warm_s"], first = _timed(lambda: sf.query(soql))
        results["next_page_s"], _ = _timed(
            lambda: sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
        )
        results["total_size"] = float(first["totalSize"])
        results["upsert_by_external_id_s"], _ = _timed(
            lambda: sf.Opportunity.upsert("HubSpot_Id__c/hs-d42", {"Amount": 1.0})
        )
        results["query_by_email_s"], _ = _timed(
            lambda: sf.query("SELECT Id FROM Contact WHERE Email = 'person7@account7.example.com'")
        )
        results["page_after_update_s"], _ = _timed(lambda: sf.query(soql))
        endpoint.session.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    results = run(args.opportunities, args.accounts)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for key, value in results.items():
        print(f"{key:28} {value:12.3f}")


if __name__ == "__main__":
    main()
