"""docker-compose.yaml cannot run here (no Docker engine), so its shape is checked instead.

What an operator relies on: the Celery topology of Airflow 3's official compose file, every
Airflow service seeing the same configuration and project folders, healthchecks on everything
long-running, and nothing in the file that does not exist: every mounted folder, script, image
version, Airflow/Celery command and sandbox option it names is checked against the project and
the installed Airflow. Secrets come only from .env.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
)
LONG_RUNNING = (
    "postgres",
    "redis",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "crm-sandbox",
)
#: Variables the compose file requires from .env (``${NAME:?...}``): all of them are secrets.
SECRET = re.compile(r"\$\{([A-Z_]+):\?[^}]*\}")


@pytest.fixture(scope="module")
def text() -> str:
    return (ROOT / "docker-compose.yaml").read_text()


@pytest.fixture(scope="module")
def compose(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (a ./path bind mount or a named volume)."""
    return {m.split(":")[1]: m.split(":")[0] for m in service.get("volumes", [])}


def _host_path(service: dict[str, Any], container_path: str) -> Path:
    """The project file a container path of ``service`` comes from, through its bind mounts."""
    for target, source in sorted(_mounts(service).items(), key=lambda kv: -len(kv[0])):
        if container_path == target or container_path.startswith(target + "/"):
            assert source.startswith("./"), f"{container_path} is on the named volume {source}"
            return ROOT / source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{container_path} is not mounted from the project")


def _env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as Compose reads them (single quotes: the literal value inside)."""
    pairs = (
        line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#")
    )
    return {key: value[1:-1] if value[:1] == value[-1:] == "'" else value for key, value in pairs}


def test_compose_has_the_celery_topology(services: dict[str, dict[str, Any]]) -> None:
    assert {"postgres", "redis", "crm-sandbox", *AIRFLOW_SERVICES} <= set(services)
    assert services["crm-sandbox"]["profiles"] == ["sandbox"]
    assert services["airflow-worker"]["command"] == "celery worker"
    for name in AIRFLOW_SERVICES[:-1]:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"


def test_airflow_services_share_env_and_mount_the_project(services: dict[str, dict[str, Any]]) -> None:
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:@redis:6379/0", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://"), name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        staging = json.loads(env["AIRFLOW_CONN_CRM_STAGING"])
        assert (staging["conn_type"], staging["host"], staging["schema"]) == (
            "postgres",
            "postgres",
            "crm_staging",
        )
        assert env["CRM_SYNC_CONFIG"].startswith("/opt/airflow/config/"), name
        mounts = _mounts(services[name])
        # One reports folder for every service: any worker writes a report, any service reads it.
        assert mounts[env["CRM_SYNC_REPORTS_DIR"]] == "crm-sync-reports", name
        for target in (
            "/opt/airflow/dags",
            "/opt/airflow/plugins",
            "/opt/airflow/include",
            "/opt/airflow/config",
        ):
            assert target in mounts, (name, target)
            assert (ROOT / mounts[target]).is_dir(), f"{name} mounts {mounts[target]}, which does not exist"


def test_every_mount_exists_in_the_project_or_is_a_declared_volume(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name, service in compose["services"].items():
        for target, source in _mounts(service).items():
            if source.startswith("./"):
                if source != "./logs":  # made by airflow-init at first start, git-ignored output
                    assert (ROOT / source).exists(), f"{name} mounts {source} at {target}: missing"
            else:
                assert source in declared, f"{name} uses volume {source}, not declared"


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name in LONG_RUNNING:
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert check["interval"], name


def test_the_image_is_built_from_the_pinned_airflow_with_the_project(
    services: dict[str, dict[str, Any]],
) -> None:
    build = services["airflow-apiserver"]["build"]
    dockerfile = ROOT / build["context"] / build["dockerfile"]
    lines = dockerfile.read_text().splitlines()
    (base,) = [line.split()[1] for line in lines if line.startswith("FROM ")]
    pins = dict(
        line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line
    )
    assert base == f"apache/airflow:slim-{pins['apache-airflow']}-python3.11"
    assert "apache-airflow-providers-celery" in pins
    assert "redis" in pins
    for line in lines:
        if line.startswith("COPY "):
            sources = [part for part in line.split()[1:-1] if not part.startswith("--")]
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    ignored = (ROOT / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert ".env" in ignored, "the build context must never carry the secrets file"


def test_airflow_and_celery_commands_exist_in_the_installed_airflow(
    services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Each service's command (and healthcheck) parses with the Airflow CLI this project pins."""
    commands = [shlex.split(services[name]["command"]) for name in AIRFLOW_SERVICES[:-1]]
    for name in ("airflow-dag-processor", "airflow-triggerer"):
        check = services[name]["healthcheck"]["test"][1].replace("$${HOSTNAME}", "host")
        commands.append(shlex.split(check)[1:])
    worker_check = services["airflow-worker"]["healthcheck"]["test"][1]
    (celery_app,) = re.findall(r"--app (\S+)", worker_check)
    script = f"""
import importlib, json, sys
from airflow.cli.cli_parser import get_parser
parser = get_parser()
for argv in json.loads(sys.argv[1]):
    parser.parse_args(argv)
module, attribute = {celery_app!r}.rsplit(".", 1)
getattr(importlib.import_module(module), attribute)
print("ok")
"""
    env = {
        **os.environ,
        **{
            k: v
            for k, v in services["airflow-worker"]["environment"].items()
            if k == "AIRFLOW__CORE__EXECUTOR"
        },
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/15",
    }
    proc = subprocess.run(
        [str(BIN / "python"), "-c", script, json.dumps(commands)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_init_runs_the_projects_script_with_pools_and_connections(
    services: dict[str, dict[str, Any]],
) -> None:
    init = services["airflow-init"]
    (script,) = re.findall(r"exec (\S+)", init["command"][1])
    path = _host_path(init, script)
    assert os.access(path, os.X_OK), f"{path} is not executable"
    body = path.read_text()
    assert "db migrate" in body
    pools = json.loads((path.parent / "pools.json").read_text())
    assert set(pools) == {"salesforce_api", "hubspot_api"}
    assert all(pool["slots"] > 0 and pool["description"] for pool in pools.values())
    assert "CRM_SYNC_SALESFORCE_CONN" in body
    assert "CRM_SYNC_HUBSPOT_CONN" in body


def test_staging_database_is_created_beside_the_metadata_database(
    services: dict[str, dict[str, Any]],
) -> None:
    init_sql = _host_path(services["postgres"], "/docker-entrypoint-initdb.d")
    created = re.findall(r"CREATE DATABASE (\w+)", "".join(p.read_text() for p in init_sql.glob("*.sql")))
    staging = json.loads(services["airflow-worker"]["environment"]["AIRFLOW_CONN_CRM_STAGING"])
    assert created == [staging["schema"]]
    assert services["postgres"]["environment"]["POSTGRES_DB"] != staging["schema"]


def test_mounted_config_is_a_valid_sync_config(services: dict[str, dict[str, Any]]) -> None:
    from crm_sync.settings import load_config

    worker = services["airflow-worker"]
    path = _host_path(worker, worker["environment"]["CRM_SYNC_CONFIG"])
    assert load_config(path).deals_sync is True


def test_sandbox_serves_the_demo_under_its_service_name(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sandbox command parses, its certificate names the service, sandbox.env points at it."""
    from crm_sandbox.cli import build_parser
    from crm_sandbox.tls import ca_bundle_for_port

    sandbox = services["crm-sandbox"]
    argv = shlex.split(sandbox["command"][1])
    assert argv[:2] == ["exec", "crm-sandbox"]
    args = build_parser().parse_args(argv[2:])
    assert args.host == "0.0.0.0"
    assert args.tls_hostname == ["crm-sandbox"]
    assert _host_path(sandbox, args.scenario).is_file()
    published = {int(p.split(":")[1]) for p in sandbox["ports"]}
    assert published == {args.salesforce_port, args.hubspot_port}

    env = _env_file(ROOT / "docker" / "sandbox.env")
    salesforce = json.loads(env["CRM_SYNC_SALESFORCE_CONN"])
    hubspot = json.loads(env["CRM_SYNC_HUBSPOT_CONN"])
    assert salesforce["extra"]["instance_url"] == f"https://crm-sandbox:{args.salesforce_port}"
    assert hubspot["extra"]["host"] == f"http://crm-sandbox:{args.hubspot_port}"
    # The CA bundle the workers trust is the one the sandbox writes, on the volume both mount.
    monkeypatch.setenv("CRM_SANDBOX_HOME", sandbox["environment"]["CRM_SANDBOX_HOME"])
    assert env["REQUESTS_CA_BUNDLE"] == str(ca_bundle_for_port(args.salesforce_port))
    volume = _mounts(sandbox)[sandbox["environment"]["CRM_SANDBOX_HOME"]]
    assert _mounts(services["airflow-worker"])[sandbox["environment"]["CRM_SANDBOX_HOME"]] == volume
    assert services["airflow-worker"]["depends_on"]["crm-sandbox"]["required"] is False


def test_no_secrets_committed(text: str, services: dict[str, dict[str, Any]]) -> None:
    """Every secret-looking setting is interpolated from .env (or is a file path), never a value."""
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    assert "env_file" in text
    assert "pat-" not in text
    secretive = re.compile(r"(?i)password|secret|fernet|token")
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if secretive.search(key):
                assert str(value).startswith(("${", "/")), f"{name}: {key} holds a literal value"
    staging = json.loads(services["airflow-worker"]["environment"]["AIRFLOW_CONN_CRM_STAGING"])
    assert staging["password"].startswith("${POSTGRES_PASSWORD:?")
    assert (
        "${POSTGRES_PASSWORD:?"
        in services["airflow-worker"]["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    )


def test_new_env_writes_every_secret_the_compose_file_requires(text: str, tmp_path: Path) -> None:
    target = tmp_path / ".env"
    subprocess.run(
        ["bash", str(ROOT / "docker" / "new-env.sh"), "--sandbox"],
        env={**os.environ, "NEW_ENV_FILE": str(target)},
        check=True,
        capture_output=True,
        timeout=60,
    )
    written = _env_file(target)
    required = set(SECRET.findall(text))
    assert required >= {"POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET"}
    assert required <= {k for k, v in written.items() if v}
    assert "CRM_SYNC_SALESFORCE_CONN" in written
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    again = subprocess.run(
        ["bash", str(ROOT / "docker" / "new-env.sh")],
        env={**os.environ, "NEW_ENV_FILE": str(target)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 1, "an existing .env (and its Fernet key) must never be overwritten"
