"""The first and last tasks of a run: the config is checked before any API call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from crm_sync import staging
from crm_sync.settings import ConfigError, default_config_path
from crm_sync.tasks.runs import finish_run, start_run


@pytest.fixture
def sqlite_staging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    db = tmp_path / "staging.db"
    monkeypatch.setenv("AIRFLOW_CONN_CRM_STAGING", json.dumps({"conn_type": "sqlite", "host": str(db)}))
    yield db
    staging.dispose_engines()


def test_invalid_config_fails_the_first_task_naming_the_key(
    sqlite_staging: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = yaml.safe_load(default_config_path().read_text())
    raw["contacts"]["default_object"] = "Opportunity"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CRM_SYNC_CONFIG", str(bad))
    with pytest.raises(ConfigError, match=r"contacts\.default_object"):
        start_run({"run_id": "r1", "params": {"dry_run": True}})
    assert not sqlite_staging.exists(), "nothing may be written before the config is valid"


def test_a_misspelled_mapped_field_fails_the_first_task_naming_the_key(
    sqlite_staging: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = yaml.safe_load(default_config_path().read_text())
    raw["field_mappings"]["contacts"][0]["hubspot"] = "fristname"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CRM_SYNC_CONFIG", str(bad))
    with pytest.raises(ConfigError, match=r"field_mappings\.contacts\[0\]\.hubspot' is 'fristname'"):
        start_run({"run_id": "r1", "params": {"dry_run": True}})
    assert not sqlite_staging.exists(), "nothing may be written before the config is valid"


def test_a_run_is_registered_and_finished_for_crm_sync_plan(sqlite_staging: Path) -> None:
    started = start_run({"run_id": "r1", "dag_id": "crm_sync", "params": {"dry_run": True}})
    assert started["dry_run"] is True
    engine = staging.staging_engine()
    assert staging.latest_run_id(engine, "crm_sync") == "r1"
    staging.log_run_stage(engine, "r1", "extract", "salesforce.Account", read=3, changed=2)
    finished = finish_run({"run_id": "r1", "params": {"dry_run": True}})
    assert finished["status"] == "planned"
    assert finished["read"] == 3
    assert finished["changed"] == 2
    runs = staging.read_frame(engine, "sync_run")
    assert runs.loc[0, "status"] == "planned"
    assert runs.loc[0, "finished_at"] is not None


def test_a_run_that_never_finished_is_marked_abandoned_by_the_next(sqlite_staging: Path) -> None:
    start_run({"run_id": "crashed", "dag_id": "crm_sync", "params": {"dry_run": False}})
    start_run({"run_id": "next", "dag_id": "crm_sync", "params": {"dry_run": False}})
    runs = staging.read_frame(staging.staging_engine(), "sync_run").set_index("run_id")
    assert runs.loc["crashed", "status"] == "abandoned"
    assert runs.loc["crashed", "finished_at"] is not None
    assert runs.loc["next", "status"] == "running"


def test_a_permanent_error_fails_the_task_without_retries(
    sqlite_staging: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from crm_sync.tasks import failfast

    monkeypatch.setenv("CRM_SYNC_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(AirflowFailException, match=r"missing\.yaml") as raised:
        failfast.run(start_run, {"run_id": "r1", "params": {"dry_run": True}})
    assert isinstance(raised.value.__cause__, ConfigError)


def test_a_failed_run_is_marked_failed(sqlite_staging: Path) -> None:
    from crm_sync.tasks.runs import record_failure

    start_run({"run_id": "r1", "dag_id": "crm_sync", "params": {"dry_run": False}})
    assert record_failure({"run_id": "r1"})["status"] == "failed"
    runs = staging.read_frame(staging.staging_engine(), "sync_run")
    assert runs.loc[0, "status"] == "failed"
    assert runs.loc[0, "finished_at"] is not None
