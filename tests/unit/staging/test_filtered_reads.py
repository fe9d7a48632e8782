"""A filtered read holds only the rows it keeps, and gives what reading everything then
filtering gives (a backfill chunk reads its neighbourhood of staging this way). On SQLite and
PostgreSQL, over several pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from crm_sync import staging
from crm_sync.backfill import focus
from crm_sync.tasks import rules

T0 = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def _stage_opportunities(engine: sa.Engine, n: int) -> None:
    rows = [
        {
            "Id": f"006{i:015d}",
            "Name": f"Deal {i}",
            "AccountId": f"001{i % 7:015d}",
            "Amount": float(i) if i % 3 else None,
            "CreatedDate": T0 + timedelta(days=i),
            "_deleted": False,
        }
        for i in range(n)
    ]
    staging.upsert_rows(engine, "sf_opportunity", rows, ["Id"])


def test_a_filtered_read_equals_reading_everything_then_filtering(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stage_opportunities(engine, 25)
    monkeypatch.setattr(staging, "FILTER_PAGE_ROWS", 4)  # 7 pages, the last one short

    def keep(frame: pd.DataFrame) -> np.ndarray:
        return frame["AccountId"].isin({"001000000000000002", "001000000000000005"}).to_numpy()

    everything = staging.read_frame(engine, "sf_opportunity")
    kept = staging.read_frame(engine, "sf_opportunity", keep=keep)
    expected = everything[keep(everything)].reset_index(drop=True)
    assert len(kept) == 7
    pd.testing.assert_frame_equal(kept, expected, check_dtype=False)
    assert str(kept["CreatedDate"].dt.tz) == "UTC"
    assert staging.read_frame(engine, "sf_opportunity", keep=lambda f: np.zeros(len(f), bool)).empty


def test_a_chunk_reads_the_rows_its_neighbourhood_names_and_nothing_else(engine: sa.Engine) -> None:
    """load_inputs with a neighbourhood's view = the same neighbourhood cut out of everything."""
    _stage_opportunities(engine, 25)
    now = staging.now_utc()
    found = focus.Focus({table: set() for table in focus.RECORD_KEYS})
    found.ids["sf_opportunity"] = {"006000000000000003", "006000000000000011"}
    viewed = rules.load_inputs(engine, now=now, view=focus.neighbourhood_view(found))
    everything = rules.load_inputs(engine, now=now)
    assert list(viewed.sf_opportunity["Id"]) == ["006000000000000003", "006000000000000011"]
    pd.testing.assert_frame_equal(
        viewed.sf_opportunity,
        everything.sf_opportunity[
            everything.sf_opportunity["Id"].isin(found.ids["sf_opportunity"])
        ].reset_index(drop=True),
    )
    keys = rules.load_inputs(engine, now=now, view=focus.KEY_VIEW)
    assert list(keys.sf_opportunity.columns) == [
        "Id",
        "AccountId",
        "HubSpot_Id__c",
        "RecordTypeId",
        "IsDeleted",
        "_deleted",
    ]
    assert keys.snapshot.empty  # not read: the closure does not need it
    assert keys.sf_user.columns.equals(everything.sf_user.columns)  # reference tables whole
