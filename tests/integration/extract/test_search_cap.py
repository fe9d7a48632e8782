"""HubSpot's search API returns at most 10,000 results per query; incremental reads go past it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from crm_sync import staging
from crm_sync.tasks import commit_watermarks, extract_hubspot

from .support import Sandbox, StagingDbs, extract_config

#: Lift the general 10-second limit (not the subject here); searches keep HubSpot's 5/second.
FAST_PORTAL = {"hubspot": {"requests_per_10s": 100_000}}


def contacts_scenario(n: int, updated_at: Callable[[int], str]) -> dict[str, Any]:
    return {
        "hubspot": {
            "contacts": [
                {
                    "id": 1_000 + i,
                    "properties": {"email": f"person{i}@example.com", "firstname": "Before"},
                    "createdAt": "2025-01-01T00:00:00.000Z",
                    "updatedAt": updated_at(i),
                }
                for i in range(n)
            ]
        }
    }


def search_calls(box: Sandbox) -> int:
    return sum(
        r["count"]
        for r in box.stats("hubspot")["requests"]
        if r["method"] == "POST" and r["path"].endswith("/search")
    )


def firstnames(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select firstname, count(*) from hs_contact group by firstname"))
        return {str(name): int(n) for name, n in rows}


@pytest.mark.slow
def test_15000_contacts_changed_in_one_interval_are_all_extracted(
    sandbox_for: Callable[..., Sandbox], sqlite_dbs: StagingDbs
) -> None:
    """SYNC-1: 15,000 changes in one window, 5,000 more than one search query can return."""
    n = 15_000
    box = sandbox_for(
        contacts_scenario(
            n, lambda i: f"2025-02-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000Z"
        ),
        options=FAST_PORTAL,
    )
    engine = sqlite_dbs.use()
    config = extract_config(chunk_size=2_000)
    first = extract_hubspot("contacts", run_id="run-1", config=config)
    commit_watermarks("run-1")
    assert (first["mode"], first["created"]) == ("list", n)

    batch = box.hubspot().crm.contacts.batch_api
    for start in range(0, n, 100):
        inputs = [
            {"id": str(1_000 + i), "properties": {"firstname": "After"}} for i in range(start, start + 100)
        ]
        batch.update({"inputs": inputs})
    before = search_calls(box)

    second = extract_hubspot("contacts", run_id="run-2", config=config)

    assert second["mode"] == "search"
    assert (second["changed"], second["updated"]) == (n, n)
    assert firstnames(engine) == {"After": n}
    # Keyset paging: one search per 200 changed records, as if there were no cap.
    assert search_calls(box) - before == n // 200
    assert "429" not in box.stats("hubspot")["by_status"]  # paced under the 5 searches/second
    assert "list_fallback" not in second


@pytest.mark.slow
def test_more_than_10000_changes_in_one_millisecond_fall_back_to_the_list_endpoint(
    sandbox_for: Callable[..., Sandbox], sqlite_dbs: StagingDbs
) -> None:
    """A tie group keyset paging cannot split is read through the list endpoint instead."""
    n = 10_050
    box = sandbox_for(contacts_scenario(n, lambda i: "2025-06-01T00:00:00.000Z"), options=FAST_PORTAL)
    engine = sqlite_dbs.use()
    staging.ensure_schema(engine)
    staging.set_pending_watermark(engine, "hubspot.contacts", datetime(2025, 5, 31, tzinfo=UTC), "setup")
    commit_watermarks("setup")

    result = extract_hubspot("contacts", run_id="run-1", config=extract_config(chunk_size=2_000))

    assert result["mode"] == "search"
    assert result["list_fallback"] is True
    assert result["created"] == n
    assert firstnames(engine) == {"Before": n}
    # The first page restarts at the tie; then 50 pages of 200 reach the cap.
    assert search_calls(box) == 1 + 10_000 // 200
