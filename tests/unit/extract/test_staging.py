"""Staging schema and idempotent writes (SYNC-4), on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from crm_sync import staging
from crm_sync.catalog import ALL_STREAMS, stream
from crm_sync.extract.records import RecordParser
from crm_sync.plan import PlanRow, plan_frame

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ACCOUNT = stream("salesforce", "Account")


def account_rows(*specs: tuple[str, str], deleted: bool = False) -> list[dict[str, Any]]:
    parser = RecordParser(ACCOUNT)
    rows = []
    for rid, name in specs:
        row = parser.parse(
            {"Id": rid, "Name": name, "SystemModstamp": "2026-01-02T03:04:05.000+0000", "IsDeleted": deleted}
        )
        assert isinstance(row, dict)
        rows.append(row)
    return rows


def write(
    engine: sa.Engine, rows: list[dict[str, Any]], run_id: str, at: datetime = T0
) -> staging.WriteResult:
    with engine.begin() as conn:
        return staging.write_raw_rows(conn, ACCOUNT, rows, run_id=run_id, extracted_at=at)


def test_schema_has_one_raw_table_per_catalog_stream_with_source_column_names(engine: sa.Engine) -> None:
    staging.ensure_schema(engine)  # idempotent: a second call changes nothing
    inspector = sa.inspect(engine)
    for s in ALL_STREAMS:
        columns = [c["name"] for c in inspector.get_columns(s.table)]
        assert columns == [*s.field_names, "_deleted", "_run_id", "_extracted_at", "_hash"]
        assert inspector.get_pk_constraint(s.table)["constrained_columns"] == [s.key]
    for table in ("hs_association", "sync_watermark", "sync_link", "sync_snapshot", "sync_import", "sync_run",
                  "sync_log", "quarantine", "plan"):  # fmt: skip
        assert inspector.has_table(table)
    assert inspector.get_pk_constraint("hs_association")["constrained_columns"] == [
        "from_type", "from_id", "to_type", "to_id", "type_id",
    ]  # fmt: skip


def test_rewriting_unchanged_rows_writes_nothing_and_keeps_run_and_time(engine: sa.Engine) -> None:
    """SYNC-4: an unchanged re-read (overlap window, re-run) leaves staging byte-identical."""
    first = write(engine, account_rows(("001A", "Acme"), ("001B", "Beta")), "run-1")
    before = staging.table_dump(engine, "sf_account")
    again = write(engine, account_rows(("001A", "Acme"), ("001B", "Beta")), "run-2", T0 + timedelta(hours=1))
    assert (first.created, first.updated) == (2, 0)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    assert staging.table_dump(engine, "sf_account") == before


def test_changed_and_deleted_rows_are_updated_once_with_their_run(engine: sa.Engine) -> None:
    write(engine, account_rows(("001A", "Acme"), ("001B", "Beta")), "run-1")
    changed = write(engine, account_rows(("001A", "Acme Corp")), "run-2", T0 + timedelta(hours=1))
    deleted = write(engine, account_rows(("001B", "Beta"), deleted=True), "run-3", T0 + timedelta(hours=2))
    assert (changed.updated, changed.changed_ids) == (1, ["001A"])
    assert (deleted.updated, deleted.deleted) == (1, 1)
    frame = staging.read_frame(engine, "sf_account").set_index("Id")
    assert frame.loc["001A", "Name"] == "Acme Corp"
    assert frame.loc["001A", "_run_id"] == "run-2"
    assert frame.loc["001A", "_extracted_at"] == pd.Timestamp(T0 + timedelta(hours=1))
    assert bool(frame.loc["001B", "_deleted"]) is True
    assert frame.loc["001B", "_run_id"] == "run-3"
    assert frame["SystemModstamp"].dt.tz is not None  # timezone-aware on every dialect


def test_duplicate_keys_in_one_chunk_keep_the_last_version(engine: sa.Engine) -> None:
    result = write(engine, account_rows(("001A", "Old"), ("001A", "New")), "run-1")
    assert result.created == 1
    assert staging.read_frame(engine, "sf_account", ["Id", "Name"]).to_dict("records") == [
        {"Id": "001A", "Name": "New"}
    ]


def test_generic_upsert_replaces_by_key(engine: sa.Engine) -> None:
    rows = [{"object": "Account", "sf_id": "001A", "imported_at": T0, "run_id": "r1"}]
    staging.upsert_rows(engine, "sync_import", rows, ["object", "sf_id"])
    staging.upsert_rows(engine, "sync_import", [{**rows[0], "run_id": "r2"}], ["object", "sf_id"])
    assert staging.table_dump(engine, "sync_import") == [("Account", "001A", T0, "r2")]


def test_associations_follow_the_current_set_and_mark_removed_edges_deleted(engine: sa.Engine) -> None:
    def sync(edges: list[tuple[str, str, int]], run_id: str) -> staging.AssociationResult:
        with engine.begin() as conn:
            return staging.write_associations(
                conn, "contacts", "companies", ["1", "2"], edges, run_id=run_id, extracted_at=T0
            )

    first = sync([("1", "10", 279), ("1", "10", 1), ("2", "11", 279)], "r1")
    unchanged_before = staging.table_dump(engine, "hs_association")
    unchanged = sync([("1", "10", 279), ("1", "10", 1), ("2", "11", 279)], "r2")
    assert staging.table_dump(engine, "hs_association") == unchanged_before
    removed = sync([("1", "10", 279)], "r3")
    revived = sync([("1", "10", 279), ("2", "11", 279)], "r4")
    assert (first.created, unchanged.created, unchanged.removed) == (3, 0, 0)
    assert (removed.removed, revived.created) == (2, 1)
    state = {(r[1], r[3], r[4]): (r[5], r[6]) for r in staging.table_dump(engine, "hs_association")}
    assert state == {
        ("1", "10", 1): (True, "r3"),
        ("1", "10", 279): (False, "r1"),
        ("2", "11", 279): (False, "r4"),
    }


def test_watermark_is_pending_until_committed_and_nothing_new_keeps_it(engine: sa.Engine) -> None:
    """SYNC-1: the watermark advances only when the run commits it."""
    key = "salesforce.Account"
    assert staging.set_pending_watermark(engine, key, T0, "r1")
    assert staging.read_watermark(engine, key).watermark is None
    assert staging.commit_watermarks(engine, "other-run") == {}
    assert staging.commit_watermarks(engine, "r1") == {key: T0.isoformat()}
    mark = staging.read_watermark(engine, key)
    assert (mark.watermark, mark.pending, mark.pending_run_id) == (T0, None, None)
    before = staging.table_dump(engine, "sync_watermark")
    assert not staging.set_pending_watermark(engine, key, T0, "r2")  # nothing newer: no write
    assert not staging.set_pending_watermark(engine, key, None, "r2")
    assert staging.table_dump(engine, "sync_watermark") == before
    assert staging.set_pending_watermark(engine, key, T0 + timedelta(minutes=1), "r3")
    assert staging.read_watermark(engine, key).watermark == T0


def test_quarantine_counts_attempts_per_run_and_resolves_on_a_clean_read(engine: sa.Engine) -> None:
    """SYNC-5: re-quarantining in a later run bumps attempts; the same run again does not."""
    row = {"system": "salesforce", "object": "Account", "record_id": "001A", "rule": "SYNC-5:oversized_text",
           "reason": "Name too long", "payload": {"Id": "001A"}}  # fmt: skip
    staging.quarantine_rows(engine, [row], stage="extract", run_id="r1", now=T0)
    staging.quarantine_rows(engine, [row], stage="extract", run_id="r1", now=T0 + timedelta(minutes=1))
    staging.quarantine_rows(engine, [row], stage="extract", run_id="r2", now=T0 + timedelta(hours=1))
    frame = staging.read_frame(engine, "quarantine")
    assert frame[["attempts", "last_run_id"]].to_dict("records") == [{"attempts": 2, "last_run_id": "r2"}]
    assert frame.loc[0, "last_seen_at"] == pd.Timestamp(T0 + timedelta(hours=1))
    assert json.loads(frame.loc[0, "payload"]) == {"Id": "001A"}
    assert staging.open_quarantine_ids(
        engine, stage="extract", system="salesforce", object_name="Account"
    ) == ["001A"]
    with engine.begin() as conn:
        resolved = staging.resolve_quarantine(
            conn, stage="extract", system="salesforce", object_name="Account", record_ids=["001A"], at=T0
        )
    assert resolved == 1
    assert (
        staging.open_quarantine_ids(engine, stage="extract", system="salesforce", object_name="Account") == []
    )


def test_sync_log_row_is_replaced_by_a_rerun(engine: sa.Engine) -> None:
    staging.log_run_stage(engine, "r1", "extract", "salesforce.Account", read=5, changed=5, duration_s=1.0)
    staging.log_run_stage(
        engine, "r1", "extract", "salesforce.Account", read=5, changed=0, details={"mode": "rest"}
    )
    frame = staging.read_frame(engine, "sync_log")
    assert len(frame) == 1
    assert (frame.loc[0, "read"], frame.loc[0, "changed"]) == (5, 0)
    assert json.loads(frame.loc[0, "details"]) == {"mode": "rest"}


def test_links_come_from_both_crms_link_fields_without_conflicts(engine: sa.Engine) -> None:
    sf_parser = RecordParser(ACCOUNT)
    hs_parser = RecordParser(stream("hubspot", "companies"))

    def sf(rid: str, hs_id: str | None, deleted: bool = False) -> dict[str, Any]:
        row = sf_parser.parse(
            {"Id": rid, "Name": rid, "SystemModstamp": T0, "HubSpot_Id__c": hs_id, "IsDeleted": deleted}
        )
        assert isinstance(row, dict)
        return row

    def hs(rid: str, sf_id: str | None) -> dict[str, Any]:
        row = hs_parser.parse({"id": rid, "hs_lastmodifieddate": T0, "salesforceaccountid": sf_id})
        assert isinstance(row, dict)
        return row

    with engine.begin() as conn:
        sf_rows = [sf("001A", "10"), sf("001B", "11"), sf("001C", "12"), sf("001D", "13", True)]
        hs_rows = [hs("10", "001A"), hs("14", "001E"), hs("15", "001B")]
        staging.write_raw_rows(conn, ACCOUNT, sf_rows, run_id="r1", extracted_at=T0)
        staging.write_raw_rows(conn, stream("hubspot", "companies"), hs_rows, run_id="r1", extracted_at=T0)
    created = staging.refresh_links_from_staging(engine, "r1")
    again = staging.refresh_links_from_staging(engine, "r2")
    links = {(r[1], r[2]) for r in staging.table_dump(engine, "sync_link")}
    # 001A<->10 agreed; 001B->11 (SF side) wins over HS 15->001B; 001C->12 SF only; 14->001E HS only;
    # the deleted 001D does not link.
    assert links == {("001A", "10"), ("001B", "11"), ("001C", "12"), ("001E", "14")}
    assert created["Account"] == 4
    assert again["Account"] == 0


def test_replace_frame_creates_replaces_and_reads_back_typed(engine: sa.Engine) -> None:
    frame = pd.DataFrame(
        {
            "sf_id": ["001A", "001B"],
            "score": [1.5, None],
            "count": [1, 2],
            "flag": [True, False],
            "at": pd.to_datetime(["2026-01-02T03:04:05Z", "2026-01-03T00:00:00Z"], utc=True),
            "tags": [["a"], {"k": 1}],
        }
    )
    assert staging.replace_frame(engine, "rule_scores", frame, "r1") == 2
    assert staging.replace_frame(engine, "rule_scores", frame.head(1), "r2") == 1
    back = staging.read_frame(engine, "rule_scores")
    assert back.to_dict("records") == [
        {
            "sf_id": "001A",
            "score": 1.5,
            "count": 1,
            "flag": True,
            "at": pd.Timestamp(T0),
            "tags": '["a"]',
            "_run_id": "r2",
        }
    ]
    reshaped = pd.DataFrame({"sf_id": ["001C"], "other": ["x"]})
    staging.replace_frame(engine, "rule_scores", reshaped, "r3")
    assert list(staging.read_frame(engine, "rule_scores").columns) == ["sf_id", "other", "_run_id"]
    with pytest.raises(ValueError, match="staging contract table"):
        staging.replace_frame(engine, "sf_account", reshaped, "r3")


def test_plan_round_trips_and_a_rewrite_replaces_the_runs_rows(engine: sa.Engine) -> None:
    plan = plan_frame(
        [
            PlanRow(
                "hubspot",
                "companies",
                "create",
                source_id="001A",
                fields={"name": "Acme", "n": 2},
                rules=["ACC-1"],
            ),
            PlanRow("salesforce", "Account", "skip", source_id="10", rules=["ACC-5"], reason="no contacts"),
        ],
        run_id="r1",
    )
    staging.write_plan(engine, "r1", plan)
    staging.write_plan(engine, "r1", plan)
    staging.write_plan(engine, "r2", plan.head(1))
    back = staging.read_plan(engine, "r1")
    assert back.to_dict("records") == plan.to_dict("records")
    assert len(staging.read_plan(engine, "r2")) == 1


def test_runs_and_latest_run(engine: sa.Engine) -> None:
    staging.record_run(engine, "manual__1", dag_id="crm_sync", logical_date=T0)
    staging.record_run(engine, "scheduled__2", dag_id="crm_sync", logical_date=T0 + timedelta(hours=1))
    staging.record_run(
        engine, "backfill__3", dag_id="crm_backfill_opportunities", logical_date=T0 + timedelta(days=1)
    )
    staging.finish_run(engine, "scheduled__2", "success")
    assert staging.latest_run_id(engine) == "scheduled__2"
    assert (
        staging.read_frame(engine, "sync_run").set_index("run_id").loc["scheduled__2", "status"] == "success"
    )


# -- resolution of the crm_staging connection (no database needed) ------------------------------


def test_default_staging_is_a_sqlite_file_under_airflow_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_CRM_STAGING", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    url = staging.staging_url()
    assert (url.get_backend_name(), url.database) == ("sqlite", str(tmp_path / "crm_sync_staging.db"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('{"conn_type": "sqlite", "host": "/data/staging.db"}', "sqlite:////data/staging.db"),
        ("sqlite://%2Fdata%2Fstaging.db", "sqlite:////data/staging.db"),
        (
            '{"conn_type": "postgres", "host": "db", "port": 5432, "login": "u", "password": "p", '
            '"schema": "s"}',
            "postgresql+psycopg2://u:p@db:5432/s",
        ),
        ("postgresql://u:p@db:5433/s", "postgresql+psycopg2://u:p@db:5433/s"),
    ],
)
def test_crm_staging_connection_json_or_uri_resolves(
    value: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CRM_STAGING", value)
    assert staging.staging_url().render_as_string(hide_password=False) == expected


def test_unsupported_or_incomplete_staging_connection_says_what_to_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CRM_STAGING", '{"conn_type": "mysql", "host": "db"}')
    with pytest.raises(staging.StagingConfigError, match="'crm_staging' has type 'mysql'"):
        staging.staging_url()
    monkeypatch.setenv("AIRFLOW_CONN_CRM_STAGING", '{"conn_type": "sqlite"}')
    with pytest.raises(staging.StagingConfigError, match="set its host to the database path"):
        staging.staging_url()


def test_tasks_creating_the_schema_at_the_same_time_all_succeed(engine: sa.Engine) -> None:
    """A dozen extract tasks start together on a fresh database; none may fail on the DDL race."""
    import threading

    url = engine.url
    staging.dispose_engines()
    with engine.begin() as conn:
        for table in reversed(staging.metadata.sorted_tables):
            table.drop(conn, checkfirst=True)
    errors: list[BaseException] = []

    def create() -> None:
        try:
            staging.ensure_schema(
                sa.create_engine(url, connect_args=engine.dialect.create_connect_args(url)[1])
            )
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(staging.metadata.tables) <= set(sa.inspect(engine).get_table_names())
