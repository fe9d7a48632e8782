"""The ``report`` task against a staging database: files per run, figures stored, links derived."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from crm_sync import staging
from crm_sync.tasks.report import build_report

from tests.staging_db import connection_for_schema, create_schema, drop_schemas, postgres_unreachable

AT = datetime(2026, 2, 1, 9, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[sa.Engine]:
    schema = None
    conn: dict[str, object] = {"conn_type": "sqlite", "host": str(tmp_path / "s.db")}
    if request.param == "postgres":
        reason = postgres_unreachable()
        if reason:
            pytest.skip(f"{reason} -- the PostgreSQL variant is skipped")
        schema = create_schema("quality_report")
        conn = connection_for_schema(schema)
    monkeypatch.setenv("AIRFLOW_CONN_CRM_STAGING", json.dumps(conn))
    monkeypatch.setenv("CRM_SYNC_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("CRM_SYNC_CONFIG", raising=False)
    staging.dispose_engines()
    eng = staging.staging_engine()
    staging.ensure_schema(eng)
    yield eng
    staging.dispose_engines()
    if schema:
        drop_schemas(schema)


def _seed(engine: sa.Engine, hs_name: str) -> None:
    accounts = [
        {
            "Id": "001A",
            "Name": "Acme",
            "Phone": "555",
            "HubSpot_Id__c": "1001",
            "SystemModstamp": AT,
            "_deleted": False,
        },
        {"Id": "001B", "Name": "Globex", "SystemModstamp": AT, "_deleted": False},
    ]
    companies = [
        {"id": "1001", "name": hs_name, "phone": "555", "hs_lastmodifieddate": AT, "_deleted": False},
        {
            "id": "1002",
            "name": "Globex",
            "salesforceaccountid": "001B",
            "hs_lastmodifieddate": AT,
            "_deleted": False,
        },
    ]
    staging.upsert_rows(engine, "sf_account", _same_keys(accounts), ["Id"])
    staging.upsert_rows(engine, "hs_company", _same_keys(companies), ["id"])


def _same_keys(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """Rows of one statement must name the same columns: the missing ones are blank."""
    keys = {k for r in rows for k in r}
    return [{k: r.get(k) for k in keys} for r in rows]


def test_the_report_task_writes_both_files_and_stores_its_figures(engine: sa.Engine, tmp_path: Path) -> None:
    _seed(engine, hs_name="Acme Corp")

    result = build_report("scheduled__2026-12-06T06:00:00+00:00")

    folder = tmp_path / "reports" / "scheduled__2026-12-06T06_00_00_00_00"
    assert result["path"] == str(folder / "report.html")
    doc = json.loads((folder / "report.json").read_text())
    accounts = next(o for o in doc["objects"] if o["object"] == "Account / companies")
    # Both pairs come from the link fields the CRMs carry (HubSpot_Id__c, salesforceaccountid).
    assert (accounts["linked_pairs"], accounts["pairs_compared"]) == (2, 2)
    name = next(f for f in accounts["fields"] if f["field"] == "Name")
    assert (name["matches"], name["mismatches"]) == (1, 1)
    assert name["examples"][0]["hubspot"] == "Acme Corp"
    assert doc["dead_letters"]["available"] is True
    assert (folder / "report.html").read_text().startswith("<!DOCTYPE html>")
    stored = staging.read_frame(engine, "quality_report")
    assert stored["run_id"].tolist() == ["scheduled__2026-12-06T06:00:00+00:00"]
    assert stored["path"].tolist() == [str(folder)]


def test_a_second_report_trends_against_the_first(engine: sa.Engine) -> None:
    _seed(engine, hs_name="Acme Corp")
    build_report("r1")
    _seed(engine, hs_name="Acme")  # fixed in HubSpot

    doc = json.loads(Path(build_report("r2")["folder"], "report.json").read_text())

    assert [t["run_id"] for t in doc["trend"]] == ["r1", "r2"]
    assert [t["fields"]["Account / companies: Name"] for t in doc["trend"]] == [0.5, 0.0]
