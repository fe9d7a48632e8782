"""``make demo``: the whole product against the sandbox, on the embedded SQLite default.

Starts both CRM emulators with the demo scenario, shows through the real clients what they
serve, runs the ``crm_sync`` DAG in-process (``airflow dags test``) for a full two-way sync,
shows what both CRMs hold then, runs it again and proves from the emulators' request counts
that the second run wrote nothing (exit status 1 otherwise), runs the data-quality report, and
prints the first run's plan, the quarantine and the dead letters. Everything lives under ``.demo/`` in the
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
from typing import Any

from crm_sandbox.server import connection_env
from crm_sandbox.stats import fetch_stats, writes_between
from crm_sandbox.tls import tls_dir_for_port

#: The DAG of the data-quality report, run after the syncs when it is installed.
REPORT_DAG = "crm_data_quality_report"
POOLS = ("salesforce_api", "hubspot_api")


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
        env = _airflow_env(root, airflow_home, sf_port, hs_port)
        _show_sandbox(env, "the sandbox serves (read through simple-salesforce and hubspot-api-client):")
        _prepare_airflow(bin_dir, env, logs)
        _sync(bin_dir, env, logs / "crm_sync-run-1.log", "first run: a full two-way sync", root)
        _show_sandbox(env, "after the first run, both CRMs hold:")
        writes = _second_run(bin_dir, env, logs / "crm_sync-run-2.log", root, (sf_port, hs_port))
        report_log = logs / f"{REPORT_DAG}.log"
        if (root / "dags" / f"{REPORT_DAG}.py").exists():
            _say("running the data-quality report; log: " + _rel(report_log, root))
            _run([str(bin_dir / "airflow"), "dags", "test", REPORT_DAG], env, report_log)
    status = _show_outputs(airflow_home, root, logs)
    return 1 if writes else status


def _airflow_env(root: Path, airflow_home: Path, sf_port: int, hs_port: int) -> dict[str, str]:
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
    return env


def _prepare_airflow(bin_dir: Path, env: dict[str, str], logs: Path) -> None:
    """Airflow's metadata DB and the pools the load tasks run in (one per CRM)."""
    _say("preparing Airflow's metadata DB (SQLite, .demo/airflow) and the pools salesforce_api, hubspot_api")
    _run([str(bin_dir / "airflow"), "db", "migrate"], env, logs / "airflow-db-migrate.log")
    for pool in POOLS:
        _run(
            [str(bin_dir / "airflow"), "pools", "set", pool, "1", f"crm-sync writes to {pool.split('_')[0]}"],
            env,
            logs / f"pool-{pool}.log",
        )


def _sync(bin_dir: Path, env: dict[str, str], log: Path, title: str, root: Path) -> None:
    _say(f"{title} (extract -> rules -> validate -> load); log: {_rel(log, root)}")
    started = time.monotonic()
    _run([str(bin_dir / "airflow"), "dags", "test", "crm_sync"], env, log)
    _say(f"crm_sync finished in {time.monotonic() - started:.1f} s")


def _second_run(
    bin_dir: Path, env: dict[str, str], log: Path, root: Path, ports: tuple[int, int]
) -> dict[str, int]:
    """Run again and count the write requests both emulators saw: a synced pair needs none."""
    before = _stats(env, ports)
    _sync(bin_dir, env, log, "second run: both CRMs already agree, so it must write nothing", root)
    after = _stats(env, ports)
    writes = {
        f"{crm} {key}": n for crm in after for key, n in writes_between(before[crm], after[crm]).items()
    }
    if writes:
        _say(f"the second run wrote {sum(writes.values())} requests; it should have written none:")
        for key, count in sorted(writes.items()):
            print(f"  {count:>4}  {key}")
    else:
        _say("the second run made 0 write requests to either CRM (sandbox request stats)")
    return writes


def _stats(env: dict[str, str], ports: tuple[int, int]) -> dict[str, dict[str, Any]]:
    sf_port, hs_port = ports
    return {
        "salesforce": fetch_stats(f"https://127.0.0.1:{sf_port}", verify=env["REQUESTS_CA_BUNDLE"]),
        "hubspot": fetch_stats(f"http://127.0.0.1:{hs_port}"),
    }


def _show_outputs(airflow_home: Path, root: Path, logs: Path) -> int:
    """What a user reads after a sync: the first run's plan, kept-back records, the report."""
    from crm_sync import staging
    from crm_sync.cli import main as cli_main

    os.environ["AIRFLOW_HOME"] = str(airflow_home)
    os.environ.pop("AIRFLOW_CONN_CRM_STAGING", None)
    engine = staging.staging_engine()
    runs = staging.read_frame(engine, "sync_run").sort_values("started_at")
    status = 0
    commands = [["plan", "--run-id", str(runs["run_id"].iloc[0])], ["quarantine"], ["dead-letters"]]
    if (airflow_home / "crm_sync_reports").exists():
        commands.append(["report"])
    for command in commands:
        print()
        status = max(status, cli_main(command))
    reports = airflow_home / "crm_sync_reports"
    print()
    _say("where the output is:")
    print(f"  staging DB (SQLite)   {_rel(airflow_home / 'crm_sync_staging.db', root)}")
    print(f"  DAG run logs          {_rel(logs, root)}/crm_sync-run-{{1,2}}.log")
    print(f"  quality reports       {_rel(reports, root)}/<run>/report.html (make report)")
    print("  the plan, row by row  make plan ARGS='--format jsonl'")
    print("  quarantined records   make quarantine")
    print("  write failures        make dead-letters")
    return status


def _show_sandbox(env: dict[str, str], title: str) -> None:
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
    _say(title)
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
