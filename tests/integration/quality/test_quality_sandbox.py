"""Validation and the data-quality report end to end, against the sandbox through the real clients.

The scenario (:mod:`tests.integration.quality.scenario`) seeds known mismatches on linked pairs,
a HubSpot contact with an invalid email and two duplicate Accounts. ``crm_sync``'s tasks run up
to ``validate`` as the DAG runs them; the report comes from the real ``crm_data_quality_report``
DAG (``airflow dags test``), which re-extracts both CRMs first. The JSON's exact figures and
examples are asserted, and the HTML is checked as headless Chromium renders it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from airflow.sdk.exceptions import AirflowFailException
from crm_sandbox.server import running_sandbox
from crm_sync import staging
from crm_sync.quality import store
from crm_sync.tasks.report import build_report

from tests.integration.quality import scenario as sc
from tests.integration.quality.support import (
    BIN,
    World,
    rendered,
    run_report_dag,
    sync_until_validate,
    table_rows,
    writes,
)

pytestmark = pytest.mark.slow

#: Synced fields per object under the shipped config (mapped fields but ``none``, plus owner;
#: deals add pipeline, stage and currency).
FIELDS = {"Account / companies": 9, "Contact / contacts": 6, "Lead / contacts": 0, "Opportunity / deals": 10}
PAIRS = {"Account / companies": 2, "Contact / contacts": 2, "Lead / contacts": 0, "Opportunity / deals": 1}


@pytest.fixture
def world_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Mapping[str, Any]], World]]:
    stack: list[Any] = []

    def start(scenario: Mapping[str, Any]) -> World:
        ctx = running_sandbox(scenario)
        endpoints = ctx.__enter__()
        stack.append(ctx)
        world = World(
            endpoints,
            home=tmp_path / "airflow",
            reports=tmp_path / "reports",
            staging_conn={"conn_type": "sqlite", "host": str(tmp_path / "staging.db")},
        )
        world.home.mkdir()
        monkeypatch.delenv("CRM_SYNC_CONFIG", raising=False)
        world.connect(monkeypatch)
        staging.dispose_engines()
        return world

    yield start
    staging.dispose_engines()
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


def _report(world: World) -> tuple[dict[str, Any], Path]:
    folders = [p for p in world.reports.iterdir() if (p / "report.json").is_file()]
    assert len(folders) == 1, folders
    return json.loads((folders[0] / "report.json").read_text()), folders[0]


def _fields(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["object"], f["field"]): f for o in doc["objects"] for f in o["fields"]}


def test_the_report_counts_seeded_mismatches_duplicates_quarantine_and_rollups(
    world_for: Callable[[Mapping[str, Any]], World], tmp_path: Path
) -> None:
    world = world_for(sc.build(clean=False))
    validated = sync_until_validate("manual__sync_1")
    assert validated["objects"]["staged.hubspot.contacts"]["failed"] == 1

    run_report_dag(world, tmp_path / "report-dag.log")
    doc, folder = _report(world)

    assert doc["dag_id"] == "crm_data_quality_report"
    assert doc["source_run_id"] == "manual__sync_1"
    assert doc["summary"] == {
        "linked_pairs": 5,
        "pairs_compared": 5,
        "fields_compared": 40,
        "matches": 36,
        "mismatches": 3,
        "missing_salesforce": 0,
        "missing_hubspot": 1,
        "match_rate": 0.9,
        "open_quarantine": 2,
        "dead_letters": 0,
        "duplicate_groups": 1,
        "mixed_currency": 0,
        "rollup_mismatches": 10,
    }
    assert {o["object"]: len(o["fields"]) for o in doc["objects"]} == FIELDS
    assert {o["object"]: o["pairs_compared"] for o in doc["objects"]} == PAIRS
    fields = _fields(doc)
    differing = {key for key, f in fields.items() if f["matches"] != f["compared"]}
    assert differing == {(obj, field) for obj, field, *_ in sc.MISMATCHES}
    for obj, field, kind, sf_id, hs_id, sf_value, hs_value in sc.MISMATCHES:
        f = fields[(obj, field)]
        assert (f["compared"], f["matches"], f[kind if kind != "mismatch" else "mismatches"]) == (
            PAIRS[obj],
            PAIRS[obj] - 1,
            1,
        )
        assert f["mismatch_rate"] == pytest.approx(1 / PAIRS[obj])
        assert f["examples"] == [
            {"kind": kind, "sf_id": sf_id, "hs_id": hs_id, "salesforce": sf_value, "hubspot": hs_value}
        ]
    # Translated fields agree: owners by email, pipeline and stage by name, currency code.
    for name in ("owner", "pipeline", "stage", "currency"):
        assert fields[("Opportunity / deals", name)]["matches"] == 1

    assert doc["duplicates"] == [
        {
            "group_id": sc.DUP_OLD,
            "size": 2,
            "survivor_id": sc.DUP_NEW,
            "survivor_name": "Initech, Inc.",
            "members": [
                {
                    "sf_id": sc.DUP_NEW,
                    "name": "Initech, Inc.",
                    "survivor": True,
                    "key": "domain initech.com; name initech",
                },
                {
                    "sf_id": sc.DUP_OLD,
                    "name": "Initech LLC",
                    "survivor": False,
                    "key": "domain initech.com; name initech",
                },
            ],
        }
    ]
    bad_id, _ = sc.BAD_EMAIL_CONTACT
    assert {(e["stage"], e["object"], e["record_id"], e["rule"]) for e in doc["quarantine"]["entries"]} == {
        ("rules", "Lead", bad_id, "CON-1,CON-2"),
        ("validate", "contacts", bad_id, "email_valid"),
    }
    assert doc["dead_letters"]["open"] == 0
    rollups = {(r["object"], r["field"]): r for r in doc["rollups"]}
    assert rollups[("contacts", "total_revenue")]["examples"] == [
        {"record_id": "2001", "expected": 5000.0, "hubspot": None}
    ]
    assert all((r["compared"], r["mismatches"]) == (1, 1) for r in rollups.values())

    # The task log and the CLI show the summary and the path.
    log = (tmp_path / "report-dag.log").read_text()
    assert "data-quality report" in log
    assert str(folder / "report.html") in log
    cli = subprocess.run(
        [str(BIN / "crm-sync"), "report", "--format", "path"],
        env={**world.env(), "PATH": str(BIN)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert cli.stdout.strip() == str(folder / "report.html")

    # The HTML, as a browser renders it: tables and the chart carry the same figures.
    dom = rendered(folder / "report.html")
    rows = {(r[0], r[1]): r for r in table_rows(dom, "field-stats")}
    assert len(rows) == sum(FIELDS.values())
    assert rows[("Account / companies", "Name")][3:9] == ["2", "1", "1", "0", "0", "50.0%"]
    assert rows[("Contact / contacts", "Title")][3:9] == ["2", "1", "0", "0", "1", "50.0%"]
    bars = {
        b.get("data-field"): float(b.get("data-rate"))
        for b in dom.xpath('//svg[@id="mismatch-chart"]//rect[@class="bar"]')
    }
    assert len(bars) == sum(FIELDS.values())
    assert bars["Opportunity / deals: Amount"] == 1.0
    assert bars["Opportunity / deals: CloseDate"] == 0.0
    examples = table_rows(dom, "examples")
    assert ["Opportunity / deals", "Amount", "mismatch", sc.OPP, "3001", "5000.0", "4500.0"] in examples
    assert [r[3] for r in table_rows(dom, "duplicates")] == [sc.DUP_NEW, sc.DUP_OLD]
    trend = dom.xpath('//svg[@id="trend-chart"]//polyline[contains(@class, "match")]')
    assert [t.get("data-values") for t in trend] == ["0.900000"]
    quarantined = table_rows(dom, "quarantine")
    assert ["validate", "hubspot", "contacts", bad_id, "email_valid"] in [r[:5] for r in quarantined]


def test_a_clean_scenario_matches_every_field_and_trends_persist(
    world_for: Callable[[Mapping[str, Any]], World],
) -> None:
    world = world_for(sc.build(clean=True))
    sync_until_validate("manual__sync_1")

    first = build_report("report__1")
    second = build_report("report__2")

    assert first["summary"]["match_rate"] == 1.0
    doc = json.loads(Path(second["folder"], "report.json").read_text())
    assert doc["summary"]["fields_compared"] == 40
    assert doc["summary"]["mismatches"] == doc["summary"]["missing_salesforce"] == 0
    assert doc["summary"]["missing_hubspot"] == doc["summary"]["rollup_mismatches"] == 0
    assert doc["summary"]["open_quarantine"] == 0
    assert all(f["matches"] == f["compared"] for f in _fields(doc).values())
    assert [t["run_id"] for t in doc["trend"]] == ["report__1", "report__2"]
    engine = staging.staging_engine()
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(store.quality_field_stats.c.run_id, sa.func.count()).group_by(
                store.quality_field_stats.c.run_id
            )
        ).all()
    assert sorted(stored) == [("report__1", 25), ("report__2", 25)]
    assert writes(world.stats(), "salesforce") == []


def test_a_failure_rate_above_the_threshold_stops_before_loading_with_both_crms_untouched(
    world_for: Callable[[Mapping[str, Any]], World],
) -> None:
    # 6 of the 62 HubSpot contacts have an invalid email: 9.7% > 5%, over more than 50 rows.
    world = world_for(sc.with_bad_emails(sc.build(clean=True), good=54, bad=6))

    with pytest.raises(AirflowFailException) as stopped:
        sync_until_validate("manual__sync_1")

    message = str(stopped.value)
    assert "hubspot contacts: 6 of 62 rows fail (9.7%)" in message
    assert "email_valid (expect_column_values_to_match_regex)" in message
    assert "lead0(at)example.com" in message
    stats = world.stats()
    assert writes(stats, "salesforce") == []
    assert writes(stats, "hubspot") == []
    quarantine = staging.read_frame(staging.staging_engine(), "quarantine")
    mine = quarantine[quarantine["stage"] == "validate"]
    assert sorted(mine["record_id"]) == [str(5000 + i) for i in range(6)]
