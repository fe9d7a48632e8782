"""The ``validate`` task against a real staging database: quarantine, held-back plan rows, the gate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from airflow.sdk.exceptions import AirflowFailException
from crm_sync import staging
from crm_sync.plan import PlanRow, plan_frame
from crm_sync.quality.validation import QualityGateError
from crm_sync.settings import default_config_path
from crm_sync.tasks.validate import validate_plan

from tests.staging_db import connection_for_schema, create_schema, drop_schemas, postgres_unreachable


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
        schema = create_schema("quality_validate")
        conn = connection_for_schema(schema)
    monkeypatch.setenv("AIRFLOW_CONN_CRM_STAGING", json.dumps(conn))
    staging.dispose_engines()
    eng = staging.staging_engine()
    staging.ensure_schema(eng)
    yield eng
    staging.dispose_engines()
    if schema:
        drop_schemas(schema)


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: float) -> None:
    raw = yaml.safe_load(default_config_path().read_text())
    raw["quality"] = {"failure_threshold": threshold, "min_rows": 2}
    path = tmp_path / "crm_sync.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CRM_SYNC_CONFIG", str(path))


def _contacts(engine: sa.Engine, emails: dict[str, str]) -> None:
    rows = [
        {"id": i, "email": e, "lastmodifieddate": staging.now_utc(), "_deleted": False}
        for i, e in emails.items()
    ]
    staging.upsert_rows(engine, "hs_contact", rows, ["id"])


def _plan(engine: sa.Engine, run_id: str) -> None:
    rows = [
        PlanRow("salesforce", "Lead", "create", source_id=i, fields={"LastName": i}, rules=["CON-2"])
        for i in ("2001", "2002")
    ]
    staging.write_plan(engine, run_id, plan_frame(rows, run_id))


def _open_quarantine(engine: sa.Engine) -> list[tuple[str, str, str]]:
    q = staging.read_frame(engine, "quarantine")
    q = q[(q["stage"] == "validate") & q["resolved_at"].isna()]
    return sorted(zip(q["object"], q["record_id"], q["rule"], strict=True))


def test_failing_records_are_quarantined_their_rows_held_back_and_resolved_once_fixed(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path, monkeypatch, threshold=0.9)
    _contacts(engine, {"2001": "ann@acme.com", "2002": "bo at initech"})
    _plan(engine, "r1")

    result = validate_plan("r1")

    assert result["quarantined"] == 1
    assert result["plan_rows_held_back"] == 1
    assert result["objects"]["staged.hubspot.contacts"]["failed"] == 1
    assert _open_quarantine(engine) == [("contacts", "2002", "email_valid")]
    entry = staging.read_frame(engine, "quarantine").iloc[0]
    assert json.loads(entry["payload"]) == {"id": "2002", "email": "bo at initech"}
    plan = staging.read_plan(engine, "r1")
    assert plan["action"].tolist() == ["create", "quarantine"]
    assert plan.loc[1, "rules"] == ["CON-2", "SYNC-5"]
    assert plan.loc[1, "reason"].startswith("validate email_valid: hubspot contacts 2002:")

    # A retry of the same run changes nothing.
    validate_plan("r1")
    assert staging.read_plan(engine, "r1")["action"].tolist() == ["create", "quarantine"]
    assert staging.read_frame(engine, "quarantine")["attempts"].tolist() == [1]

    # The address is fixed in HubSpot; the next run's validation resolves the entry.
    _contacts(engine, {"2002": "bo@initech.com"})
    _plan(engine, "r2")
    assert validate_plan("r2")["resolved"] == 1
    assert _open_quarantine(engine) == []
    assert staging.read_plan(engine, "r2")["action"].tolist() == ["create", "create"]


def test_a_failure_rate_above_the_threshold_fails_the_task_naming_the_expectation(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _config(tmp_path, monkeypatch, threshold=0.05)
    _contacts(engine, {"2001": "ann@acme.com", "2002": "bo at initech"})
    _plan(engine, "r1")

    with pytest.raises(AirflowFailException) as failed:
        validate_plan("r1")

    assert isinstance(failed.value.__cause__, QualityGateError)
    message = str(failed.value)
    assert "hubspot contacts: 1 of 2 rows fail (50.0%)" in message
    assert "email_valid" in message
    assert "bo at initech" in message
    # The failing row is kept for inspection even though the run stops.
    assert _open_quarantine(engine) == [("contacts", "2002", "email_valid")]


def test_staged_deals_are_validated_with_their_stage_and_owner_read_from_staging(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the task once replaced the staged deals by their pipelines only (for the plan
    suite), so a deal's stage, owner, amount and close date were never checked."""
    _config(tmp_path, monkeypatch, threshold=0.9)
    at = staging.now_utc()
    staging.upsert_rows(engine, "hs_owner", [{"id": "901", "_deleted": False}], ["id"])
    staging.upsert_rows(
        engine,
        "hs_pipeline_stage",
        [{"id": "s1", "pipeline_id": "101", "label": "S1", "_deleted": False}],
        ["id"],
    )
    deals = [
        {"id": "3001", "pipeline": "101", "dealstage": "s1", "hubspot_owner_id": "901"},
        {"id": "3002", "pipeline": "101", "dealstage": "gone", "hubspot_owner_id": "901"},
        {"id": "3003", "pipeline": "101", "dealstage": "s1", "hubspot_owner_id": "999"},
    ]
    staging.upsert_rows(
        engine, "hs_deal", [{**d, "hs_lastmodifieddate": at, "_deleted": False} for d in deals], ["id"]
    )
    staging.write_plan(engine, "r1", plan_frame([], "r1"))

    result = validate_plan("r1")

    assert result["objects"]["staged.hubspot.deals"]["by_check"]["stage_in_pipeline"] == 1
    assert result["objects"]["staged.hubspot.deals"]["by_check"]["owner_resolves"] == 1
    assert _open_quarantine(engine) == [
        ("deals", "3002", "stage_in_pipeline"),
        ("deals", "3003", "owner_resolves"),
    ]
