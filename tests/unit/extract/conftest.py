"""Staging fixtures: the same tests run on SQLite and on PostgreSQL (127.0.0.1:5432).

The PostgreSQL variant gets a fresh schema per test (search_path set through the connection's
``options``) in the ``test`` database, and is skipped with the reason when the server cannot be
reached.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from crm_sync import staging

from tests.staging_db import connection_for_schema, create_schema, drop_schemas, postgres_unreachable


@pytest.fixture
def postgres_conn_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point ``crm_staging`` at a fresh PostgreSQL schema; yields the schema name."""
    reason = postgres_unreachable()
    if reason:
        pytest.skip(f"{reason} -- the PostgreSQL variant is skipped")
    schema = create_schema("crm_sync_test")
    monkeypatch.setenv("AIRFLOW_CONN_CRM_STAGING", json.dumps(connection_for_schema(schema)))
    try:
        yield schema
    finally:
        staging.dispose_engines()
        drop_schemas(schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(
    request: pytest.FixtureRequest, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> Iterator[sa.Engine]:
    """The staging engine, resolved through ``crm_staging`` exactly as tasks do, schema created."""
    if request.param == "sqlite":
        monkeypatch.setenv(
            "AIRFLOW_CONN_CRM_STAGING", json.dumps({"conn_type": "sqlite", "host": f"{tmp_path}/staging.db"})
        )
    else:
        request.getfixturevalue("postgres_conn_env")
    eng = staging.staging_engine()
    staging.ensure_schema(eng)
    yield eng
    staging.dispose_engines()
