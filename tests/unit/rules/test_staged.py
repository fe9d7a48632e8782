"""Reading staged frames: links and their recency."""

from __future__ import annotations

import pandas as pd
from crm_sync.rules.staged import link_pairs


def test_a_link_without_linked_at_never_counts_as_the_most_recent() -> None:
    links = pd.DataFrame(
        {
            "object": ["Account", "Account", "Account"],
            "sf_id": ["001A", "001A", "001A"],
            "hs_id": ["c-undated", "c-new", "c-old"],
            "linked_at": [None, "2026-03-01T00:00:00Z", "2026-01-01T00:00:00Z"],
        }
    )
    assert link_pairs(links, ["Account"])["hs_id"].tolist() == ["c-new", "c-old", "c-undated"]
