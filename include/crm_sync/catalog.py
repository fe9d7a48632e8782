"""The object catalog: which objects crm-sync reads from each CRM, with which fields and cursors.

One :class:`Stream` per source object, in the manner of Singer taps and dlt verified sources: the
key, the incremental cursor and the typed field list live here, not in tasks. Extraction builds
its SOQL / property lists from it, staging builds its raw tables from it (one column per field,
named exactly as the source names it), and the rules read those columns. Adding a field to sync
is a one-line change here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

System = Literal["salesforce", "hubspot"]
FieldType = Literal[
    "id", "string", "text", "email", "url", "picklist", "datetime", "date", "number", "boolean"
]


@dataclass(frozen=True)
class Field:
    """One source field. ``max_length`` bounds text (longer values are quarantined, not truncated)."""

    name: str
    type: FieldType = "string"
    required: bool = False
    max_length: int | None = None


@dataclass(frozen=True)
class Stream:
    """One source object as crm-sync extracts it.

    ``cursor`` is the server-maintained modification timestamp used for incremental reads
    (SYNC-1); ``None`` means the object is small metadata re-read in full on every run.
    ``table`` is the staging table holding its latest extracted state, one row per ``key``.
    """

    system: System
    name: str
    table: str
    key: str
    cursor: str | None
    fields: tuple[Field, ...]

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.system} {self.name} has no catalog field {name!r}")


def _sf(name: str, table: str, *fields: Field, cursor: str | None = "SystemModstamp") -> Stream:
    audit = (
        Field("Id", "id", required=True),
        Field("CreatedDate", "datetime"),
        Field("LastModifiedDate", "datetime"),
        Field("SystemModstamp", "datetime", required=cursor is not None),
        Field("IsDeleted", "boolean"),
    )
    return Stream("salesforce", name, table, "Id", cursor, audit + fields)


def _hs(name: str, table: str, cursor: str, *fields: Field) -> Stream:
    audit = (
        Field("id", "id", required=True),
        Field("createdate", "datetime"),
        Field(cursor, "datetime", required=True),
    )
    return Stream("hubspot", name, table, "id", cursor, audit + fields)


_ROLLUPS = (
    Field("num_associated_deals", "number"),
    Field("first_deal_created_date", "datetime"),
    Field("recent_deal_close_date", "datetime"),
    Field("recent_deal_amount", "number"),
    Field("total_revenue", "number"),
)

SALESFORCE_STREAMS: tuple[Stream, ...] = (
    _sf(
        "User",
        "sf_user",
        Field("Username", "string"),
        Field("FirstName", "string"),
        Field("LastName", "string"),
        Field("Name", "string"),
        Field("Email", "email"),
        Field("IsActive", "boolean"),
    ),
    _sf(
        "RecordType",
        "sf_record_type",
        Field("Name", "string", required=True),
        Field("DeveloperName", "string"),
        Field("SobjectType", "string"),
        Field("IsActive", "boolean"),
    ),
    _sf(
        "OpportunityStage",
        "sf_opportunity_stage",
        Field("ApiName", "string", required=True),
        Field("MasterLabel", "string"),
        Field("SortOrder", "number"),
        Field("DefaultProbability", "number"),
        Field("IsClosed", "boolean"),
        Field("IsWon", "boolean"),
        Field("IsActive", "boolean"),
    ),
    _sf(
        "Account",
        "sf_account",
        Field("Name", "string", required=True, max_length=255),
        Field("Website", "url", max_length=255),
        Field("Phone", "string", max_length=40),
        Field("Industry", "picklist"),
        Field("Type", "picklist"),
        Field("BillingCity", "string", max_length=40),
        Field("BillingCountry", "string", max_length=80),
        Field("NumberOfEmployees", "number"),
        Field("AnnualRevenue", "number"),
        Field("Description", "text", max_length=32000),
        Field("OwnerId", "id"),
        Field("CurrencyIsoCode", "picklist"),
        Field("HubSpot_Id__c", "string", max_length=255),
    ),
    _sf(
        "Contact",
        "sf_contact",
        Field("FirstName", "string", max_length=40),
        Field("LastName", "string", required=True, max_length=80),
        Field("Email", "email", max_length=80),
        Field("Phone", "string", max_length=40),
        Field("Title", "string", max_length=128),
        Field("AccountId", "id"),
        Field("OwnerId", "id"),
        Field("LeadSource", "picklist"),
        Field("HubSpot_Id__c", "string", max_length=255),
    ),
    _sf(
        "Lead",
        "sf_lead",
        Field("FirstName", "string", max_length=40),
        Field("LastName", "string", required=True, max_length=80),
        Field("Company", "string", max_length=255),
        Field("Email", "email", max_length=80),
        Field("Phone", "string", max_length=40),
        Field("Title", "string", max_length=128),
        Field("Status", "picklist"),
        Field("LeadSource", "picklist"),
        Field("OwnerId", "id"),
        Field("IsConverted", "boolean"),
        Field("ConvertedContactId", "id"),
        Field("HubSpot_Id__c", "string", max_length=255),
    ),
    _sf(
        "Opportunity",
        "sf_opportunity",
        Field("Name", "string", required=True, max_length=120),
        Field("StageName", "picklist", required=True),
        Field("CloseDate", "date"),
        Field("Amount", "number"),
        Field("Type", "picklist"),
        Field("Description", "text", max_length=32000),
        Field("AccountId", "id"),
        Field("OwnerId", "id"),
        Field("RecordTypeId", "id"),
        Field("CurrencyIsoCode", "picklist"),
        Field("IsClosed", "boolean"),
        Field("IsWon", "boolean"),
        Field("HubSpot_Id__c", "string", max_length=255),
    ),
    _sf(
        "OpportunityContactRole",
        "sf_opportunity_contact_role",
        Field("OpportunityId", "id", required=True),
        Field("ContactId", "id", required=True),
        Field("Role", "picklist"),
        Field("IsPrimary", "boolean"),
    ),
)

HUBSPOT_STREAMS: tuple[Stream, ...] = (
    Stream(
        "hubspot",
        "owners",
        "hs_owner",
        "id",
        None,
        (
            Field("id", "id", required=True),
            Field("email", "email"),
            Field("firstName", "string"),
            Field("lastName", "string"),
            Field("userId", "string"),
            Field("archived", "boolean"),
            Field("updatedAt", "datetime"),
        ),
    ),
    Stream(
        "hubspot",
        "pipelines",
        "hs_pipeline",
        "id",
        None,
        (
            Field("id", "id", required=True),
            Field("label", "string", required=True),
            Field("displayOrder", "number"),
            Field("archived", "boolean"),
        ),
    ),
    Stream(
        "hubspot",
        "pipeline_stages",
        "hs_pipeline_stage",
        "id",
        None,
        (
            Field("id", "id", required=True),
            Field("pipeline_id", "id", required=True),
            Field("label", "string", required=True),
            Field("displayOrder", "number"),
            Field("probability", "number"),
            Field("isClosed", "boolean"),
            Field("archived", "boolean"),
        ),
    ),
    _hs(
        "companies",
        "hs_company",
        "hs_lastmodifieddate",
        Field("name", "string", max_length=65536),
        Field("domain", "string", max_length=255),
        Field("website", "url", max_length=255),
        Field("phone", "string"),
        Field("industry", "string"),
        Field("city", "string"),
        Field("country", "string"),
        Field("numberofemployees", "number"),
        Field("annualrevenue", "number"),
        Field("description", "text", max_length=65536),
        Field("hubspot_owner_id", "id"),
        Field("lifecyclestage", "picklist"),
        Field("salesforceaccountid", "string"),
        Field("crm_sync_manual_sync", "boolean"),
        Field("hs_object_source", "string"),
        *_ROLLUPS,
    ),
    _hs(
        "contacts",
        "hs_contact",
        "lastmodifieddate",
        Field("email", "email", max_length=254),
        Field("firstname", "string"),
        Field("lastname", "string"),
        Field("phone", "string"),
        Field("company", "string"),
        Field("jobtitle", "string"),
        Field("hubspot_owner_id", "id"),
        Field("lifecyclestage", "picklist"),
        Field("salesforcecontactid", "string"),
        Field("salesforceleadid", "string"),
        *_ROLLUPS,
    ),
    _hs(
        "deals",
        "hs_deal",
        "hs_lastmodifieddate",
        Field("dealname", "string", max_length=65536),
        Field("amount", "number"),
        Field("closedate", "datetime"),
        Field("dealstage", "string"),
        Field("pipeline", "string"),
        Field("dealtype", "picklist"),
        Field("description", "text", max_length=65536),
        Field("hubspot_owner_id", "id"),
        Field("salesforceopportunityid", "string"),
        Field("deal_currency_code", "string"),
    ),
)

#: HubSpot association pairs crm-sync reads; stored in one table keyed by (from, to, ids, type).
HUBSPOT_ASSOCIATIONS: tuple[tuple[str, str], ...] = (
    ("contacts", "companies"),
    ("deals", "contacts"),
    ("deals", "companies"),
)
ASSOCIATIONS_TABLE = "hs_association"

ALL_STREAMS: tuple[Stream, ...] = SALESFORCE_STREAMS + HUBSPOT_STREAMS


def stream(system: System, name: str) -> Stream:
    """Look a stream up by system and source object name (``("salesforce", "Account")``)."""
    for s in ALL_STREAMS:
        if s.system == system and s.name == name:
            return s
    raise KeyError(f"no {system} stream named {name!r}")
