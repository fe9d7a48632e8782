"""Staging databases for tests: the PostgreSQL server at 127.0.0.1:5432, one schema per test.

The same suites run on SQLite and PostgreSQL. A PostgreSQL variant gets a fresh schema (selected
through the ``crm_staging`` connection's ``options``, exactly as a deployment could) and is
skipped with the reason when the server cannot be reached.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import sqlalchemy as sa

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


def create_schema(prefix: str) -> str:
    """A new, empty schema named ``<prefix>_<random>``."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    admin.dispose()
    return schema


def drop_schemas(*schemas: str) -> None:
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        for schema in schemas:
            conn.execute(sa.text(f'drop schema if exists "{schema}" cascade'))
    admin.dispose()


def connection_for_schema(schema: str) -> dict[str, Any]:
    """The ``crm_staging`` Airflow connection (JSON form) for ``schema`` on the test server."""
    url = sa.engine.make_url(PG_URL)
    return {
        "conn_type": "postgres",
        "host": url.host,
        "port": url.port,
        "login": url.username,
        "schema": url.database,
        "extra": {"options": f"-csearch_path={schema}"},
    }
