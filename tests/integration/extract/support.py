"""Helpers for the extraction integration tests: sandbox handles, staging databases, dumps."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from crm_sandbox.generate import GeneratorConfig, generate_scenario
from crm_sandbox.server import SandboxEndpoints
from crm_sync import staging
from crm_sync.catalog import ALL_STREAMS, ASSOCIATIONS_TABLE
from crm_sync.settings import ExtractSettings, SyncConfig, load_config
from crm_sync.tasks import HUBSPOT_OBJECTS, SALESFORCE_OBJECTS, extract_hubspot, extract_salesforce
from hubspot import HubSpot
from simple_salesforce.api import Salesforce

from tests.staging_db import connection_for_schema, create_schema

#: Tables whose contents must not change when nothing changed at the source.
DATA_TABLES = (*(s.table for s in ALL_STREAMS), ASSOCIATIONS_TABLE, "sync_watermark", "sync_link")

#: Records a real org/portal can hold but crm-sync must quarantine (SYNC-5).
BAD_SF_ACCOUNT = {"Name": "Alchemy Partners", "Industry": "Alchemy"}  # unknown picklist value
BAD_SF_CONTACT = {"FirstName": "No", "LastName": None, "Email": "nolast@example.com"}  # required missing
BAD_SF_LEAD = {"LastName": "Longtitle", "Company": "X", "Title": "T" * 200}  # Title > 128
BAD_HS_CONTACT = {"id": 990001, "properties": {"email": "x" * 250 + "@example.com", "firstname": "Long"}}


def base_scenario(seed: int = 7, accounts: int = 40) -> dict[str, Any]:
    """A generated org and portal (realistic shapes and links) plus malformed records."""
    scenario = generate_scenario(GeneratorConfig(seed=seed, accounts=accounts))
    sf = scenario["salesforce"]
    sf["Account"].append(dict(BAD_SF_ACCOUNT))
    sf["Contact"].append(dict(BAD_SF_CONTACT))
    sf["Lead"].append(dict(BAD_SF_LEAD))
    scenario["hubspot"]["contacts"].append(json.loads(json.dumps(BAD_HS_CONTACT)))
    return scenario


def extract_config(**extract: Any) -> SyncConfig:
    """The shipped config with small chunks (several chunks per object) and fast bulk polling."""
    settings = {"chunk_size": 25, "bulk_poll_seconds": 0.02, **extract}
    return dataclasses.replace(load_config(), extract=ExtractSettings(**settings))


@dataclasses.dataclass
class Sandbox:
    """A running sandbox with the environment pointing Airflow connections at it."""

    endpoints: SandboxEndpoints
    monkeypatch: pytest.MonkeyPatch

    def connect(
        self,
        *,
        session_id: str = "sandbox-session",
        token: str = "sandbox-token",
        sf_extra: Mapping[str, Any] | None = None,
        hs_extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Set every ``airflow_env()`` variable, with extra connection fields merged in."""
        env = self.endpoints.airflow_env(session_id=session_id, token=token)
        for name, extra in (
            ("AIRFLOW_CONN_SALESFORCE_DEFAULT", sf_extra),
            ("AIRFLOW_CONN_HUBSPOT_DEFAULT", hs_extra),
        ):
            if extra:
                conn = json.loads(env[name])
                conn["extra"] = {**conn.get("extra", {}), **extra}
                env[name] = json.dumps(conn)
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)

    def salesforce(self) -> Salesforce:
        return Salesforce(instance_url=self.endpoints.salesforce_url, session_id="sandbox-session")

    def hubspot(self) -> HubSpot:
        return HubSpot(access_token="sandbox-token", host=self.endpoints.hubspot_url)

    def faults(self, system: str, rules: list[dict[str, Any]]) -> None:
        url = self.endpoints.salesforce_url if system == "salesforce" else self.endpoints.hubspot_url
        requests.post(f"{url}/__sandbox/faults", json=rules, timeout=10).raise_for_status()

    def stats(self, system: str) -> dict[str, Any]:
        url = self.endpoints.salesforce_url if system == "salesforce" else self.endpoints.hubspot_url
        response = requests.get(f"{url}/__sandbox/stats", timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


@dataclasses.dataclass
class StagingDbs:
    """Makes staging databases of one kind and switches ``crm_staging`` between them."""

    kind: str
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch
    schemas: dict[str, str] = dataclasses.field(default_factory=dict)

    def use(self, name: str = "main") -> sa.Engine:
        """Point ``crm_staging`` at database ``name`` (created empty on first use)."""
        if self.kind == "sqlite":
            conn = {"conn_type": "sqlite", "host": str(self.tmp_path / f"{name}.db")}
        else:
            if name not in self.schemas:
                self.schemas[name] = create_schema(f"crm_sync_it_{name}")
            conn = connection_for_schema(self.schemas[name])
        self.monkeypatch.setenv("AIRFLOW_CONN_CRM_STAGING", json.dumps(conn))
        return staging.staging_engine()


def extract_everything(run_id: str, config: SyncConfig | None = None) -> dict[str, dict[str, Any]]:
    """Run every extraction task function, as the DAG's two task groups do."""
    cfg = config or extract_config()
    results = {
        f"salesforce.{o}": extract_salesforce(o, run_id=run_id, config=cfg) for o in SALESFORCE_OBJECTS
    }
    results.update({f"hubspot.{o}": extract_hubspot(o, run_id=run_id, config=cfg) for o in HUBSPOT_OBJECTS})
    return results


def dump_tables(engine: sa.Engine, tables: tuple[str, ...] = DATA_TABLES) -> dict[str, list[tuple[Any, ...]]]:
    return {t: staging.table_dump(engine, t) for t in tables}


def without_run_columns(
    engine: sa.Engine, tables: tuple[str, ...] = DATA_TABLES
) -> dict[str, list[tuple[Any, ...]]]:
    """Table contents minus the columns that record *which* run/time wrote a row."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for name in tables:
        table = staging.table_for(engine, name)
        keep = [
            c
            for c in table.c
            if c.name
            not in ("_run_id", "_extracted_at", "updated_at", "pending_run_id", "linked_at", "run_id")
        ]
        order = list(table.primary_key.columns)
        with engine.connect() as conn:
            out[name] = [tuple(r) for r in conn.execute(sa.select(*keep).order_by(*order))]
    return out
