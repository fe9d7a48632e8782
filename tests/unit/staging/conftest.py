"""The staging engine on SQLite and on PostgreSQL, as the extract tests get it (one fixture)."""

from __future__ import annotations

from tests.unit.extract.conftest import engine, postgres_conn_env

__all__ = ["engine", "postgres_conn_env"]
