"""``crm-sync``: what users read the plan and the quarantine with."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from crm_sync import staging
from crm_sync.cli import main
from crm_sync.plan import PLAN_COLUMNS, PlanRow, plan_frame


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRM_STAGING", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "s.db")})
    )
    eng = staging.staging_engine()
    staging.ensure_schema(eng)
    yield eng
    staging.dispose_engines()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _seed_two_runs(engine: object) -> None:
    older = plan_frame([PlanRow("hubspot", "companies", "create", source_id="001A", rules=["ACC-1"])], "old")
    newer = plan_frame(
        [
            PlanRow(
                "salesforce",
                "Lead",
                "create",
                source_id="2016",
                fields={"LastName": "Hendricks"},
                rules=["CON-2", "OWN-1"],
            ),
            PlanRow(
                "hubspot", "deals", "skip", source_id="3012", rules=["DEAL-3"], reason="default pipeline"
            ),
        ],
        "new",
    )
    staging.record_run(engine, "old", dag_id="crm_sync", dry_run=True)
    staging.write_plan(engine, "old", older)
    staging.record_run(engine, "new", dag_id="crm_sync", dry_run=True)
    staging.write_plan(engine, "new", newer)


def test_plan_jsonl_prints_the_latest_run_with_exactly_the_contract_keys(
    engine: object, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed_two_runs(engine)
    code, out, _ = _run(capsys, "plan", "--format", "jsonl")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [tuple(r) for r in rows] == [PLAN_COLUMNS, PLAN_COLUMNS]
    assert {r["run_id"] for r in rows} == {"new"}
    lead, deal = rows
    assert lead["fields"] == {"LastName": "Hendricks"}
    assert lead["rules"] == ["CON-2", "OWN-1"]
    assert lead["target_id"] is None  # null, never NaN
    assert deal["reason"] == "default pipeline"


def test_plan_table_counts_per_target_object_action_and_rule(
    engine: object, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed_two_runs(engine)
    code, out, _ = _run(capsys, "plan", "--run-id", "old")
    assert code == 0
    assert "plan of run old: 1 rows" in out
    assert "hubspot  companies  create  ACC-1      1" in out


def test_plan_without_any_run_says_what_to_do(engine: object, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "plan")
    assert code == 2
    assert "make demo" in err


def test_quarantine_lists_open_entries_with_their_reason(
    engine: object, capsys: pytest.CaptureFixture[str]
) -> None:
    staging.quarantine_rows(
        engine,
        [
            {
                "system": "salesforce",
                "object": "Account",
                "record_id": "001X",
                "rule": "SYNC-5:unknown_picklist",
                "reason": "Industry 'Alchemy' is not a picklist value",
                "payload": {"Industry": "Alchemy"},
            },
        ],
        stage="extract",
        run_id="r1",
    )
    code, out, _ = _run(capsys, "quarantine")
    assert code == 0
    assert "1 open entries" in out
    assert "Industry 'Alchemy' is not a picklist value" in out
    code, out, _ = _run(capsys, "quarantine", "--format", "jsonl")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert row["payload"] == {"Industry": "Alchemy"}
    assert row["attempts"] == 1
    assert _run(capsys, "quarantine", "--stage", "rules")[1].startswith("quarantine: 0 open entries")


def test_check_config_names_the_bad_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("integration_user_email: x@y.z\nsync_enabled_at: {accounts: soon}\n")
    code, _, err = _run(capsys, "check-config", str(bad))
    assert code == 2
    assert "sync_enabled_at.accounts" in err


def test_empty_plan_table_says_there_is_nothing_to_do() -> None:
    from crm_sync.cli import write_table

    buffer = io.StringIO()
    write_table(plan_frame([]), "empty", buffer)
    assert "(empty plan: nothing to do)" in buffer.getvalue()


def test_dead_letters_lists_rejected_writes_and_releases_held_ones(
    engine: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from crm_sync.load import deadletters
    from crm_sync.load.writer import LoadItem, WriteOutcome

    item = LoadItem(3, "hubspot", "contacts", "create", "003X", None, {"email": "bad@"}, ("CON-3",))
    failure = deadletters.DeadLetter(
        item, WriteOutcome(3, error_code="INVALID_EMAIL", message="Email is invalid")
    )
    with engine.begin() as conn:  # type: ignore[attr-defined]
        for run_id in ("r1", "r2"):
            deadletters.record(conn, run_id, [failure], staging.now_utc())

    code, out, _ = _run(capsys, "dead-letters")
    assert code == 0
    assert "1 open entries" in out
    assert "INVALID_EMAIL" in out
    assert "Email is invalid" in out
    code, out, _ = _run(capsys, "dead-letters", "--format", "jsonl")
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert (row["source_id"], row["attempts"], row["fields"]) == ("003X", 2, {"email": "bad@"})
    assert deadletters.held(engine, "hubspot", max_attempts=2) == {("contacts", "create:003X")}  # type: ignore[arg-type]
    assert _run(capsys, "dead-letters", "--release")[1].startswith(
        "dead letters: 1 open entries get new attempts"
    )
    assert deadletters.held(engine, "hubspot", max_attempts=2) == set()  # type: ignore[arg-type]
    assert _run(capsys, "dead-letters", "--target", "salesforce")[1].startswith(
        "dead letters: 0 open entries"
    )
