"""ACC-8: a resync chunk writes only the Account <-> company updates of its own Id range."""

from __future__ import annotations

import pandas as pd
from crm_sync.backfill.scope import scope_plan
from crm_sync.backfill.windows import plan_id_ranges


def test_a_resync_chunk_keeps_the_updates_of_its_range_on_both_sides() -> None:
    chunk = plan_id_ranges(["001A", "001B", "001C", "001D"], 2)[1]  # ("001B", "001D"]
    plan = pd.DataFrame(
        [
            ("hubspot", "companies", "update", "001C", "9001"),  # in range: kept
            ("hubspot", "companies", "update", "001B", "9000"),  # the lower bound is exclusive
            ("salesforce", "Account", "update", "9002", "001D"),  # in range, written to Salesforce
            ("hubspot", "companies", "create", "001C", None),  # not a resync's job
            ("hubspot", "deals", "update", "006X", "7000"),  # another object
            ("hubspot", "companies", "update", "@accounts:001C", "9003"),  # a reference, not an Id
        ],
        columns=["target", "object", "action", "source_id", "target_id"],
    )
    kept = scope_plan(plan, chunk)
    assert list(zip(kept["target"], kept["source_id"], kept["target_id"], strict=True)) == [
        ("hubspot", "001C", "9001"),
        ("salesforce", "9002", "001D"),
    ]
