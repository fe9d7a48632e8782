"""A real crm-sync deployment on this machine: Airflow 3 with the CeleryExecutor, as processes.

What docker-compose.yaml runs in containers, started here from the project's venv against the
machine's own services: a fresh PostgreSQL database for Airflow's metadata (and the Celery result
backend), another for the ``crm_staging`` connection, Redis as the Celery broker, both CRM
emulators, and the scheduler, dag-processor, api-server and one Celery worker. The deployment is
initialised by ``docker/airflow-init.sh``, the compose file's own init script, so pools and the
CRM connections are created exactly as in a container deployment.

Everything is isolated per cluster: its own ``AIRFLOW_HOME``, databases, Celery queue name and
ports, so it never meets another test's (or another developer's) Airflow on the same services.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
import sqlalchemy as sa
from crm_sandbox.server import connection_env
from crm_sandbox.stats import fetch_stats
from crm_sandbox.tls import ca_bundle_for_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get(
    "CRM_SYNC_TEST_PG_ADMIN_URL", "postgresql+psycopg2://root@127.0.0.1:5432/postgres"
)
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: Redis database of the Celery broker: not 0, which local Airflows and other tools default to.
REDIS_DB = int(os.environ.get("CRM_SYNC_TEST_REDIS_DB", "11"))
TERMINAL_RUN_STATES = {"success", "failed"}

T = TypeVar("T")


class WaitTimeoutError(AssertionError):
    """A condition did not hold before its deadline; the message says what was awaited."""


def wait_for(condition: Callable[[], T | None], *, timeout: float, what: str, interval: float = 1.0) -> T:
    """Call ``condition`` until it returns something truthy, and return that; fail at the deadline.

    The one way this suite waits: every wait has a deadline and says what it waited for.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise WaitTimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        pause.wait(interval)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_unreachable() -> str | None:
    """Why the cluster cannot run here (PostgreSQL or Redis down), or ``None``."""
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except sa.exc.OperationalError as exc:
        return f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({str(exc.orig).strip().splitlines()[0]})"
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=3):
            pass
    except OSError as exc:
        return f"Redis at {REDIS_HOST}:{REDIS_PORT} is not reachable ({exc})"
    return None


@contextlib.contextmanager
def fresh_databases(*prefixes: str) -> Iterator[list[str]]:
    """Create one empty PostgreSQL database per prefix; drop them (connections and all) afterwards."""
    names = [f"{prefix}_{uuid.uuid4().hex[:10]}" for prefix in prefixes]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'create database "{name}"'))
        yield names
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        admin.dispose()


def _pg_url(database: str, driver: str = "postgresql+psycopg2") -> str:
    url = sa.engine.make_url(PG_ADMIN_URL).set(drivername=driver, database=database)
    return url.render_as_string(hide_password=False)


@dataclass
class Cluster:
    """The running deployment: its environment, endpoints, and the processes to stop."""

    home: Path
    env: dict[str, str]
    api_url: str
    salesforce_port: int
    hubspot_port: int
    queue: str
    scheduler_health_url: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # -- processes -----------------------------------------------------------------------------
    def start(self, name: str, *argv: str) -> None:
        """Start a long-running process, its output in ``<home>/<name>.log``."""
        with (self.home / f"{name}.log").open("wb") as log:
            self.processes[name] = subprocess.Popen(
                list(argv),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.home,
                start_new_session=True,  # its own process group: stopping it stops its children
            )

    def run(self, name: str, *argv: str, timeout: float = 300) -> str:
        """Run a command to completion; fail with its output's tail when it fails."""
        proc = subprocess.run(
            list(argv), env=self.env, capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
        )
        (self.home / f"{name}.log").write_text(proc.stdout + proc.stderr)
        assert proc.returncode == 0, f"{name} failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
        return proc.stdout

    def check_alive(self) -> None:
        """Fail at once, with its log, if a component died (instead of timing out later)."""
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                tail = (self.home / f"{name}.log").read_text(errors="replace")[-4000:]
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM every process group; SIGKILL what is left once ``grace`` seconds have passed."""
        for proc in self.processes.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            # Whatever is left of the group (a worker's task processes included) goes now.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    # -- REST API --------------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.api_url}/api/v2/{path}", timeout=30, **kwargs)

    def api_json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.api(method, path, **kwargs)
        assert response.ok, f"{method} {path}: {response.status_code} {response.text[:2000]}"
        return response.json()

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        body = {"logical_date": None, "conf": conf or {}}
        run: dict[str, Any] = self.api_json("POST", f"dags/{dag_id}/dagRuns", json=body)
        return str(run["dag_run_id"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 480) -> dict[str, Any]:
        """Poll the run until it finishes; return it. A dead component fails at once."""

        def finished() -> dict[str, Any] | None:
            self.check_alive()
            run: dict[str, Any] = self.api_json("GET", f"dags/{dag_id}/dagRuns/{run_id}")
            return run if run["state"] in TERMINAL_RUN_STATES else None

        return wait_for(finished, timeout=timeout, what=f"{dag_id} run {run_id} to finish", interval=2)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.api_json(
            "GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}
        )["task_instances"]
        return found

    def failure_report(self, dag_id: str, run_id: str) -> str:
        """The failed tasks of a run, with the tail of each one's log, for an assertion message."""
        lines = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] not in ("success", "skipped"):
                lines.append(f"{ti['task_id']}: {ti['state']}")
                for log in sorted((self.home / "logs").rglob(f"*{ti['task_id']}*/**/*.log")):
                    lines.append(log.read_text(errors="replace")[-3000:])
        return "\n".join(lines) or "no failed task instances"

    # -- the CRMs ----------------------------------------------------------------------------------
    def sandbox_stats(self) -> dict[str, dict[str, Any]]:
        """Request counts of both emulators (their ``/__sandbox/stats``)."""
        return {
            "salesforce": fetch_stats(
                f"https://127.0.0.1:{self.salesforce_port}", verify=self.env["REQUESTS_CA_BUNDLE"]
            ),
            "hubspot": fetch_stats(f"http://127.0.0.1:{self.hubspot_port}"),
        }


def cluster_env(
    home: Path,
    metadata_db: str,
    staging_db: str,
    ports: dict[str, int],
    queue: str,
) -> dict[str, str]:
    """The environment every component shares: the compose file's, pointed at this machine."""
    api_port, sf_port = ports["api"], ports["salesforce"]
    sandbox = connection_env(sf_port, ports["hubspot"], ca_bundle_for_port_in(home, sf_port))
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "CRM_SYNC", "CRM_SANDBOX", "_AIRFLOW"))
    }
    env.update(
        {
            "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _pg_url(metadata_db),
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + _pg_url(metadata_db, "postgresql"),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "4",
            # A queue of its own: another Airflow on the same Redis never takes this cluster's tasks.
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            # Local, loopback-only test deployment: no login, so the REST calls and the
            # screenshot need no credentials.
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            # The scheduler's health endpoint, which docker-compose's healthcheck asks.
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(ports["scheduler_health"]),
            # Only the runs the test triggers: unpausing must not add a scheduled run.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW_CONN_CRM_STAGING": json.dumps(
                {
                    "conn_type": "postgres",
                    "host": sa.engine.make_url(PG_ADMIN_URL).host,
                    "port": sa.engine.make_url(PG_ADMIN_URL).port or 5432,
                    "login": sa.engine.make_url(PG_ADMIN_URL).username,
                    "schema": staging_db,
                }
            ),
            # Stored in the metadata DB by docker/airflow-init.sh, as in docker-compose.
            "CRM_SYNC_SALESFORCE_CONN": sandbox["AIRFLOW_CONN_SALESFORCE_DEFAULT"],
            "CRM_SYNC_HUBSPOT_CONN": sandbox["AIRFLOW_CONN_HUBSPOT_DEFAULT"],
            "REQUESTS_CA_BUNDLE": sandbox["REQUESTS_CA_BUNDLE"],
            "CRM_SANDBOX_HOME": str(home / "sandbox"),
        }
    )
    return env


def ca_bundle_for_port_in(home: Path, salesforce_port: int) -> Path:
    """The CA bundle a sandbox with ``CRM_SANDBOX_HOME=<home>/sandbox`` writes."""
    saved = os.environ.get("CRM_SANDBOX_HOME")
    os.environ["CRM_SANDBOX_HOME"] = str(home / "sandbox")
    try:
        return ca_bundle_for_port(salesforce_port)
    finally:
        if saved is None:
            os.environ.pop("CRM_SANDBOX_HOME", None)
        else:
            os.environ["CRM_SANDBOX_HOME"] = saved


@contextlib.contextmanager
def celery_cluster(home: Path, metadata_db: str, staging_db: str) -> Iterator[Cluster]:
    """Initialise and start the whole deployment; stop every process afterwards."""
    home.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("api", "salesforce", "hubspot", "scheduler_health")}
    api_port, sf_port, hs_port = ports["api"], ports["salesforce"], ports["hubspot"]
    queue = f"crm_sync_test_{uuid.uuid4().hex[:8]}"
    env = cluster_env(home, metadata_db, staging_db, ports, queue)
    health = f"http://127.0.0.1:{ports['scheduler_health']}/health"
    cluster = Cluster(home, env, f"http://127.0.0.1:{api_port}", sf_port, hs_port, queue, health)
    try:
        cluster.start(  # needs nothing from Airflow: starts while the init runs
            "crm-sandbox",
            str(BIN / "crm-sandbox"),
            "serve",
            "--salesforce-port",
            str(sf_port),
            "--hubspot-port",
            str(hs_port),
            "--scenario",
            "demo",
        )
        cluster.run("airflow-init", "bash", str(ROOT / "docker" / "airflow-init.sh"))
        airflow = str(BIN / "airflow")
        cluster.start("scheduler", airflow, "scheduler")
        cluster.start("dag-processor", airflow, "dag-processor")
        cluster.start(
            "api-server",
            airflow,
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(api_port),
            "--workers",
            "1",
        )
        cluster.start(
            "celery-worker",
            airflow,
            "celery",
            "worker",
            "--queues",
            queue,
            "--celery-hostname",
            f"{queue}@%h",
            "--skip-serve-logs",
            "--without-gossip",
            "--without-mingle",
        )
        wait_for(lambda: _sandbox_ready(cluster), timeout=60, what="the CRM sandbox")
        wait_for(lambda: _api_ready(cluster), timeout=120, what="the api-server")
        yield cluster
    finally:
        cluster.stop()
        _forget_queue(queue)
        shutil.rmtree(home / "sandbox", ignore_errors=True)


def _sandbox_ready(cluster: Cluster) -> bool:
    cluster.check_alive()
    return "crm-sandbox ready:" in (cluster.home / "crm-sandbox.log").read_text(errors="replace")


def _api_ready(cluster: Cluster) -> bool:
    cluster.check_alive()
    try:
        return cluster.api("GET", "version").ok
    except requests.ConnectionError:
        return False


def _forget_queue(queue: str) -> None:
    """Remove this cluster's Celery keys from the broker database (only those: it may be shared)."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_timeout=5)
    with contextlib.suppress(redis.RedisError):
        keys = [*client.scan_iter(match=f"*{queue}*")]
        if keys:
            client.delete(*keys)
    client.close()


def main() -> int:
    """``python -m tests.deploy.celery_cluster``: the same deployment, kept up until Ctrl-C.

    For trying the distributed run by hand on a machine without Docker: prints the UI address
    and writes ``cluster.env`` (``source`` it to use ``airflow`` and ``crm-sync`` against it).
    """
    import tempfile

    reason = postgres_unreachable()
    if reason:
        print(f"{reason}: run `make services` first", file=sys.stderr)
        return 1
    home = Path(tempfile.mkdtemp(prefix="crm-sync-celery-"))
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"starting Airflow (CeleryExecutor) under {home}: metadata DB, staging DB, sandbox, components")
    with (
        fresh_databases("crm_sync_meta", "crm_sync_staging") as (metadata_db, staging_db),
        celery_cluster(home / "airflow", metadata_db, staging_db) as cluster,
    ):
        env_file = home / "cluster.env"
        exported = {
            k: v
            for k, v in cluster.env.items()
            if k == "PATH" or k.startswith(("AIRFLOW", "CRM_", "REQUESTS_"))
        }
        env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in exported.items()))
        print(f"Airflow UI and REST API: {cluster.api_url}  (no login: local, loopback only)")
        print(f"CLI: source {env_file}; airflow dags unpause crm_sync; airflow dags trigger crm_sync")
        print(
            f"logs: {home / 'airflow'}/*.log and {home / 'airflow' / 'logs'}; Ctrl-C stops and drops both DBs"
        )
        while not stop.wait(2):
            cluster.check_alive()
    print("stopped; databases dropped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
