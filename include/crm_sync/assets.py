"""Airflow Assets that connect crm-sync's DAGs (producer -> consumer), in one place.

``crm_sync`` publishes :data:`CRM_SYNC_LOAD` (``outlets=``) when its load has finished;
``crm_data_quality_report`` is scheduled on it (and daily), so every load is followed by a
report on the CRMs as the load left them. Both DAGs import the same object, so the name cannot
drift between producer and consumer.
"""

from __future__ import annotations

from airflow.sdk import Asset

#: Name of the asset a finished ``crm_sync`` load updates.
CRM_SYNC_LOAD_NAME = "crm_sync_load"
CRM_SYNC_LOAD = Asset(name=CRM_SYNC_LOAD_NAME, group="crm-sync")
