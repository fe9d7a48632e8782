"""docker-compose.yaml cannot run here (no Docker engine), so its shape is checked instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def test_compose_has_the_celery_topology(compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    assert {
        "postgres",
        "redis",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-worker",
        "airflow-triggerer",
        "airflow-init",
    } <= services
    assert compose["services"]["crm-sandbox"]["profiles"] == ["sandbox"]


def test_airflow_services_share_env_and_mount_the_project(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if not name.startswith("airflow-"):
            continue
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
        assert "crm_staging" in env["AIRFLOW_CONN_CRM_STAGING"], name
        assert env["CRM_SYNC_CONFIG"].startswith("/opt/airflow/config/"), name
        mounts = {m.split(":")[1]: m.split(":")[0] for m in service["volumes"]}
        for target in (
            "/opt/airflow/dags",
            "/opt/airflow/plugins",
            "/opt/airflow/include",
            "/opt/airflow/config",
        ):
            assert target in mounts, (name, target)
            source = mounts[target]
            assert (ROOT / source).is_dir(), f"{name} mounts {source}, which does not exist"


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name in (
        "postgres",
        "redis",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-worker",
        "airflow-triggerer",
    ):
        assert compose["services"][name]["healthcheck"]["test"], name


def test_mounted_config_is_a_valid_sync_config() -> None:
    from crm_sync.settings import load_config

    assert load_config(ROOT / "config" / "crm_sync.yaml").deals_sync is True


def test_no_secrets_committed() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    text = (ROOT / "docker-compose.yaml").read_text()
    assert "pat-" not in text
    assert "env_file" in text
