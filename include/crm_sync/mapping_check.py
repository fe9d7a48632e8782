"""The online half of the mapping check: every mapped field exists in the org and the portal.

The catalog check (at config load) proves crm-sync extracts a field; it cannot prove this org has
it. A custom field an admin never created, or one hidden from the integration user by field-level
security, is absent from the object's describe; a custom HubSpot property may have been archived.
Found only when the first write fails, such a field would stop a sync half-way; checked here, it
fails ``crm-sync check-config --online`` naming the config key, before anything is written.

Salesforce: ``GET /sobjects/{object}/describe`` lists the fields visible to the connection's
user (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm).
HubSpot: ``GET /crm/v3/properties/{objectType}`` lists the portal's live (non-archived)
properties (https://developers.hubspot.com/docs/api/crm/properties).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_sync import connections
from crm_sync.mappings import (
    MAPPING_PAIRS,
    SIDES,
    Side,
    describe_object,
    keyed_mappings,
    object_of,
    side_key,
    unknown_field_problem,
)
from crm_sync.settings import ConfigError, SyncConfig

#: The field names one side offers for one object: ``(side, object) -> names``.
FieldLister = Callable[[Side, str], set[str]]


def salesforce_fields(sf: Any, sf_object: str) -> set[str]:
    """The field names of ``sf_object`` the connection's user can see (its describe)."""
    return {str(f["name"]) for f in getattr(sf, sf_object).describe()["fields"]}


def hubspot_properties(client: Any, object_type: str) -> set[str]:
    """The names of the portal's live properties of ``object_type``."""
    return {str(p.name) for p in client.crm.properties.core_api.get_all(object_type=object_type).results}


def live_field_lister(
    sf_conn_id: str = connections.SALESFORCE_CONN_ID, hs_conn_id: str = connections.HUBSPOT_CONN_ID
) -> FieldLister:
    """A :data:`FieldLister` reading the org and the portal behind two Airflow connections.

    Each object is read once; a connection failure raises
    :class:`~crm_sync.connections.CrmConnectionError` with the fix.
    """
    sf = connections.salesforce_client(sf_conn_id)
    hs = connections.hubspot_hook(hs_conn_id).get_conn()
    cache: dict[tuple[Side, str], set[str]] = {}

    def fields(side: Side, obj: str) -> set[str]:
        if (side, obj) not in cache:
            if side == "salesforce":
                with connections.salesforce_errors(sf_conn_id):
                    cache[side, obj] = salesforce_fields(sf, obj)
            else:
                with connections.hubspot_errors(hs_conn_id):
                    cache[side, obj] = hubspot_properties(hs, obj)
        return cache[side, obj]

    return fields


def online_problems(config: SyncConfig, fields: FieldLister) -> list[str]:
    """``key: problem`` for every mapped field in force (built-in or configured) the CRMs lack."""
    problems: list[str] = []
    for group in MAPPING_PAIRS:
        for key, mapping in keyed_mappings(group, config.field_mappings.get(group, ())):
            for side in SIDES:
                name = mapping.salesforce if side == "salesforce" else mapping.hubspot
                where = describe_object(group, side) + (
                    " in this org" if side == "salesforce" else " in this portal"
                )
                problem = unknown_field_problem(name, fields(side, object_of(group, side)), where)
                if problem:
                    problems.append(f"key '{side_key(key, side)}' {problem}")
    return problems


def check_online(config: SyncConfig, fields: FieldLister | None = None) -> None:
    """Raise :class:`~crm_sync.settings.ConfigError` naming every mapped field the CRMs lack."""
    problems = online_problems(config, fields or live_field_lister())
    if problems:
        raise ConfigError(f"crm-sync config {config.source}: " + "; ".join(problems))
