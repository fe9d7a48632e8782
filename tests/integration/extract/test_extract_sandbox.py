"""Extraction against the sandbox through the real clients: SYNC-1, SYNC-4 and SYNC-5 end to end.

Each test drives the task functions the DAG calls (``crm_sync.tasks``) against both emulators
and inspects staging. Most run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from crm_sync import staging
from crm_sync.catalog import HUBSPOT_ASSOCIATIONS
from crm_sync.connections import CrmConnectionError
from crm_sync.tasks import commit_watermarks, extract_hubspot, extract_salesforce, refresh_links

from .support import (
    BAD_HS_CONTACT,
    DATA_TABLES,
    Sandbox,
    StagingDbs,
    base_scenario,
    dump_tables,
    extract_config,
    extract_everything,
    without_run_columns,
)

SF_TABLES = {
    "User": "sf_user",
    "RecordType": "sf_record_type",
    "OpportunityStage": "sf_opportunity_stage",
    "Account": "sf_account",
    "Contact": "sf_contact",
    "Lead": "sf_lead",
    "Opportunity": "sf_opportunity",
    "OpportunityContactRole": "sf_opportunity_contact_role",
}
HS_TABLES = {"owners": "hs_owner", "companies": "hs_company", "contacts": "hs_contact", "deals": "hs_deal"}


def count(engine: sa.Engine, table: str, where: str = "") -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"select count(*) from {table} {where}")).scalar_one())


def live_pairs(engine: sa.Engine) -> set[tuple[str, str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select from_type, from_id, to_type, to_id from hs_association where not _deleted")
        )
        return {tuple(r) for r in rows}  # type: ignore[misc]


def scenario_pairs(scenario: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """The scenario's associations, each in the direction the catalog stores it."""
    pairs = set()
    for a in scenario["hubspot"]["associations"]:
        (f, fid), (t, tid) = a["from"], a["to"]
        if (f, t) not in HUBSPOT_ASSOCIATIONS:
            (f, fid), (t, tid) = (t, tid), (f, fid)
        pairs.add((f, str(fid), t, str(tid)))
    return pairs


def test_first_run_loads_everything_and_quarantines_malformed_records(
    sandbox_for: Callable[..., Sandbox], staging_dbs: StagingDbs
) -> None:
    """SYNC-1 initial load; SYNC-5: malformed records land in quarantine, the rest proceeds."""
    scenario = base_scenario()
    box = sandbox_for(scenario)
    engine = staging_dbs.use()
    results = extract_everything("run-1")

    for obj, table in SF_TABLES.items():
        quarantined = 1 if obj in ("Contact", "Lead") else 0  # an unknown picklist value is staged
        assert count(engine, table) == len(scenario["salesforce"][obj]) - quarantined, obj
        assert results[f"salesforce.{obj}"]["quarantined"] == quarantined
        assert results[f"salesforce.{obj}"]["table"] == table
    for obj, table in HS_TABLES.items():
        quarantined = 1 if obj == "contacts" else 0
        assert count(engine, table) == len(scenario["hubspot"][obj]) - quarantined, obj
    pipelines = box.hubspot().crm.pipelines.pipelines_api.get_all("deals").results
    assert count(engine, "hs_pipeline") == len(pipelines)
    assert count(engine, "hs_pipeline_stage") == sum(len(p.stages) for p in pipelines)
    assert live_pairs(engine) == scenario_pairs(scenario)
    assert count(engine, "hs_association", "where type_id = 1") == sum(
        1 for a in scenario["hubspot"]["associations"] if a.get("typeId") == 1
    )
    deleted_opps = sum(1 for r in scenario["salesforce"]["Opportunity"] if r.get("IsDeleted"))
    assert count(engine, "sf_opportunity", "where _deleted") == deleted_opps
    assert results["salesforce.Opportunity"]["deleted"] == deleted_opps

    quarantine = staging.read_frame(engine, "quarantine")
    by_rule = {(r.system, r.object, r.rule) for r in quarantine.itertuples()}
    assert by_rule == {
        ("salesforce", "Contact", "SYNC-5:missing_required"),
        ("salesforce", "Lead", "SYNC-5:oversized_text"),
        ("hubspot", "contacts", "SYNC-5:oversized_text"),
    }
    hs_bad = quarantine[quarantine.object == "contacts"].iloc[0]
    assert hs_bad.record_id == str(BAD_HS_CONTACT["id"])
    assert json.loads(hs_bad.payload)["email"].startswith("xxxx")

    # XCom stays small (names and counts), every object is in the sync log, watermarks wait.
    assert all(len(json.dumps(r)) < 2_000 for r in results.values())
    log = staging.read_frame(engine, "sync_log")
    assert set(log.object) == {*results, "hubspot.pipeline_stages"}
    assert staging.read_watermark(engine, "salesforce.Account").watermark is None
    promoted = commit_watermarks("run-1")
    assert promoted["salesforce.Account"] == results["salesforce.Account"]["watermark"]
    assert set(promoted) == {k for k, r in results.items() if r["watermark"]}


def test_second_run_without_changes_reads_zero_changed_rows_and_writes_nothing(
    sandbox_for: Callable[..., Sandbox], staging_dbs: StagingDbs
) -> None:
    """SYNC-4: the same data read again leaves staging byte-identical (``_extracted_at`` too)."""
    sandbox_for(base_scenario())
    engine = staging_dbs.use()
    extract_everything("run-1")
    commit_watermarks("run-1")
    refresh_links("run-1")
    before = dump_tables(engine)

    second = extract_everything("run-2")
    commit_watermarks("run-2")
    refresh_links("run-2")

    assert {k: r["changed"] for k, r in second.items()} == dict.fromkeys(second, 0)
    assert {k: r["deleted"] for k, r in second.items()} == dict.fromkeys(second, 0)
    assert all(r["mode"] in ("rest", "search", "full") for r in second.values())  # incremental now
    after = dump_tables(engine)
    assert after == before
    for table in DATA_TABLES:
        assert after[table] == before[table], table


def test_changes_and_deletes_made_through_the_clients_show_up_exactly_once(
    sandbox_for: Callable[..., Sandbox], staging_dbs: StagingDbs
) -> None:
    """SYNC-1: updates, creates, deletes and removed associations arrive once, then never again."""
    scenario = base_scenario()
    box = sandbox_for(scenario)
    engine = staging_dbs.use()
    extract_everything("run-1")
    commit_watermarks("run-1")

    sf = box.salesforce()
    account_id = scenario["salesforce"]["Account"][0]["Id"]
    contact_id = scenario["salesforce"]["Contact"][0]["Id"]
    sf.Account.update(account_id, {"Name": "Renamed Account"})
    sf.Contact.delete(contact_id)
    lead_id = sf.Lead.create({"LastName": "Newlead", "Company": "NewCo", "Email": "new@newco.example"})["id"]

    hs = box.hubspot()
    hs_contact = next(
        c for c in scenario["hubspot"]["contacts"] if "id" in c and c["id"] != BAD_HS_CONTACT["id"]
    )
    hs.crm.contacts.basic_api.update(str(hs_contact["id"]), {"properties": {"jobtitle": "Chief Tester"}})
    deal_id = str(scenario["hubspot"]["deals"][0]["id"])
    hs.crm.deals.basic_api.archive(deal_id)
    edge = next(a for a in scenario["hubspot"]["associations"] if a["from"][0] == "contacts")
    hs.crm.associations.v4.basic_api.archive(
        "contacts", str(edge["from"][1]), "companies", str(edge["to"][1])
    )
    company_id = hs.crm.companies.basic_api.create({"properties": {"name": "Brand New Co"}}).id

    second = extract_everything("run-2")
    commit_watermarks("run-2")

    assert (second["salesforce.Account"]["changed"], second["salesforce.Account"]["updated"]) == (1, 1)
    assert (second["salesforce.Contact"]["changed"], second["salesforce.Contact"]["deleted"]) == (1, 1)
    assert (second["salesforce.Lead"]["changed"], second["salesforce.Lead"]["created"]) == (1, 1)
    assert second["hubspot.companies"]["created"] == 1
    assert second["hubspot.deals"]["deleted"] == 1
    assert second["hubspot.contacts"]["updated"] >= 1
    assert second["hubspot.contacts"]["associations"]["contacts->companies"]["removed"] >= 1
    # Salesforce deletes a contact's roles with it: they arrive as deletes too.
    roles = sum(1 for r in scenario["salesforce"]["OpportunityContactRole"] if r["ContactId"] == contact_id)
    ocr = second["salesforce.OpportunityContactRole"]
    assert (ocr["changed"], ocr["deleted"]) == (roles, roles)
    for key in ("salesforce.User", "salesforce.Opportunity", "hubspot.owners", "hubspot.pipelines"):
        assert second[key]["changed"] == 0, key

    accounts = staging.read_frame(engine, "sf_account").set_index("Id")
    assert accounts.loc[account_id, "Name"] == "Renamed Account"
    assert accounts.loc[account_id, "_run_id"] == "run-2"
    contacts = staging.read_frame(engine, "sf_contact").set_index("Id")
    assert bool(contacts.loc[contact_id, "_deleted"]) is True
    assert lead_id in set(staging.read_frame(engine, "sf_lead").Id)
    hs_contacts = staging.read_frame(engine, "hs_contact").set_index("id")
    assert hs_contacts.loc[str(hs_contact["id"]), "jobtitle"] == "Chief Tester"
    deals = staging.read_frame(engine, "hs_deal").set_index("id")
    assert bool(deals.loc[deal_id, "_deleted"]) is True
    assert company_id in set(staging.read_frame(engine, "hs_company").id)
    edges = staging.read_frame(engine, "hs_association")
    removed = edges[(edges.from_id == str(edge["from"][1])) & (edges.to_id == str(edge["to"][1]))]
    assert not removed.empty
    assert removed._deleted.all()
    deal_edges = edges[(edges.from_type == "deals") & (edges.from_id == deal_id)]
    assert deal_edges._deleted.all()  # an archived deal keeps no live association

    before = dump_tables(engine)
    third = extract_everything("run-3")
    assert {k: r["changed"] for k, r in third.items()} == dict.fromkeys(third, 0)
    assert dump_tables(engine) == before


@pytest.mark.slow
def test_faults_mid_extraction_are_retried_and_end_state_equals_a_fault_free_run(
    sandbox_for: Callable[..., Sandbox], staging_dbs: StagingDbs
) -> None:
    """429 with Retry-After, 500 and a response slower than the client timeout are all retried."""
    box = sandbox_for(base_scenario(accounts=80))  # 240 contacts: two REST pages of 200
    box.connect(sf_extra={"timeout": 0.5, "batch_size": 200}, hs_extra={"timeout": 0.5})
    clean = staging_dbs.use("fault_free")
    extract_everything("run-1")
    expected = without_run_columns(clean)

    box.faults(
        "salesforce",
        [
            {"method": "GET", "path": r"/queryAll/01g", "status": 429, "retry_after": 1, "count": 1},
            {"method": "GET", "path": r"/sobjects/Lead/describe", "status": 500, "count": 1},
            {"method": "GET", "path": r"/queryAll/01g", "delay": 1.2, "count": 1},
        ],
    )
    box.faults(
        "hubspot",
        [
            {"method": "POST", "path": r"/associations/contacts/companies/batch/read", "status": 429,
             "retry_after": 1, "count": 1},
            {"method": "GET", "path": r"/crm/v3/objects/deals$", "status": 500, "count": 2},
            {"method": "POST", "path": r"/associations/deals/contacts/batch/read", "delay": 1.2, "count": 1},
        ],
    )  # fmt: skip
    faulty = staging_dbs.use("with_faults")
    results = extract_everything("run-1")

    assert box.stats("salesforce")["faults_pending"] == 0
    assert box.stats("hubspot")["faults_pending"] == 0
    assert box.stats("salesforce")["faults_applied"] == 3
    assert box.stats("hubspot")["faults_applied"] == 4
    assert results["salesforce.Contact"]["api_calls"] >= 2  # the Contact read spans several pages
    assert without_run_columns(faulty) == expected


def test_bulk_api_above_the_threshold_stages_what_rest_stages(
    sandbox_for: Callable[..., Sandbox], staging_dbs: StagingDbs
) -> None:
    """Large reads switch to Bulk API 2.0 automatically; the staged rows are identical."""
    sandbox_for(base_scenario())
    rest_db = staging_dbs.use("rest")
    rest = {o: extract_salesforce(o, run_id="r", config=extract_config()) for o in SF_TABLES}
    bulk_db = staging_dbs.use("bulk")
    bulk = {o: extract_salesforce(o, run_id="r", config=extract_config(bulk_threshold=50)) for o in SF_TABLES}
    assert {o: r["mode"] for o, r in bulk.items() if r["mode"] == "bulk"} == {
        "Contact": "bulk", "Opportunity": "bulk", "OpportunityContactRole": "bulk",
    }  # fmt: skip
    assert {o: r["read"] for o, r in bulk.items()} == {o: r["read"] for o, r in rest.items()}
    tables = tuple(SF_TABLES.values())
    assert without_run_columns(bulk_db, tables) == without_run_columns(rest_db, tables)


def test_links_are_derived_from_both_crms_link_fields(
    sandbox_for: Callable[..., Sandbox], staging_dbs: StagingDbs
) -> None:
    scenario = base_scenario()
    sandbox_for(scenario)
    engine = staging_dbs.use()
    extract_everything("run-1")
    created = refresh_links("run-1")
    links = staging.read_frame(engine, "sync_link")
    linked_companies = {
        str(c["id"]) for c in scenario["hubspot"]["companies"] if c["properties"].get("salesforceaccountid")
    }
    assert linked_companies <= set(links[links.object == "Account"].hs_id)
    assert sum(created.values()) == len(links)
    assert refresh_links("run-2") == dict.fromkeys(created, 0)


def test_wrong_session_or_token_fails_naming_the_connection_and_the_fix(
    sandbox_for: Callable[..., Sandbox], sqlite_dbs: StagingDbs
) -> None:
    scenario = {**base_scenario(accounts=2), "tokens": ["the-right-one"]}
    box = sandbox_for(scenario)
    sqlite_dbs.use()
    box.connect(session_id="expired-session", token="wrong-token")
    with pytest.raises(CrmConnectionError) as sf_error:
        extract_salesforce("Account", run_id="r", config=extract_config())
    assert "Salesforce connection 'salesforce_default'" in str(sf_error.value)
    assert "session is expired or invalid" in str(sf_error.value)
    assert "password (or extra.session_id)" in str(sf_error.value)
    with pytest.raises(CrmConnectionError) as hs_error:
        extract_hubspot("contacts", run_id="r", config=extract_config())
    assert "HubSpot connection 'hubspot_default'" in str(hs_error.value)
    assert "rejected the access token" in str(hs_error.value)
    box.connect(session_id="the-right-one", token="the-right-one")
    assert extract_hubspot("owners", run_id="r", config=extract_config())["read"] > 0


def test_unreachable_hosts_fail_naming_the_connection(
    sandbox_for: Callable[..., Sandbox], sqlite_dbs: StagingDbs
) -> None:
    box = sandbox_for(base_scenario(accounts=2))
    sqlite_dbs.use()
    port = box.endpoints.hubspot_port
    box.endpoints = type(box.endpoints)(salesforce_port=1, hubspot_port=1, ca_bundle=box.endpoints.ca_bundle)
    box.connect(sf_extra={"max_retries": 0}, hs_extra={"max_retries": 0})
    with pytest.raises(CrmConnectionError, match=r"Salesforce connection 'salesforce_default' cannot reach"):
        extract_salesforce("Account", run_id="r", config=extract_config())
    with pytest.raises(
        CrmConnectionError, match=r"HubSpot connection 'hubspot_default' cannot reach the API"
    ):
        extract_hubspot("owners", run_id="r", config=extract_config())
    assert port != 1


def test_a_quarantined_record_is_retried_and_resolved_once_fixed(
    sandbox_for: Callable[..., Sandbox], staging_dbs: StagingDbs
) -> None:
    """SYNC-5: quarantined records are re-read on later runs; a clean read resolves them."""
    scenario = base_scenario(accounts=3)
    box = sandbox_for(scenario)
    engine = staging_dbs.use()
    extract_salesforce("Lead", run_id="run-1", config=extract_config())
    commit_watermarks("run-1")
    second = extract_salesforce("Lead", run_id="run-2", config=extract_config())
    row = staging.read_frame(engine, "quarantine").iloc[0]
    assert (row.rule, row.attempts, row.last_run_id) == ("SYNC-5:oversized_text", 2, "run-2")
    assert second["quarantined"] == 1
    bad_id = row.record_id
    box.salesforce().Lead.update(bad_id, {"Title": "Short title"})
    extract_salesforce("Lead", run_id="run-3", config=extract_config())
    row = staging.read_frame(engine, "quarantine").iloc[0]
    assert row.resolved_at is not None
    assert staging.read_frame(engine, "sf_lead").set_index("Id").loc[bad_id, "Title"] == "Short title"


def test_a_run_reads_only_up_to_its_data_interval_end(
    sandbox_for: Callable[..., Sandbox], staging_dbs: StagingDbs
) -> None:
    """SYNC-1: the interval end bounds the read; later changes wait for the next interval."""

    def stamp(day: int) -> dict[str, str]:
        value = f"2025-01-0{day}T00:00:00.000+0000"
        return {"CreatedDate": value, "LastModifiedDate": value, "SystemModstamp": value}

    scenario = {
        "salesforce": {"Account": [{"Name": "Early", **stamp(1)}, {"Name": "Late", **stamp(3)}]},
        "hubspot": {
            "companies": [
                {"id": 1, "properties": {"name": "Early"}, "updatedAt": "2025-01-01T00:00:00Z"},
                {"id": 2, "properties": {"name": "Late"}, "updatedAt": "2025-01-03T00:00:00Z"},
            ]
        },
    }
    sandbox_for(scenario)
    engine = staging_dbs.use()
    staging.ensure_schema(engine)
    staging.set_pending_watermark(engine, "hubspot.companies", datetime(2024, 12, 1, tzinfo=UTC), "setup")
    commit_watermarks("setup")
    config = extract_config()

    sf1 = extract_salesforce(
        "Account", run_id="run-1", data_interval_end="2025-01-02T00:00:00Z", config=config
    )
    hs1 = extract_hubspot(
        "companies", run_id="run-1", data_interval_end=datetime(2025, 1, 2, tzinfo=UTC), config=config
    )
    assert (sf1["read"], sf1["watermark"]) == (1, "2025-01-01T00:00:00+00:00")
    assert (hs1["mode"], hs1["read"], hs1["watermark"]) == ("search", 1, "2025-01-01T00:00:00+00:00")
    assert set(staging.read_frame(engine, "hs_company").name) == {"Early"}
    commit_watermarks("run-1")

    sf2 = extract_salesforce(
        "Account", run_id="run-2", data_interval_end="2025-01-04T00:00:00Z", config=config
    )
    hs2 = extract_hubspot(
        "companies", run_id="run-2", data_interval_end="2025-01-04T00:00:00Z", config=config
    )
    assert (sf2["created"], hs2["created"]) == (1, 1)
    assert set(staging.read_frame(engine, "sf_account").Name) == {"Early", "Late"}
