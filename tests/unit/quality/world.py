"""A small staged world for the quality tests: frames shaped as staging hands them to validation."""

from __future__ import annotations

from typing import Any

import pandas as pd
from crm_sync.plan import PlanRow, plan_frame


def frame(rows: list[dict[str, Any]], **defaults: Any) -> pd.DataFrame:
    return pd.DataFrame([{**defaults, **r} for r in rows])


def staged_world() -> dict[str, pd.DataFrame]:
    """Two users/owners, one record type with its pipeline and stages, clean records of every object."""
    return {
        "sf_user": frame(
            [{"Id": "005A", "IsActive": True}, {"Id": "005B", "IsActive": True}], _deleted=False
        ),
        "hs_owner": frame(
            [{"id": "901", "archived": False}, {"id": "902", "archived": False}], _deleted=False
        ),
        "sf_opportunity_stage": frame(
            [{"ApiName": "Prospecting", "IsActive": True}, {"ApiName": "Closed Won", "IsActive": True}],
            _deleted=False,
        ),
        "hs_pipeline_stage": frame(
            [
                {"id": "s1", "pipeline_id": "101"},
                {"id": "s2", "pipeline_id": "101"},
                {"id": "d1", "pipeline_id": "default"},
            ],
            _deleted=False,
        ),
        "sf_record_type": frame([{"Id": "012A", "Name": "New Business"}], _deleted=False),
        "rule_pipelines": frame(
            [{"pipeline_key": "012A", "hs_pipeline_id": "101", "label": "Salesforce - New Business"}]
        ),
        "rule_pipeline_stages": frame(
            [{"hs_pipeline_id": "101", "hs_stage_id": "s1"}, {"hs_pipeline_id": "101", "hs_stage_id": "s2"}]
        ),
        "sync_link": frame([{"object": "Contact", "sf_id": "003A", "hs_id": "2001"}]),
        "sf_account": frame(
            [{"Id": "001A", "OwnerId": "005A", "AnnualRevenue": 10.0, "NumberOfEmployees": 5.0}],
            _deleted=False,
        ),
        "sf_contact": frame(
            [
                {"Id": "003A", "Email": "ann@acme.com", "OwnerId": "005A"},
                {"Id": "003B", "Email": None, "OwnerId": "005B"},
            ],
            _deleted=False,
        ),
        "sf_lead": frame([{"Id": "00QA", "Email": "lee@globex.com", "OwnerId": "005A"}], _deleted=False),
        "sf_opportunity": frame(
            [
                {
                    "Id": "006A",
                    "StageName": "Prospecting",
                    "CloseDate": "2026-03-01",
                    "Amount": 100.0,
                    "OwnerId": "005A",
                }
            ],
            _deleted=False,
        ),
        "hs_company": frame(
            [{"id": "1001", "hubspot_owner_id": "901", "annualrevenue": 5.0}], _deleted=False
        ),
        "hs_contact": frame(
            [
                {"id": "2001", "email": "ann@acme.com", "hubspot_owner_id": "901"},
                {"id": "2002", "email": "bo@initech.com", "hubspot_owner_id": None},
            ],
            _deleted=False,
        ),
        "hs_deal": frame(
            [
                {
                    "id": "3001",
                    "pipeline": "101",
                    "dealstage": "s1",
                    "closedate": pd.Timestamp("2026-03-01", tz="UTC"),
                    "amount": 100.0,
                    "hubspot_owner_id": "902",
                }
            ],
            _deleted=False,
        ),
    }


def plan(*rows: PlanRow) -> pd.DataFrame:
    return plan_frame(list(rows), "r1")
