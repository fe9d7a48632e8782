"""Task functions the DAGs' ``@task`` wrappers call: plain, typed, returning small XCom dicts."""

from crm_sync.tasks.extract import (
    HUBSPOT_OBJECTS,
    SALESFORCE_OBJECTS,
    commit_watermarks,
    extract_hubspot,
    extract_salesforce,
    refresh_links,
)

__all__ = [
    "HUBSPOT_OBJECTS",
    "SALESFORCE_OBJECTS",
    "commit_watermarks",
    "extract_hubspot",
    "extract_salesforce",
    "refresh_links",
]
