"""The ``crm-sandbox`` command line, run as users run it: as a subprocess.

``serve`` is checked through the real clients (simple-salesforce over HTTPS with the CA bundle the
sandbox writes, hubspot-api-client over HTTP), and must stop cleanly on SIGTERM/SIGINT because the
demo and CI stop it that way. Waits are bounded polls on conditions (a ready line, an exit), never
sleeps.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from crm_sandbox.cli import READY_PREFIX
from crm_sandbox.scenario import load_scenario
from hubspot import HubSpot
from hubspot.crm.companies.exceptions import ApiException as CompaniesApiException
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceRefusedRequest

CLI = Path(sys.executable).with_name("crm-sandbox")


def _cli_command() -> list[str]:
    """The installed console script (the contract), else the module (a checkout without install)."""
    return [str(CLI)] if CLI.exists() else [sys.executable, "-m", "crm_sandbox.cli"]


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["CRM_SANDBOX_HOME"] = str(home)
    env.pop("REQUESTS_CA_BUNDLE", None)
    return env


def run_cli(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_cli_command(), *args], env=_env(home), capture_output=True, text=True, timeout=timeout, check=False
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """``crm-sandbox serve`` in a subprocess; knows when it is ready and how it ended."""

    def __init__(self, home: Path, *args: str) -> None:
        self.salesforce_port = free_port()
        self.hubspot_port = free_port()
        self.home = home
        self.stderr_path = home / f"serve-{self.salesforce_port}.err"
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [
                *_cli_command(),
                "serve",
                "--salesforce-port",
                str(self.salesforce_port),
                "--hubspot-port",
                str(self.hubspot_port),
                *args,
            ],
            env=_env(home),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_ready(self, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no ready line within {timeout}s; stderr: {self.stderr()}")
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"serve exited ({self.proc.wait()}) before ready: {self.stderr()}")
            if line.startswith(READY_PREFIX):
                return line

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self._stderr.close()
        return code

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text()

    @property
    def ca_bundle(self) -> Path:
        return self.home / f"salesforce-{self.salesforce_port}" / "ca-bundle.pem"

    def salesforce(self, monkeypatch: pytest.MonkeyPatch) -> Salesforce:
        """A client that trusts this sandbox's CA the way users configure it: REQUESTS_CA_BUNDLE.

        (``requests`` lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override ``session.verify``, so a
        session setting alone is not enough on machines that export those variables.)
        """
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(self.ca_bundle))
        monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
        session = requests.Session()
        session.verify = str(self.ca_bundle)
        return Salesforce(
            instance_url=f"https://127.0.0.1:{self.salesforce_port}", session_id="x", session=session
        )

    def hubspot(self) -> HubSpot:
        return HubSpot(access_token="x", host=f"http://127.0.0.1:{self.hubspot_port}")

    def ports(self) -> list[str]:
        return ["--salesforce-port", str(self.salesforce_port), "--hubspot-port", str(self.hubspot_port)]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "sandbox-home"
    path.mkdir()
    return path


@pytest.fixture
def serving(home: Path) -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait(timeout=30)


# -- connections -----------------------------------------------------------------------------------


def test_connections_prints_exactly_three_export_lines(home: Path) -> None:
    result = run_cli("connections", "--salesforce-port", "18443", "--hubspot-port", "18080", home=home)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [
        "export AIRFLOW_CONN_SALESFORCE_DEFAULT",
        "export AIRFLOW_CONN_HUBSPOT_DEFAULT",
        "export REQUESTS_CA_BUNDLE",
    ]
    assert "does not exist yet" in result.stderr  # no sandbox runs on 18443 in this home


def test_connections_output_is_evalable_and_names_ports_and_ca(home: Path, tmp_path: Path) -> None:
    printer = tmp_path / "print_env.py"
    names = ["AIRFLOW_CONN_SALESFORCE_DEFAULT", "AIRFLOW_CONN_HUBSPOT_DEFAULT", "REQUESTS_CA_BUNDLE"]
    printer.write_text(f"import json, os\nprint(json.dumps({{k: os.environ[k] for k in {names!r}}}))\n")
    command = " ".join(shlex.quote(part) for part in _cli_command())
    # `eval "$(crm-sandbox connections ...)"`, with a session id that needs shell quoting
    connections = f'{command} connections --salesforce-port 18443 --hubspot-port 18080 --session-id "it\'s x"'
    script = f'eval "$({connections})" && {shlex.quote(sys.executable)} {shlex.quote(str(printer))}'
    result = subprocess.run(
        ["bash", "-c", script], env=_env(home), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    salesforce = json.loads(values["AIRFLOW_CONN_SALESFORCE_DEFAULT"])
    hubspot = json.loads(values["AIRFLOW_CONN_HUBSPOT_DEFAULT"])
    assert salesforce["extra"]["instance_url"] == "https://127.0.0.1:18443"
    assert salesforce["extra"]["session_id"] == "it's x"  # quoting survives eval
    assert hubspot["extra"]["host"] == "http://127.0.0.1:18080"
    assert values["REQUESTS_CA_BUNDLE"] == str(home / "salesforce-18443" / "ca-bundle.pem")


# -- generate and check ----------------------------------------------------------------------------


def test_generate_is_byte_identical_for_the_same_seed(home: Path, tmp_path: Path) -> None:
    args = [
        "generate",
        "--seed",
        "5",
        "--accounts",
        "40",
        "--opportunities",
        "90",
        "--duplicate-fraction",
        "0.1",
    ]
    first, second, other = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "c.json"
    for path in (first, second):
        result = run_cli(*args, "--output", str(path), home=home)
        assert result.returncode == 0, result.stderr
        assert "wrote" in result.stderr
    assert first.read_bytes() == second.read_bytes()
    run_cli(*[a if a != "5" else "6" for a in args], "--output", str(other), home=home)
    assert other.read_bytes() != first.read_bytes()
    scenario = load_scenario(first)
    assert len(scenario["salesforce"]["Opportunity"]) == 90
    assert len(scenario["salesforce"]["Account"]) == 40


def test_generate_to_stdout_is_json(home: Path) -> None:
    result = run_cli("generate", "--seed", "1", "--accounts", "3", home=home)
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["salesforce"]["Account"]) == 3


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--accounts", "10", "--linked-fraction", "2"], 2, "--linked-fraction"),
        (["--accounts", "0", "--opportunities", "5"], 1, "--opportunities"),
        (["--accounts", "10", "--as-of", "2000-01-01T00:00:00Z"], 1, "--start"),
    ],
)
def test_generate_rejects_bad_options(
    home: Path, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    out = tmp_path / "never.json"
    result = run_cli("generate", "--seed", "1", *args, "--output", str(out), home=home)
    assert result.returncode == code
    assert message in result.stderr
    assert not out.exists()


def test_check_names_the_bad_key(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "typo.json"
    path.write_text(json.dumps({"salesforce": {"Acount": []}}))
    result = run_cli("check", str(path), home=home)
    assert result.returncode == 1
    assert "salesforce.Acount: unknown key" in result.stderr
    ok = run_cli("check", "demo", home=home)
    assert ok.returncode == 0, ok.stderr
    assert "salesforce.Account: 15" in ok.stdout


# -- serve -----------------------------------------------------------------------------------------


def test_serve_a_generated_scenario_through_the_real_clients(
    home: Path, tmp_path: Path, serving: list[Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario_file = tmp_path / "small.json"
    result = run_cli("generate", "--seed", "3", "--accounts", "30", "--output", str(scenario_file), home=home)
    assert result.returncode == 0, result.stderr
    served = Served(home, "--scenario", str(scenario_file))
    serving.append(served)
    ready = served.wait_ready()
    assert f"https://127.0.0.1:{served.salesforce_port}" in ready
    assert f"http://127.0.0.1:{served.hubspot_port}" in ready
    assert str(served.ca_bundle) in ready

    sf = served.salesforce(monkeypatch)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 30
    assert sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] == len(
        [o for o in load_scenario(scenario_file)["salesforce"]["Opportunity"] if not o.get("IsDeleted")]
    )
    page = served.hubspot().crm.companies.basic_api.get_page(limit=100)
    assert len(page.results) == 15

    stats = run_cli("stats", *served.ports(), "--json", home=home)
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert counts["salesforce"]["total"] >= 2
    assert counts["hubspot"]["total"] >= 1
    reset = run_cli("reset", *served.ports(), home=home)
    assert reset.returncode == 0, reset.stderr
    after = json.loads(run_cli("stats", *served.ports(), "--json", home=home).stdout)
    assert after["salesforce"]["total"] == 0

    assert served.stop(signal.SIGTERM) == 0
    assert "stopped" in served.stderr()


def test_serve_without_scenario_is_an_empty_org_and_stops_on_sigint(
    home: Path, serving: list[Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    served = Served(home)
    serving.append(served)
    served.wait_ready()
    sf = served.salesforce(monkeypatch)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 0
    users = sf.query("SELECT Id, IsActive FROM User")["records"]
    assert any(u["IsActive"] for u in users), "the emulator provides a default user"
    pipelines = served.hubspot().crm.pipelines.pipelines_api.get_all(object_type="deals").results
    assert [p.id for p in pipelines] == ["default"]
    assert served.stop(signal.SIGINT) == 0


def test_serve_passes_rate_limits_to_the_emulators(
    home: Path, serving: list[Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    served = Served(
        home, "--scenario", "demo", "--hubspot-requests-per-10s", "2", "--salesforce-daily-api-limit", "3"
    )
    serving.append(served)
    served.wait_ready()
    companies = served.hubspot().crm.companies.basic_api
    companies.get_page(limit=1)
    companies.get_page(limit=1)
    with pytest.raises(CompaniesApiException) as caught:
        companies.get_page(limit=1)
    assert caught.value.status == 429
    sf = served.salesforce(monkeypatch)
    for _ in range(3):
        sf.query("SELECT Id FROM Account LIMIT 1")
    with pytest.raises(SalesforceRefusedRequest, match="REQUEST_LIMIT_EXCEEDED"):
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert served.stop() == 0


def test_serve_refuses_a_port_in_use_without_touching_its_tls_files(
    home: Path, serving: list[Served], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = Served(home)
    serving.append(first)
    first.wait_ready()
    bundle_before = first.ca_bundle.read_bytes()
    result = run_cli(
        "serve",
        "--salesforce-port",
        str(first.salesforce_port),
        "--hubspot-port",
        str(free_port()),
        home=home,
    )
    assert result.returncode == 1
    assert f"--salesforce-port {first.salesforce_port} is already in use" in result.stderr
    assert first.ca_bundle.read_bytes() == bundle_before
    assert first.salesforce(monkeypatch).query("SELECT COUNT() FROM Account")["totalSize"] == 0
    assert first.stop() == 0


def test_serve_reports_a_scenario_an_emulator_rejects(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad-field.json"
    path.write_text(json.dumps({"salesforce": {"Account": [{"Name": "Acme", "Bogus__c": 1}]}}))
    result = run_cli("serve", "--salesforce-port", str(free_port()), "--hubspot-port", str(free_port()),
                     "--scenario", str(path), home=home)  # fmt: skip
    assert result.returncode == 1
    assert "scenario rejected by an emulator" in result.stderr
    assert "Bogus__c" in result.stderr
    assert READY_PREFIX not in result.stdout
