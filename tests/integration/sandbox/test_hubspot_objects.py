"""HubSpot emulator: CRM v3 object endpoints (basic and batch) through the real hubspot-api-client.

Every call goes over HTTP on 127.0.0.1 through ``hubspot.HubSpot(...)``; errors are asserted as
the client's real ``ApiException`` subclasses with HubSpot's status and JSON body, since that is
what the sync's loaders see in production.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import hubspot
import pytest
from crm_sandbox.hubspot.testing import client_fixtures
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import NotFoundException
from hubspot.crm.deals import ApiException as DealsApiException
from hubspot.crm.deals import SimplePublicObjectInput as DealInput
from hubspot.crm.deals import SimplePublicObjectInputForCreate as DealCreate
from hubspot.crm.properties import PropertyCreate

SCENARIO: dict[str, Any] = {
    "hubspot": {
        "owners": [
            {
                "id": "501",
                "email": "ada@example.com",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "userId": 9001,
            },
            {
                "id": "502",
                "email": "gone@example.com",
                "firstName": "Gone",
                "lastName": "Away",
                "archived": True,
            },
        ],
        "companies": [{"id": "101", "properties": {"name": "Acme", "domain": "acme.com"}}],
        "contacts": [
            {
                "id": "201",
                "properties": {
                    "email": "Ann@Acme.com",
                    "firstname": "Ann",
                    "lastname": "Lee",
                    "hubspot_owner_id": "501",
                },
                "createdAt": "2024-02-01T00:00:00Z",
                "updatedAt": "2024-02-02T10:30:00.250Z",
            },
            {"id": "202", "properties": {"email": "bob@acme.com", "firstname": "Bob"}},
            {"id": "203", "properties": {"email": "old@acme.com"}, "archived": True},
            {"id": "204", "properties": {"firstname": "NoEmail"}},
        ],
        "pipelines": {
            "deals": [
                {
                    "id": "default",
                    "label": "Sales Pipeline",
                    "stages": [
                        {
                            "id": "appointmentscheduled",
                            "label": "Appointment",
                            "metadata": {"probability": 0.2},
                        },
                        {
                            "id": "closedwon",
                            "label": "Won",
                            "metadata": {"probability": 1.0, "isClosed": True},
                        },
                    ],
                },
                {
                    "id": "7001",
                    "label": "Salesforce - Standard pipeline",
                    "stages": [
                        {"id": "7002", "label": "Prospecting", "metadata": {"probability": "0.1"}},
                        {
                            "id": "7003",
                            "label": "Closed Lost",
                            "metadata": {"probability": "0.0", "isClosed": "true"},
                        },
                    ],
                },
            ]
        },
        "deals": [
            {"id": "301", "properties": {"dealname": "Big", "amount": "1000", "dealstage": "closedwon"}}
        ],
    }
}


base_url, client = client_fixtures(SCENARIO)


def body(exc: ApiException | DealsApiException) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(exc.body)
    return parsed


def problems(exc: ApiException | DealsApiException) -> list[dict[str, Any]]:
    """The property problems HubSpot embeds as JSON inside a VALIDATION_ERROR message."""
    message = body(exc)["message"]
    prefix = "Property values were not valid: "
    assert message.startswith(prefix), message
    listed: list[dict[str, Any]] = json.loads(message[len(prefix) :])
    return listed


ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


# -- single-record reads ----------------------------------------------------------------------------


def test_get_by_id_returns_hubspot_shapes(client: hubspot.HubSpot) -> None:
    contact = client.crm.contacts.basic_api.get_by_id("201")
    assert contact.id == "201"
    assert contact.archived is False
    assert contact.created_at == datetime(2024, 2, 1, tzinfo=UTC)
    props = contact.properties
    assert props["email"] == "ann@acme.com"  # HubSpot stores emails lowercased
    assert props["createdate"] == "2024-02-01T00:00:00.000Z"
    assert props["lastmodifieddate"] == "2024-02-02T10:30:00.250Z"
    assert props["hs_object_id"] == "201"
    assert props["lastname"] == "Lee"
    assert set(props) == {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"}


def test_get_requested_properties_include_empty_ones_as_null(client: hubspot.HubSpot) -> None:
    contact = client.crm.contacts.basic_api.get_by_id(
        "202", properties=["firstname", "jobtitle", "no_such_prop"]
    )
    assert contact.properties["firstname"] == "Bob"
    assert contact.properties["jobtitle"] is None
    assert "no_such_prop" not in contact.properties
    assert contact.properties["hs_object_id"] == "202"


def test_get_by_email_id_property_is_case_insensitive(client: hubspot.HubSpot) -> None:
    contact = client.crm.contacts.basic_api.get_by_id("ANN@acme.com", id_property="email")
    assert contact.id == "201"


def test_get_by_non_unique_property_is_rejected(client: hubspot.HubSpot) -> None:
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.basic_api.get_by_id("Lee", id_property="lastname")
    assert caught.value.status == 400
    assert body(caught.value)["category"] == "VALIDATION_ERROR"


def test_get_unknown_and_archived_ids_are_404(client: hubspot.HubSpot) -> None:
    for ident in ("999999", "203"):
        with pytest.raises(NotFoundException) as caught:
            client.crm.contacts.basic_api.get_by_id(ident)
        assert caught.value.status == 404
        assert body(caught.value)["category"] == "OBJECT_NOT_FOUND"
    archived = client.crm.contacts.basic_api.get_by_id("203", archived=True)
    assert archived.archived is True
    assert archived.archived_at is not None


# -- list ---------------------------------------------------------------------------------------------


def test_list_pages_by_id_and_excludes_archived(client: hubspot.HubSpot) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = client.crm.contacts.basic_api.get_page(limit=2, after=after)
        seen.extend(r.id for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
        assert "after=" in page.paging.next.link
    assert seen == ["201", "202", "204"]


def test_list_archived_returns_only_archived_records(client: hubspot.HubSpot) -> None:
    page = client.crm.contacts.basic_api.get_page(archived=True)
    assert [r.id for r in page.results] == ["203"]
    assert page.results[0].archived is True


def test_list_limit_above_100_is_rejected(client: hubspot.HubSpot) -> None:
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.basic_api.get_page(limit=101)
    assert caught.value.status == 400


# -- create / update / archive --------------------------------------------------------------------


def test_create_contact_returns_201_with_managed_properties(client: hubspot.HubSpot) -> None:
    created = client.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "New@Example.org", "lifecyclestage": "lead"})
    )
    assert created.id.isdigit()
    props = created.properties
    assert props["email"] == "new@example.org"
    assert props["hs_email_domain"] == "example.org"
    assert props["lifecyclestage"] == "lead"
    assert props["hs_object_id"] == created.id
    assert ISO_MS.match(props["createdate"])
    assert props["createdate"] == props["lastmodifieddate"]
    fetched = client.crm.contacts.basic_api.get_by_id("new@example.org", id_property="email")
    assert fetched.id == created.id


def test_duplicate_email_is_409_with_existing_id(client: hubspot.HubSpot) -> None:
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"email": "BOB@acme.com"})
        )
    assert caught.value.status == 409
    error = body(caught.value)
    assert error["category"] == "CONFLICT"
    assert error["message"] == "Contact already exists. Existing ID: 202"
    assert error["correlationId"]


def test_unknown_property_and_bad_option_are_one_400(client: hubspot.HubSpot) -> None:
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(
                properties={"email": "x@y.com", "shoe_size": "9", "lifecyclestage": "vip"}
            )
        )
    assert caught.value.status == 400
    error = body(caught.value)
    assert error["category"] == "VALIDATION_ERROR"
    found = {p["name"]: p["error"] for p in problems(caught.value)}
    assert found == {"shoe_size": "PROPERTY_DOESNT_EXIST", "lifecyclestage": "INVALID_OPTION"}
    assert {e["code"] for e in error["errors"]} == {"PROPERTY_DOESNT_EXIST", "INVALID_OPTION"}
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.get_by_id("x@y.com", id_property="email")


@pytest.mark.parametrize(
    ("props", "name", "code"),
    [
        ({"hubspot_owner_id": "502"}, "hubspot_owner_id", "INVALID_OPTION"),  # deactivated owner
        ({"hubspot_owner_id": "999"}, "hubspot_owner_id", "INVALID_OPTION"),
        ({"email": "not-an-email"}, "email", "INVALID_EMAIL"),
        ({"lastmodifieddate": "2024-01-01"}, "lastmodifieddate", "READ_ONLY_VALUE"),
        ({"hs_object_id": "5"}, "hs_object_id", "READ_ONLY_VALUE"),
        # Deal rollups are calculated by HubSpot from associated deals: read-only, whatever the value.
        ({"num_associated_deals": "many"}, "num_associated_deals", "READ_ONLY_VALUE"),
        ({"total_revenue": "100"}, "total_revenue", "READ_ONLY_VALUE"),
        ({"recent_deal_close_date": "2024-03-02"}, "recent_deal_close_date", "READ_ONLY_VALUE"),
    ],
)
def test_invalid_values_are_rejected_like_hubspot(
    client: hubspot.HubSpot, props: dict[str, str], name: str, code: str
) -> None:
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.basic_api.update("202", SimplePublicObjectInput(properties=props))
    assert caught.value.status == 400
    assert [(p["name"], p["error"]) for p in problems(caught.value)] == [(name, code)]


def test_values_are_normalized_to_hubspot_strings(client: hubspot.HubSpot) -> None:
    updated = client.crm.deals.basic_api.update(
        "301",
        DealInput(
            properties={
                "closedate": "1709251200000",  # epoch millis
                "amount": 1250.5,  # a JSON number
                "hubspot_owner_id": "501",
            }
        ),
    )
    props = updated.properties
    assert props["closedate"] == "2024-03-01T00:00:00.000Z"
    assert props["amount"] == "1250.5"
    assert props["hubspot_owner_id"] == "501"
    bare_date = client.crm.deals.basic_api.update("301", DealInput(properties={"closedate": "2024-03-02"}))
    assert bare_date.properties["closedate"] == "2024-03-02T00:00:00.000Z"


def test_update_bumps_last_modified_and_clearing_removes_value(client: hubspot.HubSpot) -> None:
    before = client.crm.contacts.basic_api.get_by_id("201")
    updated = client.crm.contacts.basic_api.update(
        "201", SimplePublicObjectInput(properties={"firstname": "Anne", "lastname": ""})
    )
    assert updated.updated_at > before.updated_at
    assert updated.properties["firstname"] == "Anne"
    assert "lastname" not in updated.properties
    again = client.crm.contacts.basic_api.get_by_id("201", properties=["lastname"])
    assert again.properties["lastname"] is None


def test_update_with_unchanged_values_keeps_last_modified(client: hubspot.HubSpot) -> None:
    before = client.crm.contacts.basic_api.get_by_id("201")
    client.crm.contacts.basic_api.update("201", SimplePublicObjectInput(properties={"firstname": "Ann"}))
    after = client.crm.contacts.basic_api.get_by_id("201")
    assert after.updated_at == before.updated_at


def test_update_by_email_and_to_a_taken_email(client: hubspot.HubSpot) -> None:
    updated = client.crm.contacts.basic_api.update(
        "bob@acme.com", SimplePublicObjectInput(properties={"jobtitle": "CTO"}), id_property="email"
    )
    assert updated.id == "202"
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.basic_api.update(
            "202", SimplePublicObjectInput(properties={"email": "ann@acme.com"})
        )
    assert caught.value.status == 409
    assert body(caught.value)["message"] == "Contact already exists. Existing ID: 201"


def test_update_unknown_record_is_404(client: hubspot.HubSpot) -> None:
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.update("424242", SimplePublicObjectInput(properties={"firstname": "X"}))


def test_archive_hides_record_and_is_idempotent(client: hubspot.HubSpot) -> None:
    client.crm.contacts.basic_api.archive("202")
    client.crm.contacts.basic_api.archive("202")  # HubSpot answers 204 again
    client.crm.contacts.basic_api.archive("987654")  # and for ids that never existed
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.get_by_id("202")
    archived_ids = [r.id for r in client.crm.contacts.basic_api.get_page(archived=True).results]
    assert archived_ids == ["202", "203"]
    # an archived contact's email is free again
    created = client.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "bob@acme.com"})
    )
    assert created.id != "202"


def test_create_with_associations(client: hubspot.HubSpot) -> None:
    created = client.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={"email": "c@acme.com"},
            associations=[
                {
                    "to": {"id": "101"},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
                }
            ],
        )
    )
    page = client.crm.associations.v4.basic_api.get_page("contacts", created.id, "companies")
    assert [(r.to_object_id, sorted(t.type_id for t in r.association_types)) for r in page.results] == [
        ("101", [1, 279])
    ]
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(
                properties={"email": "d@acme.com"},
                associations=[
                    {
                        "to": {"id": "101"},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 3}],
                    }
                ],
            )
        )
    assert caught.value.status == 400


# -- deals: pipelines and stages ------------------------------------------------------------------


def test_deal_stage_defaults_to_default_pipeline_and_derives_closed_flags(client: hubspot.HubSpot) -> None:
    deal = client.crm.deals.basic_api.get_by_id(
        "301", properties=["pipeline", "dealstage", "hs_is_closed", "hs_is_closed_won", "amount"]
    )
    assert deal.properties["pipeline"] == "default"
    assert deal.properties["hs_is_closed_won"] == "true"
    assert deal.properties["hs_is_closed"] == "true"
    created = client.crm.deals.basic_api.create(
        DealCreate(
            properties={"dealname": "SF", "pipeline": "7001", "dealstage": "7003", "closedate": "2024-05-01"}
        )
    )
    assert created.properties["hs_is_closed"] == "true"
    assert created.properties["hs_is_closed_won"] == "false"
    assert created.properties["closedate"] == "2024-05-01T00:00:00.000Z"


def test_deal_stage_must_belong_to_the_deals_pipeline(client: hubspot.HubSpot) -> None:
    for props, name in [
        ({"dealname": "X", "pipeline": "default", "dealstage": "7002"}, "dealstage"),
        ({"dealname": "X", "pipeline": "nope", "dealstage": "7002"}, "pipeline"),
    ]:
        with pytest.raises(DealsApiException) as caught:
            client.crm.deals.basic_api.create(DealCreate(properties=props))
        assert caught.value.status == 400
        assert [(p["name"], p["error"]) for p in problems(caught.value)] == [(name, "INVALID_OPTION")]
    # moving a deal to another pipeline needs a stage of that pipeline
    with pytest.raises(DealsApiException) as caught:
        client.crm.deals.basic_api.update("301", DealInput(properties={"pipeline": "7001"}))
    assert [(p["name"], p["error"]) for p in problems(caught.value)] == [("dealstage", "INVALID_OPTION")]
    moved = client.crm.deals.basic_api.update(
        "301", DealInput(properties={"pipeline": "7001", "dealstage": "7002"})
    )
    assert moved.properties["hs_is_closed"] == "false"


# -- batch ------------------------------------------------------------------------------------------


def test_batch_read_by_email_reports_missing_ids_in_207(client: hubspot.HubSpot) -> None:
    response = client.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            id_property="email",
            inputs=[SimplePublicObjectId(id="ann@acme.com"), SimplePublicObjectId(id="ghost@acme.com")],
            properties=["firstname"],
            properties_with_history=[],
        )
    )
    assert [r.id for r in response.results] == ["201"]
    assert response.results[0].properties["firstname"] == "Ann"
    assert response.num_errors == 1
    error = response.errors[0]
    assert error.status == "error"
    assert error.category == "OBJECT_NOT_FOUND"
    assert error.context == {"ids": ["ghost@acme.com"]}
    assert "Could not get some CONTACT objects" in error.message


def test_batch_read_all_found_is_plain_200(client: hubspot.HubSpot) -> None:
    response, status, _ = client.crm.contacts.batch_api.read_with_http_info(
        BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id="201"), SimplePublicObjectId(id="202")],
            properties=[],
            properties_with_history=["firstname"],
        )
    )
    assert status == 200
    assert response.status == "COMPLETE"
    assert response.results[0].properties_with_history["firstname"][0].value == "Ann"


def test_batch_limits(client: hubspot.HubSpot) -> None:
    too_many = [SimplePublicObjectBatchInputForCreate(properties={"firstname": str(i)}) for i in range(101)]
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=too_many))
    assert caught.value.status == 400
    assert body(caught.value)["category"] == "VALIDATION_ERROR"
    history_inputs = [SimplePublicObjectId(id=str(i)) for i in range(51)]
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.batch_api.read(
            BatchReadInputSimplePublicObjectId(
                inputs=history_inputs, properties=[], properties_with_history=["email"]
            )
        )
    assert caught.value.status == 400
    assert "property histories is 50" in body(caught.value)["message"]


def test_batch_create_writes_all_inputs(client: hubspot.HubSpot) -> None:
    response, status, _ = client.crm.contacts.batch_api.create_with_http_info(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                SimplePublicObjectBatchInputForCreate(
                    properties={"email": f"p{i}@corp.com", "firstname": f"P{i}"}
                )
                for i in range(3)
            ]
        )
    )
    assert status == 201
    assert sorted(r.properties["email"] for r in response.results) == [
        "p0@corp.com",
        "p1@corp.com",
        "p2@corp.com",
    ]
    assert len({r.id for r in response.results}) == 3


def test_batch_create_with_an_invalid_input_fails_whole_batch(client: hubspot.HubSpot) -> None:
    inputs = [
        SimplePublicObjectBatchInputForCreate(properties={"email": "ok1@corp.com"}),
        SimplePublicObjectBatchInputForCreate(properties={"email": "bob@acme.com"}),
    ]
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs))
    assert caught.value.status == 409
    assert body(caught.value)["message"] == "Contact already exists. Existing ID: 202"
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.get_by_id("ok1@corp.com", id_property="email")


def test_batch_create_with_trace_ids_gives_207_partial_success(client: hubspot.HubSpot) -> None:
    inputs = [
        SimplePublicObjectBatchInputForCreate(
            properties={"email": "ok2@corp.com"}, object_write_trace_id="a"
        ),
        SimplePublicObjectBatchInputForCreate(
            properties={"email": "x@corp.com", "bogus": "1"}, object_write_trace_id="b"
        ),
        SimplePublicObjectBatchInputForCreate(
            properties={"email": "dup@corp.com"}, object_write_trace_id="c"
        ),
        SimplePublicObjectBatchInputForCreate(
            properties={"email": "DUP@corp.com"}, object_write_trace_id="d"
        ),
    ]
    response, status, _ = client.crm.contacts.batch_api.create_with_http_info(
        BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
    )
    assert status == 207
    assert sorted(r.object_write_trace_id for r in response.results) == ["a", "c"]
    by_trace = {e.context["objectWriteTraceId"][0]: e for e in response.errors}
    assert set(by_trace) == {"b", "d"}
    assert by_trace["b"].category == "VALIDATION_ERROR"
    assert by_trace["d"].category == "CONFLICT"
    dup_id = next(r.id for r in response.results if r.object_write_trace_id == "c")
    assert by_trace["d"].message == f"Contact already exists. Existing ID: {dup_id}"


def test_batch_update_reports_missing_ids_and_updates_the_rest(client: hubspot.HubSpot) -> None:
    response, status, _ = client.crm.contacts.batch_api.update_with_http_info(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                SimplePublicObjectBatchInput(id="201", properties={"jobtitle": "CEO"}),
                SimplePublicObjectBatchInput(id="555", properties={"jobtitle": "CFO"}),
                SimplePublicObjectBatchInput(
                    id="bob@acme.com", id_property="email", properties={"jobtitle": "CTO"}
                ),
            ]
        )
    )
    assert status == 207
    assert {r.id: r.properties["jobtitle"] for r in response.results} == {"201": "CEO", "202": "CTO"}
    assert [(e.category, e.context) for e in response.errors] == [("OBJECT_NOT_FOUND", {"ids": ["555"]})]


def test_batch_update_rejects_duplicate_ids(client: hubspot.HubSpot) -> None:
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    SimplePublicObjectBatchInput(id="201", properties={"jobtitle": "A"}),
                    SimplePublicObjectBatchInput(id="201", properties={"jobtitle": "B"}),
                ]
            )
        )
    assert caught.value.status == 400
    assert "Duplicate IDs found in batch input" in body(caught.value)["message"]


def test_batch_upsert_by_email_creates_and_updates(client: hubspot.HubSpot) -> None:
    response = client.crm.contacts.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id="ANN@acme.com", id_property="email", properties={"jobtitle": "A"}
                ),
                SimplePublicObjectBatchInputUpsert(
                    id="new@acme.com", id_property="email", properties={"jobtitle": "B"}
                ),
            ]
        )
    )
    by_email = {r.properties["email"]: r for r in response.results}
    assert by_email["ann@acme.com"].new is False
    assert by_email["ann@acme.com"].id == "201"
    assert by_email["new@acme.com"].new is True
    assert by_email["new@acme.com"].properties["jobtitle"] == "B"


def test_batch_upsert_needs_a_unique_id_property(client: hubspot.HubSpot) -> None:
    with pytest.raises(ApiException) as caught:
        client.crm.contacts.batch_api.upsert(
            BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=[SimplePublicObjectBatchInputUpsert(id="Lee", id_property="lastname", properties={})]
            )
        )
    assert caught.value.status == 400
    assert "non-unique" in body(caught.value)["message"]


def test_batch_upsert_by_custom_unique_property(client: hubspot.HubSpot) -> None:
    client.crm.properties.core_api.create(
        "companies",
        PropertyCreate(
            name="sf_account_key",
            label="SF account key",
            type="string",
            field_type="text",
            group_name="companyinformation",
            has_unique_value=True,
        ),
    )
    from hubspot.crm.companies import (
        BatchInputSimplePublicObjectBatchInputUpsert as CompanyUpsertBatch,
    )
    from hubspot.crm.companies import (
        SimplePublicObjectBatchInputUpsert as CompanyUpsert,
    )

    def upsert(name: str) -> Any:
        return client.crm.companies.batch_api.upsert(
            CompanyUpsertBatch(
                inputs=[CompanyUpsert(id="001A", id_property="sf_account_key", properties={"name": name})]
            )
        ).results[0]

    first, second = upsert("Globex"), upsert("Globex Corp")
    assert (first.new, second.new) == (True, False)
    assert first.id == second.id
    fetched = client.crm.companies.basic_api.get_by_id(
        "001A", id_property="sf_account_key", properties=["name"]
    )
    assert fetched.properties["name"] == "Globex Corp"


def test_batch_archive(client: hubspot.HubSpot) -> None:
    client.crm.contacts.batch_api.archive(
        BatchInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id="201"), SimplePublicObjectId(id="999")]
        )
    )
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.get_by_id("201")
    assert client.crm.contacts.basic_api.get_by_id("202").id == "202"


@pytest.mark.parametrize("endpoint", ["update", "upsert"])
def test_hs_object_id_is_not_an_id_property_of_batch_writes(client: hubspot.HubSpot, endpoint: str) -> None:
    inputs = [{"id": "201", "idProperty": "hs_object_id", "properties": {"jobtitle": "CTO"}}]
    with pytest.raises(ApiException) as caught:
        getattr(client.crm.contacts.batch_api, endpoint)({"inputs": inputs})
    assert caught.value.status == 400
    assert "non-unique 0-1 property hs_object_id" in body(caught.value)["message"]
    plain = client.crm.contacts.batch_api.update(
        {"inputs": [{"id": "201", "properties": {"jobtitle": "CTO"}}]}
    )
    assert plain.results[0].properties["jobtitle"] == "CTO"
