"""A SQLite staging database behind ``crm_staging`` for the backfill's bookkeeping tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from crm_sync import staging


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    monkeypatch.setenv(
        "AIRFLOW_CONN_CRM_STAGING", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "s.db")})
    )
    eng = staging.staging_engine()
    staging.ensure_schema(eng)
    yield eng
    staging.dispose_engines()
