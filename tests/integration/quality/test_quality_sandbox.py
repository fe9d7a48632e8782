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

from tests.integration.quality import scenario as sc
from tests.integration.quality.support import (
    BIN,
    World,
    rendered,
    report_run,
    run_report_dag,
    sync_until_validate,
    table_rows,
    writes,
)
from tests.integration.sync_harness import sync

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
        "rollup_mismatches": 4,
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
    validation = {v["object"]: v for v in doc["validation"]}
    assert validation["staged.hubspot.contacts"] == {
        "object": "staged.hubspot.contacts",
        "rows": 3,
        "failed": 1,
        "rate": pytest.approx(1 / 3, abs=1e-6),
        "failing_expectations": {"email_valid": 1},
    }
    assert validation["staged.salesforce.Account"]["failed"] == 0
    # HubSpot calculates its rollups from the deal's amount there (4,500); crm-sync expects the
    # amount the sync will settle on (Salesforce's 5,000, SYNC-3): ROLL-4 and ROLL-5 differ.
    rollups = {(r["object"], r["field"]): r for r in doc["rollups"]}
    assert {key for key, r in rollups.items() if r["mismatches"]} == {
        (obj, field) for obj in ("contacts", "companies") for field in ("recent_deal_amount", "total_revenue")
    }
    assert rollups[("contacts", "total_revenue")]["examples"] == [
        {"record_id": "2001", "expected": 5000.0, "hubspot": 4500.0}
    ]
    assert rollups[("companies", "recent_deal_amount")]["examples"] == [
        {"record_id": "1001", "expected": 5000.0, "hubspot": 4500.0}
    ]
    assert all(r["compared"] == 1 for r in rollups.values())

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
    assert ["staged.hubspot.contacts", "3", "1", "33.3%", "email_valid: 1"] in table_rows(dom, "validation")
    quarantined = table_rows(dom, "quarantine")
    assert ["validate", "hubspot", "contacts", bad_id, "email_valid"] in [r[:5] for r in quarantined]


def _read(result: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(Path(result["folder"], "report.json").read_text())
    return doc


def test_after_a_sync_only_the_pair_validation_held_back_still_differs(
    world_for: Callable[[Mapping[str, Any]], World],
) -> None:
    # The seeded mismatches, and Bob's HubSpot email made invalid: his pair is held back.
    world_for(sc.with_quarantined_pair(sc.build(clean=False)))
    loads = sync("manual__sync_1")
    assert loads["hubspot"]["written"] > 0

    doc = _read(report_run("report__1"))

    s = doc["summary"]
    # The survivor of the duplicate group created its company: three Account pairs now.
    assert {o["object"]: o["pairs_compared"] for o in doc["objects"]} == {**PAIRS, "Account / companies": 3}
    assert (s["fields_compared"], s["matches"], s["mismatches"]) == (49, 47, 2)
    assert (s["missing_salesforce"], s["missing_hubspot"], s["rollup_mismatches"]) == (0, 0, 0)
    differing = {key: f for key, f in _fields(doc).items() if f["matches"] != f["compared"]}
    assert set(differing) == {("Contact / contacts", "Email"), ("Contact / contacts", "Phone")}
    assert differing[("Contact / contacts", "Email")]["examples"] == [
        {
            "kind": "mismatch",
            "sf_id": sc.BOB,
            "hs_id": "2002",
            "salesforce": "bob@globex.com",
            "hubspot": "bob(at)globex.com",
        }
    ]
    assert differing[("Contact / contacts", "Phone")]["examples"][0]["hubspot"] == "+1 212 555 0199"
    assert {(e["stage"], e["record_id"], e["rule"]) for e in doc["quarantine"]["entries"]} == {
        ("rules", sc.BAD_EMAIL_CONTACT[0], "CON-1,CON-2"),
        ("validate", sc.BAD_EMAIL_CONTACT[0], "email_valid"),
        ("validate", "2002", "email_valid"),
    }
    assert doc["dead_letters"] == {"available": True, "open": 0, "by": [], "entries": []}
    assert [g["survivor_id"] for g in doc["duplicates"]] == [sc.DUP_NEW]


def test_a_clean_scenario_matches_every_field_after_a_sync_and_trends_persist(
    world_for: Callable[[Mapping[str, Any]], World],
) -> None:
    world_for(sc.build(clean=True))
    sync("manual__sync_1")

    first = report_run("report__1")
    doc = _read(report_run("report__2"))

    assert first["summary"]["match_rate"] == 1.0
    assert doc["summary"]["fields_compared"] == 49
    assert doc["summary"]["match_rate"] == 1.0
    assert doc["summary"]["mismatches"] == doc["summary"]["missing_salesforce"] == 0
    assert doc["summary"]["missing_hubspot"] == doc["summary"]["rollup_mismatches"] == 0
    assert doc["summary"]["open_quarantine"] == doc["summary"]["dead_letters"] == 0
    assert all(f["matches"] == f["compared"] for f in _fields(doc).values())
    assert all(r["matches"] == r["compared"] == 1 for r in doc["rollups"])
    assert [t["run_id"] for t in doc["trend"]] == ["report__1", "report__2"]
    engine = staging.staging_engine()
    with engine.connect() as conn:
        stored = conn.execute(
            sa.select(store.quality_field_stats.c.run_id, sa.func.count()).group_by(
                store.quality_field_stats.c.run_id
            )
        ).all()
    assert sorted(stored) == [("report__1", 25), ("report__2", 25)]


def test_a_failure_rate_above_the_threshold_stops_before_loading_with_both_crms_untouched(
    world_for: Callable[[Mapping[str, Any]], World],
) -> None:
    # 6 of the 62 HubSpot contacts have an invalid email: 9.7% > 5%, over more than 50 rows.
    world = world_for(sc.with_bad_emails(sc.build(clean=True), good=54, bad=6))

    with pytest.raises(AirflowFailException) as stopped:
        sync("manual__sync_1")  # the whole run: validate stops it before the loads

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
