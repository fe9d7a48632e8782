"""Hand-built staged worlds for the deal, pipeline, rollup and orchestration tests, and a loader
simulator that "applies" a plan to staged frames the way the loaders and the next extraction do.

Frames look like staging hands them to the rules: every catalog column of the stream (so a
test never passes because a column happened to be missing), ``_deleted``, ids as text.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from crm_sync.rules.inputs import RuleInputs
from crm_sync.rules.pipeline import PlanResult
from crm_sync.settings import SyncConfig

from tests.unit.rules import sync_frames
from tests.unit.rules.sync_frames import (
    AFTER,
    BEFORE,
    INTEGRATION_EMAIL,
    links,
    one,  # noqa: F401 - re-exported for the deal tests
    rows,
    staged,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATER = "2026-05-01T00:00:00.000+0000"

OPP_MAPPINGS = [
    {"salesforce": "Name", "hubspot": "dealname", "rule": "two_way"},
    {"salesforce": "CloseDate", "hubspot": "closedate", "rule": "two_way"},
    {"salesforce": "Type", "hubspot": "dealtype", "rule": "two_way"},
    {"salesforce": "Description", "hubspot": "description", "rule": "two_way"},
    {"salesforce": "Amount", "hubspot": "amount", "rule": "two_way"},
    {"salesforce": "CreatedDate", "hubspot": "createdate", "rule": "always_salesforce"},
]
#: The deal worlds' Leads map no ``Company``.
LEAD_MAPPINGS = [m for m in sync_frames.LEAD_MAPPINGS if m["salesforce"] != "Company"]


def sf(name: str, *rows: Mapping[str, Any]) -> pd.DataFrame:
    """A staged Salesforce frame, all columns ``object`` like frames read back from staging."""
    return staged("salesforce", name, rows, as_object=True)


def hs(name: str, *rows: Mapping[str, Any]) -> pd.DataFrame:
    """A staged HubSpot frame, all columns ``object`` like frames read back from staging."""
    return staged("hubspot", name, rows, as_object=True)


def assoc(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    """``hs_association`` rows ``(from_type, from_id, to_type, to_id)`` as staging stores them."""
    type_ids = {("deals", "contacts"): 3, ("deals", "companies"): 5, ("contacts", "companies"): 1}
    return pd.DataFrame(
        {
            "from_type": [r[0] for r in rows],
            "from_id": [r[1] for r in rows],
            "to_type": [r[2] for r in rows],
            "to_id": [r[3] for r in rows],
            "type_id": [type_ids.get((r[0], r[2]), 0) for r in rows],
            "_deleted": [False] * len(rows),
        }
    )


def snapshot(*rows: tuple[str, str, str, str, str, Any]) -> pd.DataFrame:
    """``sync_snapshot`` rows ``(object, sf_id, hs_id, sf_field, hs_field, value)``."""
    return pd.DataFrame(
        {
            "object": [r[0] for r in rows],
            "sf_id": [r[1] for r in rows],
            "hs_id": [r[2] for r in rows],
            "sf_field": [r[3] for r in rows],
            "hs_field": [r[4] for r in rows],
            "value": [json.dumps(r[5]) for r in rows],
            "synced_at": ["2026-04-01T00:00:00+00:00"] * len(rows),
        }
    )


def config(
    *,
    companies_sync: bool = True,
    deals_sync: bool = True,
    opportunities: Sequence[Mapping[str, Any]] = OPP_MAPPINGS,
) -> SyncConfig:
    return sync_frames.config(
        companies_sync=companies_sync, deals_sync=deals_sync, leads=LEAD_MAPPINGS, opportunities=opportunities
    )


# --------------------------------------------------------------------------- building blocks

STAGES = sf(
    "OpportunityStage",
    {
        "Id": "st1",
        "ApiName": "Prospecting",
        "MasterLabel": "Prospecting",
        "SortOrder": 1,
        "DefaultProbability": 10,
        "IsClosed": False,
        "IsWon": False,
        "IsActive": True,
    },
    {
        "Id": "st2",
        "ApiName": "Closed Won",
        "MasterLabel": "Closed Won",
        "SortOrder": 2,
        "DefaultProbability": 100,
        "IsClosed": True,
        "IsWon": True,
        "IsActive": True,
    },
    {
        "Id": "st3",
        "ApiName": "Closed Lost",
        "MasterLabel": "Closed Lost",
        "SortOrder": 3,
        "DefaultProbability": 0,
        "IsClosed": True,
        "IsWon": False,
        "IsActive": True,
    },
)


def record_types(*names: tuple[str, str]) -> pd.DataFrame:
    return sf(
        "RecordType",
        *({"Id": rid, "Name": name, "SobjectType": "Opportunity", "IsActive": True} for rid, name in names),
    )


def pipeline_stages(pipeline_id: str, prefix: str) -> list[dict[str, Any]]:
    """HubSpot stages matching :data:`STAGES` by label, ids ``<prefix>-1..3``."""
    return [
        {
            "id": f"{prefix}-1",
            "pipeline_id": pipeline_id,
            "label": "Prospecting",
            "displayOrder": 0,
            "probability": 0.1,
            "isClosed": False,
            "archived": False,
        },
        {
            "id": f"{prefix}-2",
            "pipeline_id": pipeline_id,
            "label": "Closed Won",
            "displayOrder": 1,
            "probability": 1.0,
            "isClosed": True,
            "archived": False,
        },
        {
            "id": f"{prefix}-3",
            "pipeline_id": pipeline_id,
            "label": "Closed Lost",
            "displayOrder": 2,
            "probability": 0.0,
            "isClosed": True,
            "archived": False,
        },
    ]


def opp(oid: str, **fields: Any) -> dict[str, Any]:
    base = {
        "Id": oid,
        "Name": "Widget deal",
        "StageName": "Prospecting",
        "CloseDate": "2026-09-30",
        "Amount": 1000.0,
        "CreatedDate": AFTER,
        "LastModifiedDate": AFTER,
        "SystemModstamp": AFTER,
        "IsDeleted": False,
        "OwnerId": "005ALICE",
        "CurrencyIsoCode": "USD",
    }
    return {**base, **fields}


def deal(did: str, **props: Any) -> dict[str, Any]:
    base = {
        "id": did,
        "dealname": "Widget deal",
        "amount": "1000",
        "closedate": "2026-09-30T00:00:00.000Z",
        "createdate": AFTER.replace("+0000", "Z"),
        "hs_lastmodifieddate": AFTER.replace("+0000", "Z"),
        "pipeline": "P1",
        "dealstage": "P1-1",
        "hubspot_owner_id": "100",
        "deal_currency_code": "USD",
    }
    return {**base, **props}


def users() -> pd.DataFrame:
    return sf(
        "User",
        {
            "Id": "005INT",
            "Email": INTEGRATION_EMAIL,
            "FirstName": "Integration",
            "LastName": "User",
            "Name": "Integration User",
            "IsActive": True,
        },
        {
            "Id": "005ALICE",
            "Email": "alice@example.com",
            "FirstName": "Alice",
            "LastName": "Ng",
            "Name": "Alice Ng",
            "IsActive": True,
        },
        {
            "Id": "005BOB",
            "Email": "bob@example.com",
            "FirstName": "Bob",
            "LastName": "Ray",
            "Name": "Bob Ray",
            "IsActive": True,
        },
    )


def owners() -> pd.DataFrame:
    return hs(
        "owners",
        {
            "id": "100",
            "email": "alice@example.com",
            "firstName": "Alice",
            "lastName": "Ng",
            "archived": False,
        },
        {"id": "200", "email": "bob@example.com", "firstName": "Bob", "lastName": "Ray", "archived": False},
    )


def deal_inputs(
    *,
    opps: Sequence[Mapping[str, Any]] = (),
    deals: Sequence[Mapping[str, Any]] = (),
    rts: Sequence[tuple[str, str]] = (("012A", "New Business"),),
    pipelines: Sequence[Mapping[str, Any]] = ({"id": "P1", "label": "Salesforce - Standard pipeline"},),
    stages: Sequence[Mapping[str, Any]] | None = None,
    link_rows: Sequence[tuple[str, str, str]] = (("RecordType", "__standard__", "P1"),),
    assoc_rows: Sequence[tuple[str, str, str, str]] = (),
    **frames: pd.DataFrame,
) -> RuleInputs:
    """A small world around deals: users/owners, one record type (standard pipeline P1)."""
    stage_rows = list(stages) if stages is not None else pipeline_stages("P1", "P1")
    base: dict[str, Any] = {
        "sf_user": users(),
        "hs_owner": owners(),
        "sf_record_type": record_types(*rts),
        "sf_opportunity_stage": STAGES,
        "sf_opportunity": sf("Opportunity", *opps),
        "hs_deal": hs("deals", *deals),
        "hs_pipeline": hs("pipelines", *pipelines),
        "hs_pipeline_stage": hs("pipeline_stages", *stage_rows),
        "links": links(*link_rows),
        "hs_association": assoc(*assoc_rows),
    }
    base.update(frames)
    return RuleInputs(now=NOW, **base)


# --------------------------------------------------------------------------- a whole world


def world() -> RuleInputs:
    """Every rule family at once: the end-to-end world of test_pipeline.py.

    Two Opportunity record types (one pipeline linked under an old name -> rename; one to
    create), a linked pair changed on both sides, an Opportunity to create, an old one
    (DEAL-9 skip), SF- and HS-side deletes (DEAL-4), a deal moved out of the synced pipelines
    (DEAL-3), an unlinked HS deal (DEAL-5) and one with an unknown stage (quarantine), contact
    roles and associations (DEAL-6), a linked Account (DEAL-7), a new Account and contacts.
    """
    return RuleInputs(
        now=NOW,
        sf_user=users(),
        hs_owner=owners(),
        sf_record_type=record_types(("012A", "New Business"), ("012B", "Renewal")),
        sf_opportunity_stage=STAGES,
        sf_account=sf(
            "Account",
            {
                "Id": "001A",
                "Name": "Acme",
                "Website": "https://www.acme.com/",
                "OwnerId": "005ALICE",
                "CreatedDate": AFTER,
                "LastModifiedDate": AFTER,
                "SystemModstamp": AFTER,
                "HubSpot_Id__c": "C1",
            },
            {
                "Id": "001B",
                "Name": "Globex",
                "Website": "globex.io",
                "OwnerId": "005ALICE",
                "CreatedDate": AFTER,
                "LastModifiedDate": AFTER,
                "SystemModstamp": AFTER,
            },
        ),
        sf_contact=sf(
            "Contact",
            {
                "Id": "003A",
                "FirstName": "Carol",
                "LastName": "Diaz",
                "Email": "carol@acme.com",
                "AccountId": "001A",
                "OwnerId": "005ALICE",
                "CreatedDate": AFTER,
                "LastModifiedDate": AFTER,
                "SystemModstamp": AFTER,
                "HubSpot_Id__c": "H1",
            },
            {
                "Id": "003B",
                "FirstName": "Dan",
                "LastName": "Eve",
                "Email": "dan@globex.io",
                "AccountId": "001B",
                "OwnerId": "005ALICE",
                "CreatedDate": AFTER,
                "LastModifiedDate": AFTER,
                "SystemModstamp": AFTER,
            },
            {
                "Id": "003C",
                "FirstName": "Gina",
                "LastName": "Hart",
                "Email": "Gina@Acme.com",
                "AccountId": "001A",
                "OwnerId": "005BOB",
                "CreatedDate": AFTER,
                "LastModifiedDate": AFTER,
                "SystemModstamp": AFTER,
            },
        ),
        sf_opportunity=sf(
            "Opportunity",
            opp(
                "006L",
                Name="Renamed in SF",
                Amount=1500.0,
                AccountId="001A",
                RecordTypeId="012A",
                LastModifiedDate=LATER,
                SystemModstamp=LATER,
                HubSpot_Id__c="D1",
            ),
            opp(
                "006N",
                AccountId="001A",
                RecordTypeId="012B",
                StageName="Closed Won",
                Amount=700.0,
                CreatedDate="2026-03-02T00:00:00.000+0000",
            ),
            opp(
                "006OLD",
                CreatedDate=BEFORE,
                LastModifiedDate=BEFORE,
                SystemModstamp=BEFORE,
                RecordTypeId="012A",
            ),
            opp("006DEL", IsDeleted=True, RecordTypeId="012A", HubSpot_Id__c="D4"),
            opp("006KEEP", RecordTypeId="012A", HubSpot_Id__c="D5"),
            opp("006MOVED", RecordTypeId="012A", HubSpot_Id__c="D6"),
        ),
        sf_opportunity_contact_role=sf(
            "OpportunityContactRole",
            {"Id": "00KA", "OpportunityId": "006L", "ContactId": "003A"},
            {"Id": "00KB", "OpportunityId": "006N", "ContactId": "003A"},
        ),
        hs_pipeline=hs(
            "pipelines",
            {"id": "P1", "label": "Salesforce - New Biz", "displayOrder": 1},
            {"id": "default", "label": "Sales Pipeline", "displayOrder": 0},
        ),
        hs_pipeline_stage=hs(
            "pipeline_stages",
            *pipeline_stages("P1", "P1")[:2],  # "Closed Lost" is missing -> created
            {
                "id": "appointmentscheduled",
                "pipeline_id": "default",
                "label": "Appointment scheduled",
                "displayOrder": 0,
                "probability": 0.2,
                "isClosed": False,
            },
        ),
        hs_company=hs(
            "companies",
            {
                "id": "C1",
                "name": "Acme",
                "domain": "acme.com",
                "salesforceaccountid": "001A",
                "hs_lastmodifieddate": AFTER,
                "createdate": AFTER,
            },
        ),
        hs_contact=hs(
            "contacts",
            {
                "id": "H1",
                "email": "carol@acme.com",
                "firstname": "Carol",
                "lastname": "Diaz",
                "salesforcecontactid": "003A",
                "lifecyclestage": "lead",
                "lastmodifieddate": AFTER,
                "createdate": AFTER,
            },
            {
                "id": "H2",
                "email": "erin@initech.com",
                "firstname": "Erin",
                "lastname": "Fox",
                "lifecyclestage": "salesqualifiedlead",
                "lastmodifieddate": AFTER,
                "createdate": AFTER,
            },
            {
                "id": "H3",
                "email": "gina@acme.com",
                "firstname": "Gina",
                "lastname": "Hart",
                "lifecyclestage": "subscriber",
                "lastmodifieddate": AFTER,
                "createdate": AFTER,
            },
        ),
        hs_deal=hs(
            "deals",
            deal(
                "D1",
                dealname="Renamed in HS",
                amount="1000",
                description="from HubSpot",
                salesforceopportunityid="006L",
                hs_lastmodifieddate="2026-04-01T00:00:00Z",
            ),
            deal("D4", salesforceopportunityid="006DEL"),
            deal("D5", salesforceopportunityid="006KEEP", _deleted=True),
            deal(
                "D6", pipeline="default", dealstage="appointmentscheduled", salesforceopportunityid="006MOVED"
            ),
            deal("D7", dealname="Made in HubSpot", dealstage="P1-2", amount="250"),
            deal("D8", dealstage="no-such-stage"),
            deal("D9", pipeline="default", dealstage="appointmentscheduled"),
        ),
        hs_association=assoc(
            ("deals", "D1", "contacts", "H1"),
            ("deals", "D7", "contacts", "H1"),
            ("deals", "D7", "companies", "C1"),
            ("contacts", "H1", "companies", "C1"),
        ),
        links=links(
            ("Account", "001A", "C1"),
            ("Contact", "003A", "H1"),
            ("Opportunity", "006L", "D1"),
            ("Opportunity", "006DEL", "D4"),
            ("Opportunity", "006KEEP", "D5"),
            ("Opportunity", "006MOVED", "D6"),
            ("RecordType", "012A", "P1"),
        ),
        snapshot=snapshot(
            ("Opportunity", "006L", "D1", "Name", "dealname", "Old name"),
            ("Opportunity", "006L", "D1", "Amount", "amount", 1000),
            ("Opportunity", "006L", "D1", "Description", "description", None),
            ("Opportunity", "006L", "D1", "StageName", "dealstage", "Prospecting"),
            ("Opportunity", "006L", "D1", "OwnerId", "hubspot_owner_id", "alice@example.com"),
        ),
    )


# --------------------------------------------------------------------------- loader simulator

_SF_TABLE = {
    "Account": "sf_account",
    "Contact": "sf_contact",
    "Lead": "sf_lead",
    "Opportunity": "sf_opportunity",
    "OpportunityContactRole": "sf_opportunity_contact_role",
}
_HS_TABLE = {"companies": "hs_company", "contacts": "hs_contact", "deals": "hs_deal"}
_HS_LINK_PROPERTY = {
    "Account": "salesforceaccountid",
    "Contact": "salesforcecontactid",
    "Lead": "salesforceleadid",
    "Opportunity": "salesforceopportunityid",
}
_HS_MODIFIED = {
    "companies": "hs_lastmodifieddate",
    "contacts": "lastmodifieddate",
    "deals": "hs_lastmodifieddate",
}
_MODIFIED_COLUMN = {_HS_TABLE[obj]: col for obj, col in _HS_MODIFIED.items()}


class _Ids:
    def __init__(self) -> None:
        self.counter = itertools.count(1)
        self.refs: dict[str, str] = {}

    def new(self, prefix: str) -> str:
        return f"{prefix}NEW{next(self.counter)}"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("@"):
            if value not in self.refs:
                raise AssertionError(f"unresolved reference {value}")
            return self.refs[value]
        return value


def apply_plan(inputs: RuleInputs, result: PlanResult) -> RuleInputs:
    """What the loaders and the next extraction make of a plan, on staged frames.

    Creates get new ids (HubSpot_Id__c upserts reuse an existing Opportunity), records created
    from the other side get their back-reference and a link-table row, references are resolved,
    updates overwrite fields, deletes archive, associations are stored, DEAL-4 cleared links
    are dropped and the merge snapshot is upserted. Modification times move to a later
    instant, like a real write would.
    """
    when = (NOW + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    frames = {name: getattr(inputs, name).copy() for name in (*_SF_TABLE.values(), *_HS_TABLE.values())}
    frames.update(
        {
            "hs_pipeline": inputs.hs_pipeline.copy(),
            "hs_pipeline_stage": inputs.hs_pipeline_stage.copy(),
            "hs_association": inputs.hs_association.copy(),
        }
    )
    link_table = inputs.links.copy() if not inputs.links.empty else links()
    ids = _Ids()
    plan = result.plan
    new_links: list[tuple[str, str, str]] = []

    def add_row(table: str, row: dict[str, Any]) -> None:
        frames[table] = pd.concat([frames[table], pd.DataFrame([row]).astype(object)], ignore_index=True)

    def set_fields(table: str, key: str, record_id: str, fields: Mapping[str, Any]) -> None:
        frame = frames[table]
        hit = frame[key].astype("str") == str(record_id)
        assert hit.any(), f"{table} has no record {record_id}"
        for name, value in fields.items():
            if name.startswith("_"):
                continue
            if name not in frame.columns:
                frame[name] = None
            frame[name] = frame[name].astype(object)
            frame.loc[hit, name] = ids.resolve(value)
        if table.startswith("sf_"):
            frame.loc[hit, "LastModifiedDate"] = when
            frame.loc[hit, "SystemModstamp"] = when
        elif table in _MODIFIED_COLUMN:
            frame.loc[hit, _MODIFIED_COLUMN[table]] = when

    def add_stage(ref: str, pipeline_id: str, stage: Mapping[str, Any]) -> None:
        """A created pipeline stage (HubSpot's stage shape) under a new id that ``ref`` resolves to."""
        sid = ids.new("STG")
        ids.refs[ref] = sid
        add_row(
            "hs_pipeline_stage",
            {
                "id": sid,
                "pipeline_id": pipeline_id,
                "label": stage["label"],
                "displayOrder": stage["displayOrder"],
                "isClosed": stage["metadata"]["isClosed"] == "true",
                "probability": float(stage["metadata"]["probability"]),
                "_deleted": False,
            },
        )

    # 1. Pipelines and their stages first: deals refer to them.
    stage_keys = result.pipeline_stages
    for row in rows(plan, object="pipelines", action="create"):
        fields = row["fields"]
        if "pipelineId" in fields:
            add_stage("@pipelines:" + row["source_id"], ids.resolve(fields["pipelineId"]), fields)
            continue
        pid = ids.new("PIPE")
        key = row["source_id"]
        ids.refs["@pipelines:" + key] = pid
        new_links.append(("RecordType", key, pid))
        add_row(
            "hs_pipeline",
            {"id": pid, "label": fields["label"], "displayOrder": fields["displayOrder"], "_deleted": False},
        )
        labels = stage_keys[stage_keys["pipeline_key"] == key].set_index("stage_label")["stage_api_name"]
        for stage in fields["stages"]:
            add_stage(f"@pipelines:{key}/{labels[stage['label']]}", pid, stage)
    for row in rows(plan, object="pipelines", action="link"):
        new_links.append(("RecordType", row["source_id"], row["target_id"]))
    for row in rows(plan, object="pipelines", action="update"):
        set_fields("hs_pipeline", "id", row["target_id"], row["fields"])

    # 2. Creates (ids for references), in an order where referenced records exist first.
    order = [
        "Account",
        "companies",
        "Contact",
        "Lead",
        "contacts",
        "Opportunity",
        "deals",
        "OpportunityContactRole",
    ]
    creates = plan[(plan["action"] == "create") & plan["object"].isin(order)]
    for obj in order:
        for row in rows(creates, object=obj):
            fields = {k: v for k, v in row["fields"].items() if not k.startswith("_")}
            if obj in _SF_TABLE:
                existing = frames[_SF_TABLE[obj]]
                ext = fields.get("HubSpot_Id__c")
                has_ext = bool(ext) and len(existing) > 0 and "HubSpot_Id__c" in existing.columns
                hit = existing["HubSpot_Id__c"].astype("str") == str(ext) if has_ext else None
                if hit is not None and hit.any():  # upsert on the external id (DEAL-5)
                    new_id = str(existing.loc[hit, "Id"].iloc[0])
                    set_fields(_SF_TABLE[obj], "Id", new_id, fields)
                else:
                    new_id = ids.new(obj[:3].upper())
                    add_row(
                        _SF_TABLE[obj],
                        {
                            **{k: ids.resolve(v) for k, v in fields.items()},
                            "Id": new_id,
                            "CreatedDate": when,
                            "LastModifiedDate": when,
                            "SystemModstamp": when,
                            "IsDeleted": False,
                            "_deleted": False,
                        },
                    )
                ids.refs[f"@{obj}:{row['source_id']}"] = new_id
                if row["source_id"] and obj in _HS_LINK_PROPERTY and obj != "OpportunityContactRole":
                    hs_obj = (
                        "companies" if obj == "Account" else "deals" if obj == "Opportunity" else "contacts"
                    )
                    set_fields(_HS_TABLE[hs_obj], "id", row["source_id"], {_HS_LINK_PROPERTY[obj]: new_id})
                    new_links.append((obj, new_id, row["source_id"]))
            else:
                new_id = str(900_000 + next(ids.counter))  # HubSpot ids are numeric and increasing
                modified = _HS_MODIFIED[obj]
                created = fields.pop("createdate", when)
                add_row(
                    _HS_TABLE[obj],
                    {
                        **{k: ids.resolve(v) for k, v in fields.items()},
                        "id": new_id,
                        "createdate": created,
                        modified: when,
                        "_deleted": False,
                    },
                )
                ids.refs[f"@{obj}:{row['source_id']}"] = new_id
                sf_obj = next((o for o, p in _HS_LINK_PROPERTY.items() if p in fields), None)
                if sf_obj is not None and row["source_id"]:
                    set_fields(_SF_TABLE[sf_obj], "Id", row["source_id"], {"HubSpot_Id__c": new_id})
                    new_links.append((sf_obj, row["source_id"], new_id))

    # 3. Links, updates, deletes, associations, contact roles.
    for row in rows(plan, action="link"):
        if row["object"] == "pipelines":
            continue
        if row["target"] == "hubspot":
            set_fields(_HS_TABLE[row["object"]], "id", row["target_id"], row["fields"])
        else:
            set_fields(_SF_TABLE[row["object"]], "Id", row["target_id"], row["fields"])
            new_links.append((row["object"], row["target_id"], row["source_id"]))
    for row in rows(plan, action="update"):
        if row["object"] == "pipelines":
            continue
        target_id = ids.resolve(row["target_id"])
        if row["target"] == "hubspot":
            set_fields(_HS_TABLE[row["object"]], "id", target_id, row["fields"])
        else:
            set_fields(_SF_TABLE[row["object"]], "Id", target_id, row["fields"])
    for row in rows(plan, action="delete"):
        table = _HS_TABLE[row["object"]] if row["target"] == "hubspot" else _SF_TABLE[row["object"]]
        key = "id" if row["target"] == "hubspot" else "Id"
        frame = frames[table]
        frame.loc[frame[key].astype("str") == row["target_id"], "_deleted"] = True
    for row in rows(plan, action="associate"):
        f = {k: ids.resolve(v) for k, v in row["fields"].items()}
        frames["hs_association"] = pd.concat(
            [frames["hs_association"], pd.DataFrame([{**f, "_deleted": False}])], ignore_index=True
        )

    link_frame = pd.concat([link_table, links(*new_links)], ignore_index=True)
    cleared = result.cleared_links
    if not cleared.empty:
        drop = link_frame.set_index(["object", "sf_id", "hs_id"]).index.isin(
            cleared.set_index(["object", "sf_id", "hs_id"]).index
        )
        link_frame = link_frame[~drop]
    link_frame = link_frame.drop_duplicates(["object", "sf_id"], keep="last").reset_index(drop=True)

    snap = (
        inputs.snapshot.copy()
        if not inputs.snapshot.empty
        else pd.DataFrame(columns=list(result.snapshot.columns))
    )
    if not result.snapshot.empty:
        snap = pd.concat([snap, result.snapshot], ignore_index=True).drop_duplicates(
            ["object", "sf_id", "sf_field"], keep="last"
        )
    return replace(inputs, links=link_frame, snapshot=snap.reset_index(drop=True), **frames)
