"""``make demo``: the whole product against the sandbox, on the embedded SQLite default.

Starts both CRM emulators with the demo scenario, shows through the real clients what they
serve, runs the ``crm_sync`` DAG in-process (``airflow dags test``) as a dry run, and prints the
plan it left in staging, as ``crm-sync plan`` shows it. Everything lives under ``.demo/`` in the
working directory, started afresh on every run so the demo is repeatable.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from crm_sandbox.server import connection_env
from crm_sandbox.tls import tls_dir_for_port


def main() -> int:
    root = Path.cwd()
    demo_dir = root / ".demo"
    airflow_home = demo_dir / "airflow"
    logs = demo_dir / "logs"
    shutil.rmtree(airflow_home, ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    scenario = Path(str(resources.files("crm_sandbox") / "scenarios" / "demo.json"))
    sf_port, hs_port = _free_port(), _free_port()
    bin_dir = Path(sys.executable).parent

    _say(
        f"starting the CRM sandbox (Salesforce https://127.0.0.1:{sf_port}, HubSpot http://127.0.0.1:{hs_port})"
    )
    with _sandbox(bin_dir, sf_port, hs_port, scenario, logs / "sandbox.log"):
        env = {
            **os.environ,
            **connection_env(sf_port, hs_port, tls_dir_for_port(sf_port) / "ca-bundle.pem"),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        }
        env.pop("AIRFLOW_CONN_CRM_STAGING", None)  # the embedded SQLite default
        _show_sandbox(env)
        _say("preparing Airflow's metadata DB (SQLite, .demo/airflow)")
        _run([str(bin_dir / "airflow"), "db", "migrate"], env, logs / "airflow-db-migrate.log")
        run_log = logs / "crm_sync-dry-run.log"
        _say("running the crm_sync DAG as a dry run (extract -> rules -> plan); log: " + _rel(run_log, root))
        started = time.monotonic()
        _run(
            [str(bin_dir / "airflow"), "dags", "test", "crm_sync", "-c", json.dumps({"dry_run": True})],
            env,
            run_log,
        )
        _say(f"crm_sync finished in {time.monotonic() - started:.1f} s")

    from crm_sync.cli import main as cli_main

    os.environ["AIRFLOW_HOME"] = str(airflow_home)
    os.environ.pop("AIRFLOW_CONN_CRM_STAGING", None)
    print()
    status = cli_main(["plan"])
    print()
    status = max(status, cli_main(["quarantine"]))
    staging_db = airflow_home / "crm_sync_staging.db"
    print()
    _say("where the output is:")
    print(f"  staging DB (SQLite)   {_rel(staging_db, root)}")
    print(f"  DAG run log           {_rel(run_log, root)}")
    print("  the plan, row by row  make plan ARGS='--format jsonl'")
    print("  quarantined records   make quarantine")
    return status


def _show_sandbox(env: dict[str, str]) -> None:
    """Count what each emulator serves, through the same clients the DAG uses."""
    from hubspot import HubSpot
    from simple_salesforce.api import Salesforce

    sf_conn = json.loads(env["AIRFLOW_CONN_SALESFORCE_DEFAULT"])
    hs_conn = json.loads(env["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
    os.environ["REQUESTS_CA_BUNDLE"] = env["REQUESTS_CA_BUNDLE"]
    sf = Salesforce(instance_url=sf_conn["extra"]["instance_url"], session_id=sf_conn["password"])
    hs = HubSpot(access_token=hs_conn["password"], host=hs_conn["extra"]["host"])
    counts = []
    for sobject in (
        "User",
        "RecordType",
        "Account",
        "Contact",
        "Lead",
        "Opportunity",
        "OpportunityContactRole",
    ):
        counts.append((f"Salesforce {sobject}", sf.query(f"SELECT COUNT() FROM {sobject}")["totalSize"]))
    for name, api in (
        ("companies", hs.crm.companies),
        ("contacts", hs.crm.contacts),
        ("deals", hs.crm.deals),
    ):
        counts.append((f"HubSpot {name}", len(api.get_all())))
    counts.append(("HubSpot owners", len(hs.crm.owners.get_all())))
    counts.append(("HubSpot deal pipelines", len(hs.crm.pipelines.pipelines_api.get_all("deals").results)))
    width = max(len(name) for name, _ in counts)
    _say("the sandbox serves (read through simple-salesforce and hubspot-api-client):")
    for name, count in counts:
        print(f"  {name.ljust(width)}  {count:>4}")


@contextmanager
def _sandbox(bin_dir: Path, sf_port: int, hs_port: int, scenario: Path, log: Path) -> Iterator[None]:
    cmd = [
        str(bin_dir / "crm-sandbox"),
        "serve",
        "--salesforce-port",
        str(sf_port),
        "--hubspot-port",
        str(hs_port),
        "--scenario",
        str(scenario),
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        _wait_for_ports(proc, (sf_port, hs_port), log)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_for_ports(
    proc: subprocess.Popen[bytes], ports: tuple[int, ...], log: Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    pending = set(ports)
    while pending:
        if proc.poll() is not None:
            raise SystemExit(f"the sandbox exited early; see {log}:\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            raise SystemExit(
                f"the sandbox did not open ports {sorted(pending)} within {timeout:.0f} s; see {log}"
            )
        for port in list(pending):
            with socket.socket() as sock:
                sock.settimeout(0.2)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    pending.discard(port)
        if pending:
            time.sleep(0.1)


def _run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("w") as out:
        result = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)  # noqa: S603
    if result.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(f"`{' '.join(cmd[1:3])}` failed (exit {result.returncode}); full log: {log}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _say(message: str) -> None:
    print(f"==> {message}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
