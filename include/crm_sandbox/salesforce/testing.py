"""Helpers for tests and benchmarks of the Salesforce emulator.

* :func:`serve_salesforce` runs the Salesforce emulator alone over HTTPS (benchmarks, and tests
  that need Salesforce-only options without the HubSpot emulator);
* :class:`SandboxSession` wraps a running sandbox's Salesforce side: real simple-salesforce
  clients plus the ``/__sandbox/`` control plane (reset, faults, stats);
* :func:`session_fixtures` makes the pytest fixtures every Salesforce test module starts with
  (one sandbox per module, reset before each test, a client);
* :func:`sample_scenario` is a small org exercising every object and rule the emulator knows.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from crm_sandbox.salesforce.app import create_app
from crm_sandbox.salesforce.ids import make_id
from crm_sandbox.salesforce.schema import DEFAULT_STAGES, build_schema
from crm_sandbox.server import _ThreadedServer, running_sandbox
from crm_sandbox.tls import make_tls_files


@dataclass(frozen=True)
class SandboxSession:
    """The Salesforce side of a running sandbox, seen through real clients."""

    url: str
    ca_bundle: Path
    sessions: list[requests.Session] = field(default_factory=list, compare=False, repr=False)

    def client(self, session_id: str = "sandbox-session", version: str = "59.0") -> Any:
        """A real ``simple_salesforce.Salesforce`` talking to the emulator."""
        from simple_salesforce.api import Salesforce

        return Salesforce(
            instance_url=self.url, session_id=session_id, version=version, session=self.http(auth=False)
        )

    def http(self, *, auth: bool = True) -> requests.Session:
        """A requests session trusting this sandbox's CA (and not ``REQUESTS_CA_BUNDLE``, which
        may point at another sandbox of the same test process)."""
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.ca_bundle)
        if auth:
            session.headers["Authorization"] = "Bearer sandbox-session"
        self.sessions.append(session)
        return session

    def close(self) -> None:
        """Close every connection opened through this object.

        Call it before the server stops: uvicorn waits for open keep-alive TLS connections
        (up to the server thread's join timeout) when it shuts down.
        """
        while self.sessions:
            self.sessions.pop().close()

    def control(self, method: str, name: str, payload: Any = None) -> Any:
        with self.http() as http:
            response = http.request(method, f"{self.url}/__sandbox/{name}", json=payload, timeout=60)
        response.raise_for_status()
        return response.json()

    def reset(self) -> None:
        self.control("POST", "reset")

    def add_faults(self, rules: list[dict[str, Any]]) -> None:
        self.control("POST", "faults", rules)

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "stats")
        return result


def session_fixtures(*, airflow_env: bool = False) -> tuple[object, object, object]:
    """The ``sandbox``, ``_fresh`` and ``sf`` pytest fixtures of a Salesforce emulator test module.

    Unpack them at module level, where pytest collects fixtures::

        sandbox, _fresh, sf = session_fixtures()

    * ``sandbox`` (module scope): both emulators serving :func:`sample`, as a
      :class:`SandboxSession`; one server per module keeps the suite fast. With ``airflow_env``
      the sandbox's Airflow connection variables are set while it runs, for tests that go
      through Airflow's ``SalesforceHook``.
    * ``_fresh`` (autouse): resets the org before every test, so no test sees another's writes.
    * ``sf``: a real ``simple_salesforce.Salesforce`` client of the sandbox.

    pytest is imported here, not at module level, because the emulator's benchmark uses this
    module too (:func:`serve_salesforce`) and must not need it.
    """
    import pytest

    @pytest.fixture(scope="module", name="sandbox")
    def sandbox() -> Iterator[SandboxSession]:
        with running_sandbox(sample()) as endpoints, pytest.MonkeyPatch.context() as mp:
            if airflow_env:
                for key, value in endpoints.airflow_env().items():
                    mp.setenv(key, value)
            session = SandboxSession(endpoints.salesforce_url, endpoints.ca_bundle)
            yield session
            session.close()

    @pytest.fixture(autouse=True, name="_fresh")
    def fresh(sandbox: SandboxSession) -> None:
        sandbox.reset()

    @pytest.fixture(name="sf")
    def sf(sandbox: SandboxSession) -> Any:
        return sandbox.client()

    return sandbox, fresh, sf


@dataclass(frozen=True)
class SalesforceEndpoint:
    """Where a served emulator listens and which CA bundle clients must trust."""

    port: int
    ca_bundle: Path

    session: SandboxSession

    @property
    def url(self) -> str:
        return self.session.url


@contextlib.contextmanager
def serve_salesforce(
    scenario: Mapping[str, Any] | None = None, **options: Any
) -> Iterator[SalesforceEndpoint]:
    """Run the emulator for ``scenario`` on a free port of 127.0.0.1 for the block's duration."""
    app = create_app(scenario or {}, **options)
    tls = make_tls_files(Path(tempfile.mkdtemp(prefix="crm-sf-tls-")))
    server = _ThreadedServer(app, 0, tls)
    # A client that still holds a keep-alive TLS connection (e.g. through a kept exception's
    # response) would otherwise make uvicorn's shutdown wait for the thread's join timeout.
    server.server.config.timeout_graceful_shutdown = 1
    port = server.start()
    session = SandboxSession(f"https://127.0.0.1:{port}", tls.ca_bundle)
    try:
        yield SalesforceEndpoint(port=port, ca_bundle=tls.ca_bundle, session=session)
    finally:
        session.close()
        server.stop()


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def sample_scenario(now: datetime | None = None) -> dict[str, Any]:
    """A small org: users (one inactive), record types, stages (one inactive), an active and an
    inactive Lead assignment rule, accounts (two sharing an external id, as a dirty org can),
    contacts, leads (one converted), opportunities and contact roles.

    Timestamps are fixed in the past except ``Recent*`` records, stamped relative to ``now`` so
    date literals (``TODAY``, ``LAST_N_DAYS:n``) have something to find.
    """
    now = now or datetime.now(UTC)
    old = "2025-12-01T09:00:00.000+0000"
    today = _stamp(now.replace(hour=0, minute=0, second=5, microsecond=0))
    yesterday = _stamp(now.replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1))
    ten_days = _stamp(now - timedelta(days=10))

    def audit(created: str, modified: str | None = None) -> dict[str, str]:
        return {
            "CreatedDate": created,
            "LastModifiedDate": modified or created,
            "SystemModstamp": modified or created,
        }

    stages = [dict(s) for s in DEFAULT_STAGES]
    stages.append(
        {
            "ApiName": "Dormant",
            "MasterLabel": "Dormant",
            "SortOrder": 99,
            "DefaultProbability": 5.0,
            "IsClosed": False,
            "IsWon": False,
            "IsActive": False,
            "ForecastCategoryName": "Omitted",
        }
    )
    return {
        "salesforce": {
            "User": [
                {
                    "Username": "ada@example.com",
                    "FirstName": "Ada",
                    "LastName": "Admin",
                    "Email": "ada@example.com",
                    "IsActive": True,
                    **audit(old),
                },
                {
                    "Username": "sam@example.com",
                    "FirstName": "Sam",
                    "LastName": "Seller",
                    "Email": "sam@example.com",
                    "IsActive": True,
                    **audit(old),
                },
                {
                    "Username": "ian@example.com",
                    "FirstName": "Ian",
                    "LastName": "Inactive",
                    "Email": "ian@example.com",
                    "IsActive": False,
                    **audit(old),
                },
                {
                    "Username": "rita@example.com",
                    "FirstName": "Rita",
                    "LastName": "Router",
                    "Email": "rita@example.com",
                    "IsActive": True,
                    **audit(old),
                },
            ],
            "RecordType": [
                {
                    "Name": "New Business",
                    "DeveloperName": "New_Business",
                    "SobjectType": "Opportunity",
                    "IsActive": True,
                    **audit(old),
                },
                {
                    "Name": "Renewal",
                    "DeveloperName": "Renewal",
                    "SobjectType": "Opportunity",
                    "IsActive": True,
                    **audit(old),
                },
                {
                    "Name": "Legacy",
                    "DeveloperName": "Legacy",
                    "SobjectType": "Opportunity",
                    "IsActive": False,
                    **audit(old),
                },
            ],
            "OpportunityStage": stages,
            "AssignmentRule": [
                {
                    "Name": "Web leads",
                    "SobjectType": "Lead",
                    "Active": True,
                    "AssignToEmail": "rita@example.com",
                },
                {
                    "Name": "Partner leads",
                    "SobjectType": "Lead",
                    "Active": False,
                    "AssignToEmail": "sam@example.com",
                },
            ],
            "Account": [
                {
                    "Name": "Acme Corp",
                    "Website": "https://www.acme.com/about",
                    "Industry": "Technology",
                    "Type": "Customer - Direct",
                    "NumberOfEmployees": 250,
                    "AnnualRevenue": 5000000.0,
                    "BillingCountry": "USA",
                    "HubSpot_Id__c": "hs-acme",
                    **audit(old, "2026-01-10T08:00:00.000+0000"),
                },
                {
                    "Name": "Globex",
                    "Website": "globex.com",
                    "Industry": "Energy",
                    "NumberOfEmployees": 40,
                    "BillingCountry": "Germany",
                    "CurrencyIsoCode": "EUR",
                    "HubSpot_Id__c": "hs-globex",
                    **audit(old, "2026-01-11T08:00:00.000+0000"),
                },
                {
                    "Name": "Initech",
                    "Website": None,
                    "NumberOfEmployees": None,
                    **audit(old, "2026-01-12T08:00:00.000+0000"),
                },
                {"Name": "Umbrella East", "HubSpot_Id__c": "hs-dup", **audit(old)},
                {"Name": "Umbrella West", "HubSpot_Id__c": "hs-dup", **audit(old)},
                {"Name": "Recent Today", **audit(today)},
                {"Name": "Recent Yesterday", **audit(yesterday)},
                {"Name": "Recent Ten Days", **audit(ten_days)},
            ],
            "Contact": [
                {
                    "FirstName": "Alice",
                    "LastName": "Anders",
                    "Email": "alice@acme.com",
                    "Title": "CTO",
                    "_account": "Acme Corp",
                    "LeadSource": "Web",
                    "HubSpot_Id__c": "hs-c-alice",
                    **audit(old),
                },
                {
                    "FirstName": "Bob",
                    "LastName": "Brown",
                    "Email": "Bob@Acme.com",
                    "_account": "Acme Corp",
                    **audit(old),
                },
                {
                    "FirstName": "Carol",
                    "LastName": "Clark",
                    "Email": "carol@globex.com",
                    "_account": "Globex",
                    **audit(old),
                },
                {"LastName": "Doe", **audit(old)},
            ],
            "Lead": [
                {
                    "FirstName": "Lee",
                    "LastName": "Lead",
                    "Company": "Leadco",
                    "Email": "lee@leadco.com",
                    "Status": "Working - Contacted",
                    **audit(old),
                },
                {
                    "FirstName": "Connie",
                    "LastName": "Converted",
                    "Company": "Convertco",
                    "IsConverted": True,
                    "Status": "Closed - Converted",
                    "ConvertedDate": "2026-01-05",
                    **audit(old),
                },
            ],
            "Opportunity": [
                {
                    "Name": "Acme Big Deal",
                    "StageName": "Closed Won",
                    "Amount": 50000.0,
                    "CloseDate": "2026-01-15",
                    "_account": "Acme Corp",
                    "_record_type": "New Business",
                    "HubSpot_Id__c": "hs-d-big",
                    **audit(old, "2026-01-15T10:00:00.000+0000"),
                },
                {
                    "Name": "Acme Renewal",
                    "StageName": "Prospecting",
                    "Amount": 10000.0,
                    "CloseDate": "2026-06-30",
                    "_account": "Acme Corp",
                    "_record_type": "Renewal",
                    "Type": "Existing Customer - Upgrade",
                    **audit(old, "2026-01-16T10:00:00.000+0000"),
                },
                {
                    "Name": "Globex Expansion",
                    "StageName": "Negotiation/Review",
                    "CloseDate": "2026-03-31",
                    "_account": "Globex",
                    "CurrencyIsoCode": "EUR",
                    **audit(old, "2026-01-16T10:00:00.000+0000"),
                },
            ],
            "OpportunityContactRole": [
                {
                    "_opportunity": "Acme Big Deal",
                    "_contact": "alice@acme.com",
                    "Role": "Decision Maker",
                    "IsPrimary": True,
                    **audit(old),
                },
                {
                    "_opportunity": "Acme Big Deal",
                    "_contact": "bob@acme.com",
                    "Role": "Evaluator",
                    **audit(old),
                },
            ],
        }
    }


def link_sample_ids(scenario: dict[str, Any]) -> dict[str, Any]:
    """Give :func:`sample_scenario` records fixed ids and turn its ``_name`` links into Ids.

    Kept separate so the scenario above reads as data; ids are generated with the emulator's own
    id scheme in a range the emulator never allocates (counter from 9000).
    """
    prefixes = {name: obj.key_prefix for name, obj in build_schema().items()}
    sf = scenario["salesforce"]
    for name, rows in sf.items():
        for i, row in enumerate(rows):
            row.setdefault("Id", make_id(prefixes[name], 9000 + i))
    by_name = {
        "Account": {r["Name"]: r["Id"] for r in sf["Account"]},
        "RecordType": {r["Name"]: r["Id"] for r in sf["RecordType"]},
        "Opportunity": {r["Name"]: r["Id"] for r in sf["Opportunity"]},
        "Contact": {str(r.get("Email", "")).lower(): r["Id"] for r in sf["Contact"]},
    }
    links = {
        "_account": ("AccountId", "Account"),
        "_record_type": ("RecordTypeId", "RecordType"),
        "_opportunity": ("OpportunityId", "Opportunity"),
        "_contact": ("ContactId", "Contact"),
    }
    for rows in sf.values():
        for row in rows:
            for key, (ref_field, target) in links.items():
                if key in row:
                    row[ref_field] = by_name[target][row.pop(key)]
    converted = next(r for r in sf["Lead"] if r.get("IsConverted"))
    converted["ConvertedContactId"] = by_name["Contact"]["alice@acme.com"]
    converted["ConvertedAccountId"] = by_name["Account"]["Acme Corp"]
    return scenario


def sample(now: datetime | None = None) -> dict[str, Any]:
    """:func:`sample_scenario` with ids and links resolved: ready to serve."""
    return link_sample_ids(sample_scenario(now))
