"""HubSpot emulator: v4 associations (per record and batch) through the real hubspot-api-client.

An association is one edge seen from both sides with HubSpot's reverse type ids (contact→company
279/1 is company→contact 280/2, deal→contact 3 is contact→deal 4, deal→company 341/5 is
company→deal 342/6). Changing edges moves both records' last-modified time, so incremental syncs
see association changes (DEAL-6, DEAL-7); archiving a record drops its edges from reads.
"""

from __future__ import annotations

import json
from typing import Any

import hubspot
import pytest
from crm_sandbox.hubspot.testing import client_fixtures, hubspot_sandbox
from hubspot.crm.associations.v4 import (
    ApiException as AssociationsApiException,
)
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiArchive,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicAssociationMultiArchive,
    PublicAssociationMultiPost,
    PublicDefaultAssociationMultiPost,
    PublicFetchAssociationsBatchRequest,
    PublicObjectId,
)
from hubspot.crm.associations.v4.exceptions import NotFoundException as AssociationNotFound

STAMP = "2024-01-01T00:00:00.000Z"


def rec(rid: str, **props: str) -> dict[str, Any]:
    return {"id": rid, "properties": props, "createdAt": STAMP, "updatedAt": STAMP}


SCENARIO: dict[str, Any] = {
    "hubspot": {
        "companies": [rec("11", name="Acme"), rec("12", name="Globex"), rec("13", name="Initech")],
        "contacts": [
            rec("21", email="ann@acme.com"),
            rec("22", email="bob@acme.com"),
            rec("23", email="cy@x.io"),
        ],
        "deals": [rec("31", dealname="Big", dealstage="appointmentscheduled")],
        "associations": [
            {"from": ["contacts", "21"], "to": ["companies", "11"], "typeId": 1},
            {"from": ["contacts", "22"], "to": ["companies", "11"], "typeId": 279},
            {"from": ["deals", "31"], "to": ["contacts", "21"], "typeId": 3},
            {"from": ["deals", "31"], "to": ["companies", "11"], "typeId": 5},
        ],
    }
}


base_url, client = client_fixtures(SCENARIO)


def edges(client: hubspot.HubSpot, from_type: str, from_id: str, to_type: str) -> dict[str, list[int]]:
    page = client.crm.associations.v4.basic_api.get_page(from_type, from_id, to_type)
    return {r.to_object_id: sorted(t.type_id for t in r.association_types) for r in page.results}


def spec(type_id: int) -> AssociationSpec:
    return AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=type_id)


def labelled(from_id: str, to_ids: list[str], type_id: int) -> BatchInputPublicAssociationMultiPost:
    """A v4 batch body pairing ``from_id`` with each of ``to_ids`` under one HubSpot-defined type."""
    return BatchInputPublicAssociationMultiPost(
        inputs=[
            PublicAssociationMultiPost(
                _from=PublicObjectId(id=from_id), to=PublicObjectId(id=to_id), types=[spec(type_id)]
            )
            for to_id in to_ids
        ]
    )


def test_edges_are_visible_from_both_sides_with_reverse_types(client: hubspot.HubSpot) -> None:
    assert edges(client, "contacts", "21", "companies") == {"11": [1, 279]}
    assert edges(client, "companies", "11", "contacts") == {"21": [2, 280], "22": [280]}
    assert edges(client, "contacts", "21", "deals") == {"31": [4]}
    assert edges(client, "companies", "11", "deals") == {"31": [6, 342]}
    page = client.crm.associations.v4.basic_api.get_page("contacts", "21", "companies")
    labels = {t.type_id: t.label for t in page.results[0].association_types}
    assert labels == {1: "Primary", 279: None}
    assert {t.category for t in page.results[0].association_types} == {"HUBSPOT_DEFINED"}


def test_v3_reads_can_include_associations(client: hubspot.HubSpot) -> None:
    contact = client.crm.contacts.basic_api.get_by_id("21", associations=["companies", "deals"])
    companies = {(a.id, a.type) for a in contact.associations["companies"].results}
    assert companies == {("11", "contact_to_company"), ("11", "contact_to_company_unlabeled")}
    assert [(a.id, a.type) for a in contact.associations["deals"].results] == [("31", "contact_to_deal")]
    primary = client.crm.contacts.basic_api.get_by_id("21", properties=["associatedcompanyid"])
    assert primary.properties["associatedcompanyid"] == "11"


def test_create_default_association(client: hubspot.HubSpot) -> None:
    before = client.crm.contacts.basic_api.get_by_id("23").updated_at
    response = client.crm.associations.v4.basic_api.create_default("contacts", "23", "companies", "12")
    assert response.status == "COMPLETE"
    pairs = {(r._from.id, r.to.id, r.association_spec.association_type_id) for r in response.results}
    assert pairs == {("23", "12", 279), ("12", "23", 280)}
    assert edges(client, "companies", "12", "contacts") == {"23": [280]}
    assert client.crm.contacts.basic_api.get_by_id("23").updated_at > before
    assert client.crm.companies.basic_api.get_by_id("12").updated_at > before


def test_labeled_primary_replaces_previous_primary(client: hubspot.HubSpot) -> None:
    created = client.crm.associations.v4.basic_api.create("contacts", "21", "companies", "12", [spec(1)])
    assert created.labels == ["Primary"]
    assert (created.from_object_type_id, created.to_object_type_id) == ("0-1", "0-2")
    assert edges(client, "contacts", "21", "companies") == {"11": [279], "12": [1, 279]}
    contact = client.crm.contacts.basic_api.get_by_id("21", properties=["associatedcompanyid"])
    assert contact.properties["associatedcompanyid"] == "12"


def test_invalid_association_types_and_missing_records(client: hubspot.HubSpot) -> None:
    api = client.crm.associations.v4.basic_api
    with pytest.raises(AssociationsApiException) as caught:
        api.create("contacts", "21", "companies", "12", [spec(3)])  # 3 is deal->contact
    assert caught.value.status == 400
    assert json.loads(caught.value.body)["category"] == "VALIDATION_ERROR"
    with pytest.raises(AssociationNotFound):
        api.create_default("contacts", "21", "companies", "99999")


def test_delete_removes_the_edge_from_both_sides(client: hubspot.HubSpot) -> None:
    client.crm.associations.v4.basic_api.archive("companies", "11", "contacts", "21")
    assert edges(client, "contacts", "21", "companies") == {}
    assert edges(client, "companies", "11", "contacts") == {"22": [280]}
    contact = client.crm.contacts.basic_api.get_by_id("21", properties=["associatedcompanyid"])
    assert contact.properties["associatedcompanyid"] is None


def test_archiving_a_record_drops_its_associations(client: hubspot.HubSpot) -> None:
    client.crm.companies.basic_api.archive("11")
    assert edges(client, "contacts", "22", "companies") == {}
    assert edges(client, "deals", "31", "companies") == {}
    assert edges(client, "deals", "31", "contacts") == {"21": [3]}


def test_per_record_paging(client: hubspot.HubSpot) -> None:
    api = client.crm.associations.v4.basic_api
    first = api.get_page("companies", "11", "contacts", limit=1)
    assert [r.to_object_id for r in first.results] == ["21"]
    second = api.get_page("companies", "11", "contacts", after=first.paging.next.after, limit=1)
    assert [r.to_object_id for r in second.results] == ["22"]
    assert second.paging is None


def test_batch_read_reports_records_without_associations(client: hubspot.HubSpot) -> None:
    response = client.crm.associations.v4.batch_api.get_page(
        "contacts",
        "companies",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=i) for i in ("21", "22", "23")]
        ),
    )
    got = {
        r._from.id: {t.to_object_id: sorted(x.type_id for x in t.association_types) for t in r.to}
        for r in response.results
    }
    assert got == {"21": {"11": [1, 279]}, "22": {"11": [279]}}
    assert [(e.category, e.sub_category, e.context["fromObjectId"]) for e in response.errors] == [
        ("OBJECT_NOT_FOUND", "crm.associations.NO_ASSOCIATIONS_FOUND", ["23"])
    ]


def test_batch_create_and_archive(client: hubspot.HubSpot) -> None:
    batch = client.crm.associations.v4.batch_api
    created = batch.create("deals", "contacts", labelled("31", ["22", "23"], 3))
    assert sorted(r.to_object_id for r in created.results) == ["22", "23"]
    assert edges(client, "deals", "31", "contacts") == {"21": [3], "22": [3], "23": [3]}
    batch.archive(
        "deals",
        "contacts",
        BatchInputPublicAssociationMultiArchive(
            inputs=[
                PublicAssociationMultiArchive(_from=PublicObjectId(id="31"), to=[PublicObjectId(id="21")])
            ]
        ),
    )
    assert edges(client, "contacts", "21", "deals") == {}


def test_batch_create_with_a_bad_input_is_207(client: hubspot.HubSpot) -> None:
    response, status, _ = client.crm.associations.v4.batch_api.create_with_http_info(
        "deals", "contacts", labelled("31", ["22", "404"], 3)
    )
    assert status == 207
    assert [r.to_object_id for r in response.results] == ["22"]
    assert [e.context["toObjectId"] for e in response.errors] == [["404"]]


def test_batch_associate_default(client: hubspot.HubSpot) -> None:
    response = client.crm.associations.v4.batch_api.create_default(
        "deals",
        "companies",
        BatchInputPublicDefaultAssociationMultiPost(
            inputs=[
                PublicDefaultAssociationMultiPost(_from=PublicObjectId(id="31"), to=PublicObjectId(id="13"))
            ]
        ),
    )
    assert {(r._from.id, r.to.id, r.association_spec.association_type_id) for r in response.results} == {
        ("31", "13", 341),
        ("13", "31", 342),
    }
    assert edges(client, "companies", "13", "deals") == {"31": [342]}


def test_batch_limits(client: hubspot.HubSpot) -> None:
    with pytest.raises(AssociationsApiException) as caught:
        client.crm.associations.v4.batch_api.get_page(
            "contacts",
            "companies",
            BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[PublicFetchAssociationsBatchRequest(id=str(i)) for i in range(1001)]
            ),
        )
    assert caught.value.status == 400


def test_archiving_a_label_keeps_the_unlabeled_edge(client: hubspot.HubSpot) -> None:
    client.crm.associations.v4.batch_api.archive_labels("contacts", "companies", labelled("21", ["11"], 1))
    assert edges(client, "contacts", "21", "companies") == {"11": [279]}
    assert edges(client, "companies", "11", "contacts") == {"21": [280], "22": [280]}


def test_auto_created_companies_from_contact_email_domains() -> None:
    """HubSpot's "create and associate companies" setting: the source of ACC-4's first clause."""
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate

    seeded = {"hubspot": {"companies": [rec("11", name="Acme", domain="acme.com")]}}
    with hubspot_sandbox(seeded, auto_create_companies=True) as url:
        client = hubspot.HubSpot(access_token="test-token", host=url)
        create = client.crm.contacts.basic_api.create
        known = create(SimplePublicObjectInputForCreate(properties={"email": "kim@acme.com"}))
        fresh = create(SimplePublicObjectInputForCreate(properties={"email": "lee@umbrella.io"}))
        free = create(SimplePublicObjectInputForCreate(properties={"email": "max@gmail.com"}))
        assert edges(client, "contacts", known.id, "companies") == {"11": [1, 279]}
        (company_id,) = edges(client, "contacts", fresh.id, "companies")
        company = client.crm.companies.basic_api.get_by_id(
            company_id, properties=["domain", "hs_object_source"]
        )
        assert company.properties["domain"] == "umbrella.io"
        assert company.properties["hs_object_source"] == "AUTOMATIC_COMPANY_CREATION"
        assert edges(client, "contacts", free.id, "companies") == {}
