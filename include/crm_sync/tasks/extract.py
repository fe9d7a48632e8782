"""Extraction tasks: plain functions the ``crm_sync`` DAG's ``@task`` wrappers call.

Each function extracts one object of one CRM into staging for one data interval and returns a
small XCom-able dict (table name and counts, never data)::

    {"system", "object", "table", "mode", "read", "changed", "created", "updated", "deleted",
     "quarantined", "api_calls", "watermark", ...}

Hooks and engines are created inside the call (nothing happens at import). Connection problems
raise :class:`~crm_sync.connections.CrmConnectionError` naming the connection and the fix.

SYNC-1: each call records a *pending* watermark; :func:`commit_watermarks` promotes them once the
run has succeeded (the DAG calls it last, and not on dry runs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from crm_sync import staging
from crm_sync.catalog import HUBSPOT_STREAMS, SALESFORCE_STREAMS, stream
from crm_sync.connections import (
    HUBSPOT_CONN_ID,
    SALESFORCE_CONN_ID,
    hubspot_errors,
    hubspot_hook,
    salesforce_batch_size,
    salesforce_client,
    salesforce_errors,
)
from crm_sync.settings import SyncConfig, load_config

#: Salesforce objects in extraction order (metadata first), as the DAG maps its tasks.
SALESFORCE_OBJECTS: tuple[str, ...] = tuple(s.name for s in SALESFORCE_STREAMS)
#: HubSpot objects in extraction order; ``pipelines`` also writes ``hs_pipeline_stage`` and
#: companies/contacts/deals write their associations to ``hs_association``.
HUBSPOT_OBJECTS: tuple[str, ...] = tuple(s.name for s in HUBSPOT_STREAMS if s.name != "pipeline_stages")


def as_utc(value: datetime | str | None) -> datetime | None:
    """Airflow passes pendulum datetimes (or ISO strings through templates); normalise to UTC."""
    if value is None or value == "":
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    if parsed.tzinfo is None:  # Airflow's intervals are UTC; a naive value means UTC too
        parsed = parsed.replace(tzinfo=UTC)
    # A plain datetime (not pendulum's subclass), in UTC.
    return datetime.fromtimestamp(parsed.timestamp(), tz=UTC)


def extract_salesforce(
    object_name: str,
    *,
    run_id: str,
    data_interval_end: datetime | str | None = None,
    config: SyncConfig | None = None,
    conn_id: str = SALESFORCE_CONN_ID,
    staging_conn_id: str = staging.DEFAULT_CONN_ID,
) -> dict[str, Any]:
    """Extract one Salesforce object (``Account``, ``Contact``, ...) changed up to the interval end."""
    from crm_sync.extract.salesforce import SalesforceExtractor

    if object_name not in SALESFORCE_OBJECTS:
        raise ValueError(f"unknown Salesforce object {object_name!r}; expected one of {SALESFORCE_OBJECTS}")
    settings = (config or load_config()).extract
    engine = staging.staging_engine(staging_conn_id)
    sf = salesforce_client(conn_id)
    with salesforce_errors(conn_id, f"https://{sf.sf_instance}"):
        extractor = SalesforceExtractor(
            sf, engine, settings, run_id=run_id, batch_size=salesforce_batch_size(conn_id)
        )
        stats = extractor.extract(stream("salesforce", object_name), until=as_utc(data_interval_end))
    return {**stats.as_xcom(), "duration_s": round(stats.duration_s, 3)}


def extract_hubspot(
    object_name: str,
    *,
    run_id: str,
    data_interval_end: datetime | str | None = None,
    config: SyncConfig | None = None,
    conn_id: str = HUBSPOT_CONN_ID,
    staging_conn_id: str = staging.DEFAULT_CONN_ID,
) -> dict[str, Any]:
    """Extract one HubSpot object (``owners``, ``pipelines``, ``companies``, ``contacts``, ``deals``)."""
    from crm_sync.extract.hubspot import HubSpotExtractor

    if object_name not in HUBSPOT_OBJECTS:
        raise ValueError(f"unknown HubSpot object {object_name!r}; expected one of {HUBSPOT_OBJECTS}")
    settings = (config or load_config()).extract
    engine = staging.staging_engine(staging_conn_id)
    hook = hubspot_hook(conn_id)
    hs = hook.settings
    with hubspot_errors(conn_id, hs.host):
        extractor = HubSpotExtractor(
            hook.get_conn(),
            engine,
            settings,
            run_id=run_id,
            timeout=hs.timeout,
            search_per_second=hs.search_per_second,
        )
        if object_name == "owners":
            stats = extractor.extract_owners()
        elif object_name == "pipelines":
            stats = extractor.extract_pipelines()
        else:
            stats = extractor.extract_objects(stream("hubspot", object_name), until=as_utc(data_interval_end))
    return {**stats.as_xcom(), "duration_s": round(stats.duration_s, 3)}


def commit_watermarks(run_id: str, *, staging_conn_id: str = staging.DEFAULT_CONN_ID) -> dict[str, str]:
    """SYNC-1: promote this run's pending watermarks; call only after a successful, non-dry run."""
    return staging.commit_watermarks(staging.staging_engine(staging_conn_id), run_id)


def refresh_links(run_id: str, *, staging_conn_id: str = staging.DEFAULT_CONN_ID) -> dict[str, int]:
    """Derive ``sync_link`` pairs from the staged link fields (after both extract groups)."""
    return staging.refresh_links_from_staging(staging.staging_engine(staging_conn_id), run_id)
