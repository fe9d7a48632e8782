"""Sandbox + staging fixtures for extraction tests: real clients over HTTP, no mocks.

Every test gets both emulators (``running_sandbox``), the ``AIRFLOW_CONN_*`` variables that point
the real clients at them, and a staging database behind ``crm_staging``: a SQLite file, or (the
``postgres`` variants) a fresh schema on the PostgreSQL server at 127.0.0.1:5432, skipped with the
reason when it is unreachable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from crm_sandbox.server import running_sandbox
from crm_sync import staging

from tests.staging_db import drop_schemas, postgres_unreachable

from .support import Sandbox, StagingDbs


@pytest.fixture
def sandbox_for(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Sandbox]]:
    """Start a sandbox for a scenario (one per test); connections point at it."""
    stack: list[Any] = []

    def start(scenario: Mapping[str, Any], options: Mapping[str, Any] | None = None) -> Sandbox:
        ctx = running_sandbox(scenario, options=options)
        endpoints = ctx.__enter__()
        stack.append(ctx)
        box = Sandbox(endpoints, monkeypatch)
        box.connect()
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(endpoints.ca_bundle))
        return box

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def staging_dbs(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StagingDbs]:
    if request.param == "postgres":
        reason = postgres_unreachable()
        if reason:
            pytest.skip(f"{reason} -- the PostgreSQL variant is skipped")
    dbs = StagingDbs(request.param, tmp_path, monkeypatch)
    yield dbs
    staging.dispose_engines()
    if dbs.schemas:
        drop_schemas(*dbs.schemas.values())


@pytest.fixture
def sqlite_dbs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[StagingDbs]:
    """SQLite staging only (tests whose subject is not the database)."""
    yield StagingDbs("sqlite", tmp_path, monkeypatch)
    staging.dispose_engines()
