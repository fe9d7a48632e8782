"""Backfill tests share the extraction tests' sandbox and staging fixtures (real clients, no mocks)."""

from tests.integration.extract.conftest import sandbox_for, sqlite_dbs, staging_dbs

__all__ = ["sandbox_for", "sqlite_dbs", "staging_dbs"]
