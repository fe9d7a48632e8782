"""The load tests use the same staging fixtures as the extraction tests: SQLite and PostgreSQL."""

from tests.unit.extract.conftest import engine, postgres_conn_env

__all__ = ["engine", "postgres_conn_env"]
