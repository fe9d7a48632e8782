"""The build_plan task's bookkeeping: undecidable records kept in quarantine, resolved later (SYNC-5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from crm_sync import staging
from crm_sync.plan import PlanRow, plan_frame
from crm_sync.rules.deal_contacts import PLANNED_ASSOCIATION_SNAPSHOT_TABLE, next_association_snapshot
from crm_sync.tasks.rules import _publish_plan, advance_association_snapshot, load_inputs


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRM_STAGING", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "s.db")})
    )
    eng = staging.staging_engine()
    staging.ensure_schema(eng)
    yield eng
    staging.dispose_engines()


def _quarantine(source_id: str, rule: str) -> PlanRow:
    return PlanRow("salesforce", "Opportunity", "quarantine", source_id=source_id, rules=[rule], reason="why")


def _open(engine: sa.Engine) -> dict[str, int]:
    q = staging.read_frame(engine, "quarantine")
    q = q[(q["stage"] == "rules") & q["resolved_at"].isna()]
    return dict(zip(q["record_id"], q["attempts"], strict=True))


def test_sync5_rule_quarantine_is_kept_counted_and_resolved_once_decided(engine: sa.Engine) -> None:
    _publish_plan(
        engine, "r1", plan_frame([_quarantine("3010", "DEAL-8"), _quarantine("3011", "DEAL-3")], "r1")
    )
    assert _open(engine) == {"3010": 1, "3011": 1}

    # r2: 3011 is decided now; 3010 still cannot be.
    _publish_plan(engine, "r2", plan_frame([_quarantine("3010", "DEAL-8")], "r2"))
    assert _open(engine) == {"3010": 2}
    # Re-running r2 (a task retry) changes nothing.
    _publish_plan(engine, "r2", plan_frame([_quarantine("3010", "DEAL-8")], "r2"))
    assert _open(engine) == {"3010": 2}
    assert len(staging.read_plan(engine, "r2")) == 1


def test_resolving_one_rule_leaves_the_records_other_rules_open(engine: sa.Engine) -> None:
    rows = [
        {"system": "hubspot", "object": "deals", "record_id": "7", "rule": rule, "reason": "r", "payload": {}}
        for rule in ("DEAL-8", "DEAL-3")
    ]
    staging.quarantine_rows(engine, rows, stage="rules", run_id="r1")
    with engine.begin() as conn:
        resolved = staging.resolve_quarantine(
            conn,
            stage="rules",
            system="hubspot",
            object_name="deals",
            record_ids=["7"],
            at=staging.now_utc(),
            rule="DEAL-8",
        )
    assert resolved == 1
    q = staging.read_frame(engine, "quarantine").set_index("rule")
    assert q["resolved_at"].notna()["DEAL-8"]
    assert q["resolved_at"].isna()["DEAL-3"]


def test_deal6_association_snapshot_round_trip_through_staging(engine: sa.Engine) -> None:
    """What the loader stores after a load is what the next run's rules read (DEAL-6)."""
    assert load_inputs(engine, now=staging.now_utc()).association_snapshot.empty  # before any load
    planned = pd.DataFrame(
        [{"opportunity_id": "006A", "deal_id": "9001", "contact_id": "003A", "hs_contact_id": "H1"}]
    )
    staging.replace_run_rows(engine, PLANNED_ASSOCIATION_SNAPSHOT_TABLE, planned, "r1")
    assert advance_association_snapshot(engine, "r1") == 1
    read_back = load_inputs(engine, now=staging.now_utc()).association_snapshot
    assert next_association_snapshot(read_back).to_dict("records") == planned.to_dict("records")
