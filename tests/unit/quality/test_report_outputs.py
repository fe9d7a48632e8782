"""The report's outputs: findings, the document, the HTML, stored figures, paths, the CLI, the plugin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from crm_sync import staging
from crm_sync.cli import main
from crm_sync.quality import findings, paths, render, store
from crm_sync.quality.comparison import FieldStats, ObjectComparison
from crm_sync.quality.report import document, summary_lines
from lxml import html as lxml_html

from tests.unit.quality.world import frame

AT = datetime(2026, 12, 6, 6, 0, tzinfo=UTC)


def _found(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "duplicates": [],
        "quarantine": findings.open_entries(pd.DataFrame(), ("stage",), ("stage",), 5),
        "dead_letters": findings.open_entries(None, ("target",), ("target",), 5),
        "mixed_currency": [],
        "rollups": [],
    }
    return {**base, **overrides}


def _objects(name_mismatches: int = 1) -> list[ObjectComparison]:
    name = FieldStats("Account / companies", "Name", "Name", "name", compared=4, matches=4 - name_mismatches)
    name.mismatches = name_mismatches
    name.examples = [
        {"kind": "mismatch", "sf_id": "001A", "hs_id": "1", "salesforce": "<Acme & Co>", "hubspot": "Acme"}
    ]
    phone = FieldStats(
        "Account / companies", "Phone", "Phone", "phone", compared=4, matches=3, missing_hubspot=1
    )
    return [ObjectComparison("Account / companies", 5, 4, 1, [name, phone])]


def _doc(run_id: str = "scheduled__2026-12-06T06:00:00+00:00", **kw: Any) -> dict[str, Any]:
    return document(
        run_id=run_id,
        dag_id="crm_data_quality_report",
        source_run_id="manual__1",
        generated_at=AT,
        objects=kw.get("objects", _objects()),
        findings=kw.get("findings", _found()),
        history=kw.get("history", []),
    )


def test_the_document_sums_up_and_the_log_names_the_worst_fields() -> None:
    doc = _doc()
    assert doc["summary"]["fields_compared"] == 8
    assert doc["summary"]["matches"] == 6
    assert doc["summary"]["match_rate"] == 0.75
    assert doc["summary"]["dead_letters"] == 0
    assert doc["dead_letters"]["available"] is False
    assert doc["trend"][-1]["fields"] == {
        "Account / companies: Name": 0.25,
        "Account / companies: Phone": 0.25,
    }
    lines = summary_lines(doc, "/r/report.html")
    assert lines[0].endswith("6 of 8 field comparisons match (75.0%) over 4 linked pairs")
    assert "  Account / companies: Name differs in 1 of 4 pairs (25.0%)" in lines
    assert lines[-1] == "  report: /r/report.html"


def test_findings_list_groups_with_survivors_open_entries_and_mixed_currencies() -> None:
    groups = frame(
        [
            {
                "group_id": "001A",
                "sf_id": "001A",
                "is_survivor": 0,
                "survivor_id": "001B",
                "key": "name acme",
            },
            {
                "group_id": "001A",
                "sf_id": "001B",
                "is_survivor": 1,
                "survivor_id": "001B",
                "key": "name acme",
            },
        ]
    )
    accounts = frame([{"Id": "001A", "Name": "Acme Inc"}, {"Id": "001B", "Name": "ACME"}])
    assert findings.duplicate_groups(groups, accounts) == [
        {
            "group_id": "001A",
            "size": 2,
            "survivor_id": "001B",
            "survivor_name": "ACME",
            "members": [
                {"sf_id": "001B", "name": "ACME", "survivor": True, "key": "name acme"},
                {"sf_id": "001A", "name": "Acme Inc", "survivor": False, "key": "name acme"},
            ],
        }
    ]
    letters = frame(
        [
            {
                "target": "hubspot",
                "object": "deals",
                "record_id": "1",
                "error_code": "X",
                "resolved_at": None,
            },
            {"target": "hubspot", "object": "deals", "record_id": "2", "error_code": "X", "resolved_at": AT},
        ]
    )
    block = findings.open_entries(letters, ("target", "object", "error_code"), ("record_id", "error_code"), 5)
    assert block == {
        "available": True,
        "open": 1,
        "by": [{"target": "hubspot", "object": "deals", "error_code": "X", "count": 1}],
        "entries": [{"record_id": "1", "error_code": "X"}],
    }
    flags = frame(
        [
            {
                "object": "companies",
                "record_id": "9",
                "currencies": "EUR,USD",
                "won_deals": 2,
                "total_revenue": 5.0,
            }
        ]
    )
    assert findings.mixed_currency(flags) == [
        {
            "object": "companies",
            "record_id": "9",
            "currencies": "EUR,USD",
            "won_deals": 2,
            "total_revenue": 5.0,
        }
    ]


def test_rollups_compare_hubspots_values_with_the_expectation_roll6_blank_is_blank() -> None:
    expected = frame(
        [
            {
                "object": "contacts",
                "record_id": "1",
                "num_associated_deals": 2,
                "total_revenue": None,
                "first_deal_created_date": pd.Timestamp("2026-01-01T10:00:00Z"),
                "recent_deal_close_date": None,
                "recent_deal_amount": None,
            },
            {"object": "contacts", "record_id": "@contacts:003X", "num_associated_deals": 1},
        ]
    )
    hs = {
        "hs_contact": frame(
            [
                {
                    "id": "1",
                    "num_associated_deals": "2",
                    "total_revenue": "0",
                    "first_deal_created_date": "2026-01-01T10:00:00.000Z",
                }
            ]
        )
    }
    rows = {r["field"]: r for r in findings.rollup_differences(expected, hs, 5)}
    assert (rows["num_associated_deals"]["matches"], rows["first_deal_created_date"]["matches"]) == (1, 1)
    assert rows["recent_deal_amount"]["matches"] == 1  # both blank
    assert rows["total_revenue"]["examples"] == [{"record_id": "1", "expected": None, "hubspot": "0"}]
    assert rows["total_revenue"]["rules"] == ["ROLL-5"]


def test_the_html_is_self_contained_escaped_and_carries_its_figures() -> None:
    history = [
        {
            "run_id": "old",
            "generated_at": "x",
            "match_rate": 0.5,
            "fields": {"Account / companies: Name": 0.5},
        }
    ]
    page = render.html(_doc(history=history))
    assert "<script" not in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "&lt;Acme &amp; Co&gt;" in page
    dom = lxml_html.fromstring(page)
    bars = dom.xpath('//svg[@id="mismatch-chart"]//rect[@class="bar"]')
    assert [(b.get("data-field"), b.get("data-rate")) for b in bars] == [
        ("Account / companies: Name", "0.250000"),
        ("Account / companies: Phone", "0.250000"),
    ]
    match = dom.xpath('//svg[@id="trend-chart"]//polyline[contains(@class, "match")]')[0]
    assert match.get("data-values") == "0.500000,0.750000"
    rows = dom.xpath('//table[@id="field-stats"]/tbody/tr')
    assert [td.text_content() for td in rows[1].xpath("td")] == [
        "Account / companies",
        "Phone",
        "Phone / phone",
        "4",
        "3",
        "0",
        "0",
        "1",
        "25.0%",
    ]
    assert "not recorded in this staging yet" in page


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRM_STAGING", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "s.db")})
    )
    eng = staging.staging_engine()
    staging.ensure_schema(eng)
    yield eng
    staging.dispose_engines()


def test_figures_persist_per_run_and_come_back_as_the_trend(engine: sa.Engine) -> None:
    store.save(engine, _doc("r1", objects=_objects(1)), "/r1")
    store.save(engine, _doc("r2", objects=_objects(2)), "/r2")
    store.save(engine, _doc("r2", objects=_objects(3)), "/r2")  # a re-run replaces its rows
    trend = store.history(engine, 5)
    assert [t["run_id"] for t in trend] == ["r1", "r2"]
    assert trend[1]["fields"]["Account / companies: Name"] == 0.75
    assert store.history(engine, 5, exclude="r2")[-1]["run_id"] == "r1"
    assert len(staging.read_frame(engine, "quality_field_stats")) == 4


def test_report_paths_and_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path))
    run_id = "scheduled__2026-12-06T06:00:00+00:00"
    folder = paths.run_dir(run_id)
    assert folder == tmp_path / "scheduled__2026-12-06T06_00_00_00_00"
    assert main(["report"]) == 2
    folder.mkdir()
    doc = _doc(run_id)
    (folder / paths.JSON).write_text(json.dumps(doc))
    (folder / paths.HTML).write_text(render.html(doc))
    capsys.readouterr()
    assert main(["report", "--format", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(folder / paths.HTML)
    assert main(["report", "--run-id", run_id, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["match_rate"] == 0.75
    assert main(["report", "--run-id", run_id]) == 0
    assert "field comparisons match (75.0%)" in capsys.readouterr().out
    assert main(["report", "--run-id", "other"]) == 2


def test_the_plugin_links_runs_to_their_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from crm_sync_reports import URL_PREFIX, CrmSyncReportsPlugin, app
    from fastapi.testclient import TestClient

    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path))
    run_id = "manual__2026-12-06T06:00:00+00:00"
    folder = paths.run_dir(run_id)
    folder.mkdir()
    doc = _doc(run_id)
    (folder / paths.JSON).write_text(json.dumps(doc))
    (folder / paths.HTML).write_text(render.html(doc))
    client = TestClient(app)
    assert run_id in client.get("/").text
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200
    assert 'id="mismatch-chart"' in page.text
    assert client.get(f"/runs/{folder.name}").status_code == 200
    assert client.get(f"/runs/{run_id}/report.json").json()["run_id"] == run_id
    assert (
        client.get("/latest", follow_redirects=False).headers["location"]
        == f"{URL_PREFIX}/runs/{folder.name}"
    )
    assert client.get("/runs/nope").status_code == 404
    views = {v["destination"]: v["href"] for v in CrmSyncReportsPlugin.external_views}
    assert views == {"nav": f"{URL_PREFIX}/", "dag_run": f"{URL_PREFIX}/runs/{{RUN_ID}}"}


def test_long_tables_are_capped_in_the_page_but_complete_in_the_json() -> None:
    groups = [
        {
            "group_id": f"g{i}",
            "size": 1,
            "survivor_id": f"s{i}",
            "survivor_name": None,
            "members": [{"sf_id": f"s{i}", "name": None, "survivor": True, "key": "k"}],
        }
        for i in range(render.MAX_ROWS + 20)
    ]
    doc = _doc(findings=_found(duplicates=groups))
    assert doc["summary"]["duplicate_groups"] == render.MAX_ROWS + 20
    dom = lxml_html.fromstring(render.html(doc))
    assert len(dom.xpath('//table[@id="duplicates"]/tbody/tr')) == render.MAX_ROWS
    assert "20 more rows in report.json." in dom.text_content()
