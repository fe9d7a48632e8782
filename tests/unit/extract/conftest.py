"""Staging fixtures: the same tests run on SQLite and on PostgreSQL (127.0.0.1:5432).

The PostgreSQL variant gets a fresh schema per test (search_path set through the connection's
``options``) in the ``test`` database, and is skipped with the reason when the server cannot be
reached.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from crm_sync import staging

PG_URL = os.environ.get("CRM_SYNC_TEST_PG_URL", "postgresql+psycopg2://root@127.0.0.1:5432/test")


def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used, or ``None`` when it can."""
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except sa.exc.OperationalError as exc:
        return f"PostgreSQL at {PG_URL} is not reachable: {str(exc.orig).strip().splitlines()[0]}"
    return None


@pytest.fixture
def postgres_conn_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Point ``crm_staging`` at a fresh PostgreSQL schema; yields the schema name."""
    reason = postgres_unreachable()
    if reason:
        pytest.skip(f"{reason} -- the PostgreSQL variant is skipped")
    schema = f"crm_sync_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    url = sa.engine.make_url(PG_URL)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRM_STAGING",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": url.host,
                "port": url.port,
                "login": url.username,
                "schema": url.database,
                "extra": {"options": f"-csearch_path={schema}"},
            }
        ),
    )
    try:
        yield schema
    finally:
        staging.dispose_engines()
        with admin.begin() as conn:
            conn.execute(sa.text(f'drop schema "{schema}" cascade'))
        admin.dispose()


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
