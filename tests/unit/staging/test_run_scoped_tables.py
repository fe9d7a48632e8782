"""Rule tables are scoped by run (issue 13): two runs never overwrite or read each other's rows.

An hourly sync and a backfill chunk (or two chunks) write the same ``rule_*`` tables; each run
writes, reads and is validated, loaded and reported from its own rows, and finished runs' rows
are pruned except the latest of each DAG. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa
from crm_sync import staging
from crm_sync.load.assignment import hubspot_owners
from crm_sync.load.refs import RefResolver, UnresolvedReferenceError
from crm_sync.plan import PlanRow, plan_frame
from crm_sync.tasks import rules
from crm_sync.tasks.report import read_tables
from crm_sync.tasks.validate import read_inputs

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def pairs(*ids: str) -> pd.DataFrame:
    return pd.DataFrame({"sf_id": list(ids), "hs_id": [f"hs-{i}" for i in ids]})


def run_ids(engine: sa.Engine, table: str) -> set[str]:
    return set(staging.read_frame(engine, table)["_run_id"])


def test_two_runs_writing_one_rule_table_keep_each_others_rows(engine: sa.Engine) -> None:
    staging.replace_run_rows(engine, "rule_pairs", pairs("1", "2"), "hourly")
    staging.replace_run_rows(engine, "rule_pairs", pairs("3"), "chunk")
    assert staging.replace_run_rows(engine, "rule_pairs", pairs("4"), "hourly") == 1  # a retry
    assert staging.read_run_rows(engine, "rule_pairs", "hourly").to_dict("records") == [
        {"sf_id": "4", "hs_id": "hs-4"}
    ]
    assert list(staging.read_run_rows(engine, "rule_pairs", "chunk")["sf_id"]) == ["3"]
    assert staging.read_run_rows(engine, "rule_pairs", "other").empty
    staging.replace_run_rows(engine, "rule_flags", pd.DataFrame(index=range(2)), "hourly")  # no columns
    assert staging.read_run_rows(engine, "rule_flags", "hourly").shape == (2, 0)
    indexed = [ix["column_names"] for ix in sa.inspect(engine).get_indexes("rule_pairs")]
    assert ["_run_id"] in indexed


def test_a_run_with_empty_or_integral_output_keeps_the_other_runs_rows(engine: sa.Engine) -> None:
    amounts = pd.DataFrame({"sf_id": ["1"], "amount": [1.5], "closed": [True]})
    staging.replace_run_rows(engine, "rule_amounts", amounts, "chunk")
    staging.replace_run_rows(engine, "rule_amounts", amounts.iloc[0:0].astype(object), "hourly")
    staging.replace_run_rows(
        engine, "rule_amounts", pd.DataFrame({"sf_id": ["2"], "amount": [3], "closed": [None]}), "retry"
    )
    assert staging.read_run_rows(engine, "rule_amounts", "chunk").to_dict("records") == [
        {"sf_id": "1", "amount": 1.5, "closed": True}
    ]
    assert list(staging.read_run_rows(engine, "rule_amounts", "retry")["amount"]) == [3.0]
    staging.replace_run_rows(engine, "rule_amounts", pd.DataFrame({"sf_id": ["3"]}), "reshaped")
    assert set(staging.read_frame(engine, "rule_amounts")["_run_id"]) == {"reshaped"}  # columns changed


def test_a_rule_table_never_written_reads_as_its_declared_columns(engine: sa.Engine) -> None:
    frame = rules.read_stage_table(engine, "rule_owner_sf", "r1")
    assert frame.empty
    assert list(frame.columns) == ["sf_user_id", "email", "active", "hs_owner_id", "problem"]
    with pytest.raises(ValueError, match="scoped by run"):
        rules.read_stage_table(engine, "rule_owner_sf")


def test_a_stage_of_run_b_reads_only_run_bs_upstream_rows(engine: sa.Engine) -> None:
    for run_id, account in (("A", "001A"), ("B", "001B")):
        staging.record_run(engine, run_id, dag_id="crm_sync", logical_date=T0)
        row = PlanRow("hubspot", "companies", "create", source_id=account, rules=["ACC-1"])
        part = plan_frame([row], run_id).drop(columns=["run_id"])
        staging.replace_run_rows(engine, "rule_plan_accounts", part, run_id)
    rules.run_stage("build_plan", run_id="B")
    assert list(staging.read_plan(engine, "B")["source_id"]) == ["001B"]
    assert staging.read_plan(engine, "A").empty


def _finished(engine: sa.Engine, run_id: str, dag_id: str, hours: int, status: str = "succeeded") -> None:
    at = T0 + timedelta(hours=hours)
    staging.record_run(
        engine, run_id, dag_id=dag_id, logical_date=at, status=status, started_at=at, finished_at=at
    )


def test_pruning_keeps_running_runs_and_the_latest_finished_run_of_each_dag(engine: sa.Engine) -> None:
    _finished(engine, "sync-1", "crm_sync", 1)
    _finished(engine, "sync-2", "crm_sync", 2, status="failed")
    staging.record_run(engine, "sync-3", dag_id="crm_sync", started_at=T0 + timedelta(hours=3))
    _finished(engine, "chunk-1", "crm_backfill_opportunities", 0)
    _finished(engine, "chunk-2", "crm_backfill_opportunities", 1, status="planned")
    staging.record_run(engine, "chunk-3", dag_id="crm_backfill_opportunities")
    everyone = ["sync-1", "sync-2", "sync-3", "chunk-1", "chunk-2", "chunk-3", "unknown"]
    for run_id in everyone:
        staging.replace_run_rows(engine, "rule_pairs", pairs(run_id), run_id)
        staging.replace_run_rows(engine, "rule_other", pairs(run_id), run_id)
    staging.replace_frame(engine, "sync_association_snapshot", pairs("x"), "sync-1")  # global state

    assert staging.prune_run_rows(engine) == 2 * 3
    kept = {"sync-2", "sync-3", "chunk-2", "chunk-3"}
    assert run_ids(engine, "rule_pairs") == run_ids(engine, "rule_other") == kept
    assert run_ids(engine, "sync_association_snapshot") == {"sync-1"}

    # Ending a run prunes: sync-3 is now its DAG's latest, so sync-2's rows go.
    staging.finish_run(engine, "sync-3", "succeeded", finished_at=T0 + timedelta(hours=4))
    assert run_ids(engine, "rule_pairs") == {"sync-3", "chunk-2", "chunk-3"}


def test_validation_reads_the_rule_maps_of_the_run_it_validates(engine: sa.Engine) -> None:
    for run_id, label in (("A", "Pipeline A"), ("B", "Pipeline B")):
        frame = pd.DataFrame({"hs_pipeline_id": ["101"], "label": [label]})
        staging.replace_run_rows(engine, "rule_pipelines", frame, run_id)
    frames = read_inputs(engine, "B")
    assert frames["rule_pipelines"].to_dict("records") == [{"hs_pipeline_id": "101", "label": "Pipeline B"}]


def test_the_report_reads_its_source_runs_rule_rows_else_the_latest_run_with_rows(engine: sa.Engine) -> None:
    _finished(engine, "A", "crm_sync", 1)
    _finished(engine, "B", "crm_backfill_opportunities", 2)
    _finished(engine, "C", "crm_sync", 3)  # wrote no rollups
    for run_id in ("A", "B"):
        staging.replace_run_rows(engine, "rule_rollups", pairs(run_id), run_id)
    assert list(read_tables(engine, "A")["rule_rollups"]["sf_id"]) == ["A"]
    assert read_tables(engine, "C")["rule_rollups"].empty
    assert list(read_tables(engine, None)["rule_rollups"]["sf_id"]) == ["B"]
    assert read_tables(engine, None)["rule_currency_flags"].empty  # never written


def test_the_loader_resolves_and_assigns_owners_from_its_runs_rule_rows(engine: sa.Engine) -> None:
    for run_id, suffix in (("A", "a"), ("B", "b")):
        stages = pd.DataFrame(
            {"pipeline_key": ["k"], "stage_api_name": ["Won"], "stage_label": [f"Won {suffix}"]}
        )
        staging.replace_run_rows(engine, "rule_pipeline_stages", stages, run_id)
        owners = pd.DataFrame({"sf_user_id": ["005U"], "hs_owner_id": [f"owner-{suffix}"]})
        staging.replace_run_rows(engine, "rule_owner_sf", owners, run_id)
    resolvers = {run_id: RefResolver.for_run(engine, run_id) for run_id in ("A", "B")}
    for resolver in resolvers.values():
        resolver.created_children("k", (("Won b", "stage-9"),))  # the pipeline B created
    assert resolvers["B"].resolve("@pipelines:k/Won") == "stage-9"
    with pytest.raises(UnresolvedReferenceError):
        resolvers["A"].resolve("@pipelines:k/Won")
    assert hubspot_owners(engine, "B") == {"005U": "owner-b"}
    assert hubspot_owners(engine, "missing") == {}
