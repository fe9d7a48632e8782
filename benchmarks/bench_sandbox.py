"""Sandbox scale benchmark: generate a big org, serve it, and time it through the real clients.

Run: ``python -m benchmarks.bench_sandbox [--sizes 100000,1000000]`` (sizes are Opportunity
counts; Accounts are a tenth of that, other objects follow the generator's defaults).

Per size it measures

* ``crm-sandbox generate``: wall time and file size (the contract: 1M Opportunities < 2 min);
* parsing the file and starting both emulators on it (:func:`crm_sandbox.server.running_sandbox`);
* Salesforce, through simple-salesforce: the first page and later ``nextRecordsUrl`` pages of
  2,000 rows of the incremental query
  ``SELECT ... FROM Opportunity WHERE SystemModstamp > X ORDER BY SystemModstamp``;
* HubSpot, through hubspot-api-client: list pages of 100 deals (first and later ``after`` pages)
  and search pages of 200 (``hs_lastmodifieddate > X``, sorted);
* throughput over a bounded number of requests: single-record GETs on both APIs, and batch writes
  (Salesforce composite collections of 200 records, HubSpot batch endpoints of 100).

The emulators run in threads of this process (as in tests and DAG integration tests), so client
and server share one interpreter: the rates are a lower bound for a separate ``crm-sandbox serve``.
Rate limits are lifted for the run (the point is the emulator's own speed); the limits themselves
are exercised by the integration tests.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from benchmarks.common import peak_rss_mib, report, summarize, timed

NAME = "sandbox"
UNLIMITED = {
    "salesforce": {"daily_api_limit": 10**12},
    "hubspot": {"requests_per_10s": 10**9, "search_per_second": 10**9, "daily_limit": 10**12},
}


def _row(size: int, measure: str, **values: Any) -> dict[str, Any]:
    return {"opportunities": size, "measure": measure, **values}


def _pages(
    first: Callable[[], Any], follow: Callable[[Any], Any | None], pages: int
) -> tuple[float, list[float]]:
    """Time the first page, then up to ``pages`` follow-up pages (each from the previous one)."""
    start = time.perf_counter()
    page = first()
    first_s = time.perf_counter() - start
    later: list[float] = []
    for _ in range(pages):
        start = time.perf_counter()
        page = follow(page)
        if page is None:
            break
        later.append(time.perf_counter() - start)
    return first_s, later


def bench_size(
    size: int, seed: int, workdir: Path, samples: int, requests_n: int, batches: int
) -> list[dict[str, Any]]:
    from crm_sandbox.generate import GeneratorConfig, generate_file
    from crm_sandbox.scenario import load_scenario
    from crm_sandbox.server import running_sandbox

    rows: list[dict[str, Any]] = []
    accounts = max(100, size // 10)
    config = GeneratorConfig(seed=seed, accounts=accounts, opportunities=size)
    path = workdir / f"scenario-{size}.json"

    start = time.perf_counter()
    counts = generate_file(config, path)
    generate_s = time.perf_counter() - start
    records = sum(counts.values())
    rows.append(
        _row(size, "generate scenario file", records=records, seconds=round(generate_s, 1),
             per_s=round(records / generate_s), file_mib=round(path.stat().st_size / 2**20))
    )  # fmt: skip
    print(f"[{size}] generated {records:,} records in {generate_s:.1f}s ({counts})", flush=True)

    start = time.perf_counter()
    scenario = load_scenario(path)
    parse_s = time.perf_counter() - start
    rows.append(_row(size, "parse + validate file", records=records, seconds=round(parse_s, 1)))
    # The incremental window: the newest 10% of SystemModstamp / hs_lastmodifieddate values, and
    # at least enough rows for a dozen pages, so "later page" is measured at every size.
    stamps = sorted(o["SystemModstamp"] for o in scenario["salesforce"]["Opportunity"])
    since_sf = stamps[max(0, len(stamps) - max(len(stamps) // 10, 12 * 2000))]
    deal_updates = sorted(d["updatedAt"] for d in scenario["hubspot"]["deals"])
    since_hs = deal_updates[max(0, len(deal_updates) - max(len(deal_updates) // 10, 12 * 200))]
    live = [o["Id"] for o in scenario["salesforce"]["Opportunity"] if not o.get("IsDeleted")]
    opp_ids = live[:: max(1, len(live) // requests_n)][:requests_n]
    del live
    deal_ids = [d["id"] for d in scenario["hubspot"]["deals"][:: max(1, len(deal_updates) // requests_n)]][
        :requests_n
    ]
    account_ids = [a["Id"] for a in scenario["salesforce"]["Account"][:200]]
    window = len(stamps) - bisect.bisect_right(stamps, since_sf)
    print(f"[{size}] parsed in {parse_s:.1f}s; incremental window {window:,} opportunities", flush=True)

    start = time.perf_counter()
    with running_sandbox(scenario, options=UNLIMITED) as endpoints:
        startup_s = time.perf_counter() - start
        del scenario
        gc.collect()
        rows.append(_row(size, "start both emulators", seconds=round(startup_s, 1), rss_mib=peak_rss_mib()))
        print(f"[{size}] sandbox up in {startup_s:.1f}s, peak RSS {peak_rss_mib():,.0f} MiB", flush=True)
        os.environ["REQUESTS_CA_BUNDLE"] = str(endpoints.ca_bundle)
        os.environ.pop("CURL_CA_BUNDLE", None)
        rows += _bench_salesforce(
            size, endpoints.salesforce_url, since_sf, opp_ids, account_ids, samples, batches
        )
        rows += _bench_hubspot(size, endpoints.hubspot_url, since_hs, deal_ids, samples, batches)
    path.unlink(missing_ok=True)
    return rows


def _bench_salesforce(
    size: int, url: str, since: str, opp_ids: list[str], account_ids: list[str], samples: int, batches: int
) -> list[dict[str, Any]]:
    from simple_salesforce.api import Salesforce, SFType

    sf = Salesforce(instance_url=url, session_id="bench", version="59.0")
    literal = since.replace(".000+0000", "Z")
    soql = (
        "SELECT Id, Name, StageName, Amount, CloseDate, AccountId, OwnerId, SystemModstamp FROM Opportunity "
        f"WHERE SystemModstamp > {literal} ORDER BY SystemModstamp"
    )
    rows = []

    def follow(page: Any) -> Any | None:
        if page["done"]:
            return None
        return sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)

    first_samples = timed(lambda: sf.query(soql), samples)
    later_samples: list[float] = []
    for _ in range(max(1, samples // 10)):
        later_samples += _pages(lambda: sf.query(soql), follow, pages=10)[1]
    first_page = sf.query(soql)
    page_rows = len(first_page["records"])
    rows.append(
        _row(size, "SF SOQL first page (incremental)", rows=page_rows, matched=first_page["totalSize"],
             **summarize(first_samples))
    )  # fmt: skip
    rows.append(_row(size, "SF SOQL nextRecordsUrl page", rows=page_rows, **summarize(later_samples)))

    ids = iter(opp_ids)
    opportunity = cast(SFType, sf.Opportunity)

    def get_one() -> None:
        opportunity.get(next(ids))

    gets = timed(get_one, len(opp_ids))
    rows.append(_row(size, "SF GET sobject by Id", rows=1, **summarize(gets)))

    def update_batch(batch: int) -> None:
        records = [
            {"attributes": {"type": "Opportunity"}, "Id": oid, "Description": f"bench update {batch}"}
            for oid in (opp_ids * 2)[batch * 7 : batch * 7 + 200]
        ]
        result = sf.restful(
            "composite/sobjects", method="PATCH", json={"allOrNone": False, "records": records}
        )
        if not result or not all(r["success"] for r in result):
            raise RuntimeError(f"batch failed: {result}")

    counter = iter(range(10**9))
    updates = timed(lambda: update_batch(next(counter)), batches)
    rows.append(_row(size, "SF composite update x200", rows=200, **summarize(updates, per_call=200)))

    def create_batch() -> None:
        records = [
            {
                "attributes": {"type": "Opportunity"},
                "Name": f"Bench {i}",
                "StageName": "Prospecting",
                "CloseDate": "2026-12-31",
                "Amount": 1000 + i,
                "AccountId": account_ids[i % len(account_ids)],
            }
            for i in range(200)
        ]
        result = sf.restful(
            "composite/sobjects", method="POST", json={"allOrNone": False, "records": records}
        )
        if not result or not all(r["success"] for r in result):
            raise RuntimeError(f"batch failed: {result}")

    creates = timed(create_batch, batches)
    rows.append(_row(size, "SF composite create x200", rows=200, **summarize(creates, per_call=200)))
    return rows


def _bench_hubspot(
    size: int, url: str, since: str, deal_ids: list[str], samples: int, batches: int
) -> list[dict[str, Any]]:
    from hubspot import HubSpot
    from hubspot.crm.deals import (
        BatchInputSimplePublicObjectBatchInput,
        BatchInputSimplePublicObjectBatchInputForCreate,
        PublicObjectSearchRequest,
        SimplePublicObjectBatchInput,
        SimplePublicObjectBatchInputForCreate,
    )

    deals = HubSpot(access_token="bench", host=url).crm.deals
    rows = []

    def next_list(page: Any) -> Any | None:
        if page.paging is None or page.paging.next is None:
            return None
        return deals.basic_api.get_page(
            limit=100, after=page.paging.next.after, properties=["dealname", "amount"]
        )

    def first_list() -> Any:
        return deals.basic_api.get_page(limit=100, properties=["dealname", "amount"])

    first_samples = timed(first_list, samples)
    later_samples: list[float] = []
    for _ in range(max(1, samples // 10)):
        later_samples += _pages(first_list, next_list, pages=10)[1]
    rows.append(_row(size, "HS list deals first page", rows=100, **summarize(first_samples)))
    rows.append(_row(size, "HS list deals after= page", rows=100, **summarize(later_samples)))

    def search(after: str | None) -> Any:
        request = PublicObjectSearchRequest(
            filter_groups=[
                {"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": since}]}
            ],
            sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
            properties=["dealname", "amount", "hs_lastmodifieddate"],
            limit=200,
            after=after,
        )
        return deals.search_api.do_search(public_object_search_request=request)

    def next_search(page: Any) -> Any | None:
        if page.paging is None or page.paging.next is None:
            return None
        return search(page.paging.next.after)

    first_samples = timed(lambda: search(None), samples)
    later_samples = []
    for _ in range(max(1, samples // 10)):
        later_samples += _pages(lambda: search(None), next_search, pages=10)[1]
    total = search(None).total
    rows.append(_row(size, "HS search deals first page", rows=200, matched=total, **summarize(first_samples)))
    rows.append(
        _row(size, "HS search deals after= page", rows=200, matched=total, **summarize(later_samples))
    )

    ids = iter(deal_ids)

    def get_one() -> None:
        deals.basic_api.get_by_id(next(ids))

    gets = timed(get_one, len(deal_ids))
    rows.append(_row(size, "HS GET deal by id", rows=1, **summarize(gets)))

    counter = iter(range(10**9))

    def update_batch() -> None:
        batch = next(counter)
        ids = (deal_ids * 2)[batch * 3 : batch * 3 + 100]
        body = BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id=i, properties={"description": f"bench {batch}"}) for i in ids
            ]
        )
        deals.batch_api.update(batch_input_simple_public_object_batch_input=body)

    updates = timed(update_batch, batches)
    rows.append(_row(size, "HS batch update x100", rows=100, **summarize(updates, per_call=100)))

    def create_batch() -> None:
        body = BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                SimplePublicObjectBatchInputForCreate(
                    properties={
                        "dealname": f"Bench {i}",
                        "amount": str(1000 + i),
                        "pipeline": "default",
                        "dealstage": "appointmentscheduled",
                    }
                )
                for i in range(100)
            ]
        )
        deals.batch_api.create(batch_input_simple_public_object_batch_input_for_create=body)

    creates = timed(create_batch, batches)
    rows.append(_row(size, "HS batch create x100", rows=100, **summarize(creates, per_call=100)))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="1000000", help="comma-separated Opportunity counts")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--samples", type=int, default=50, help="latency samples per paged measurement")
    parser.add_argument("--requests", type=int, default=500, help="single-record GETs per API")
    parser.add_argument("--batches", type=int, default=20, help="batch writes per API and kind")
    parser.add_argument("--workdir", type=Path, default=None, help="where the scenario file is written")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="crm-bench-sandbox-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for size in sizes:
        rows += bench_size(size, args.seed, workdir, args.samples, args.requests, args.batches)
    meta = {
        "benchmark": "sandbox emulators at scale, through simple-salesforce and hubspot-api-client",
        "sizes": sizes,
        "seed": args.seed,
        "accounts_per_size": "opportunities / 10 (min 100); other objects: generator defaults",
        "sf_query": "WHERE SystemModstamp > <90th percentile> ORDER BY SystemModstamp, 2,000-row pages",
        "hs_search": "hs_lastmodifieddate GT <90th percentile>, sorted ascending, 200-row pages",
        "rate_limits": "lifted for the run",
        "process": "emulators in threads of the benchmark process (shared interpreter)",
        "peak_rss_mib": peak_rss_mib(),
    }
    report(NAME, rows, meta)


if __name__ == "__main__":
    main()
