"""HubSpot emulator: properties, deal pipelines/stages and owners through the real hubspot-api-client.

These are the metadata a sync reads before it writes: owners to map users (OWN-1..5), pipelines
and stages to create ``Salesforce - <record type>`` pipelines (DEAL-2), and property definitions
(custom link properties, enumeration options).
"""

from __future__ import annotations

import json
from typing import Any

import hubspot
import pytest
from crm_sandbox.hubspot.testing import client_fixtures
from hubspot.crm.deals import SimplePublicObjectInput as DealInput
from hubspot.crm.deals import SimplePublicObjectInputForCreate as DealCreate
from hubspot.crm.owners import ApiException as OwnersApiException
from hubspot.crm.owners.exceptions import NotFoundException as OwnerNotFound
from hubspot.crm.pipelines import (
    ApiException as PipelinesApiException,
)
from hubspot.crm.pipelines import (
    PipelineInput,
    PipelinePatchInput,
    PipelineStageInput,
    PipelineStagePatchInput,
)
from hubspot.crm.pipelines.exceptions import NotFoundException as PipelineNotFound
from hubspot.crm.properties import ApiException as PropertiesApiException
from hubspot.crm.properties import OptionInput, PropertyCreate, PropertyUpdate
from hubspot.crm.properties.exceptions import NotFoundException as PropertyNotFound

OWNERS = [
    {"id": "601", "email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace", "userId": 9001},
    {"id": "602", "email": "Alan@Example.com", "firstName": "Alan", "lastName": "Turing", "userId": 9002},
    {"id": "603", "email": "grace@example.com", "firstName": "Grace", "lastName": "Hopper", "userId": 9003},
    {"id": "604", "email": "left@example.com", "firstName": "Left", "lastName": "Company", "archived": True},
]
SCENARIO: dict[str, Any] = {
    "hubspot": {
        "owners": OWNERS,
        "deals": [{"id": "301", "properties": {"dealname": "Open deal", "dealstage": "contractsent"}}],
    }
}


base_url, client = client_fixtures(SCENARIO)


def error_of(exc: Exception) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(exc.body)  # type: ignore[attr-defined]
    return parsed


# -- properties -------------------------------------------------------------------------------------


def test_default_properties_a_salesforce_integration_needs(client: hubspot.HubSpot) -> None:
    expected = {
        "contacts": {
            "email", "firstname", "lastname", "phone", "company", "jobtitle", "hubspot_owner_id",
            "lifecyclestage", "salesforcecontactid", "salesforceleadid", "num_associated_deals",
            "first_deal_created_date", "recent_deal_close_date", "recent_deal_amount", "total_revenue",
            "createdate", "lastmodifieddate", "hs_object_id",
        },
        "companies": {
            "name", "domain", "website", "phone", "industry", "city", "country", "numberofemployees",
            "annualrevenue", "description", "hubspot_owner_id", "lifecyclestage", "salesforceaccountid",
            "crm_sync_manual_sync", "hs_object_source", "num_associated_deals", "total_revenue",
            "hs_lastmodifieddate",
        },
        "deals": {
            "dealname", "amount", "closedate", "dealstage", "pipeline", "dealtype", "description",
            "hubspot_owner_id", "salesforceopportunityid", "deal_currency_code", "hs_is_closed",
            "hs_is_closed_won", "createdate", "hs_lastmodifieddate",
        },
    }  # fmt: skip
    for object_type, names in expected.items():
        listed = {p.name for p in client.crm.properties.core_api.get_all(object_type).results}
        assert names <= listed, names - listed


def test_get_property_definition(client: hubspot.HubSpot) -> None:
    stage = client.crm.properties.core_api.get_by_name("contacts", "lifecyclestage")
    assert stage.type == "enumeration"
    assert [o.value for o in stage.options] == [
        "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
        "opportunity", "customer", "evangelist", "other",
    ]  # fmt: skip
    manual = client.crm.properties.core_api.get_by_name("companies", "crm_sync_manual_sync")
    assert (manual.type, manual.field_type) == ("bool", "booleancheckbox")
    dealstage = client.crm.properties.core_api.get_by_name("deals", "dealstage")
    assert "closedwon" in {o.value for o in dealstage.options}  # options follow the pipelines
    owner = client.crm.properties.core_api.get_by_name("contacts", "hubspot_owner_id")
    assert {o.value for o in owner.options} == {"601", "602", "603"}  # active owners only
    created = client.crm.properties.core_api.get_by_name("deals", "createdate")
    assert created.type == "datetime"


def test_unknown_property_is_404(client: hubspot.HubSpot) -> None:
    with pytest.raises(PropertyNotFound) as caught:
        client.crm.properties.core_api.get_by_name("contacts", "shoe_size")
    assert caught.value.status == 404
    assert error_of(caught.value)["category"] == "OBJECT_NOT_FOUND"


def test_create_custom_property_then_write_it(client: hubspot.HubSpot) -> None:
    created = client.crm.properties.core_api.create(
        "deals",
        PropertyCreate(
            name="sf_record_type",
            label="SF record type",
            type="enumeration",
            field_type="select",
            group_name="dealinformation",
            options=[OptionInput(label="Standard", value="standard", display_order=0, hidden=False)],
        ),
    )
    assert created.name == "sf_record_type"
    assert created.hubspot_defined is None
    deal = client.crm.deals.basic_api.update("301", DealInput(properties={"sf_record_type": "standard"}))
    assert deal.properties["sf_record_type"] == "standard"
    from hubspot.crm.deals import ApiException as DealsApiException

    with pytest.raises(DealsApiException) as caught:
        client.crm.deals.basic_api.update("301", DealInput(properties={"sf_record_type": "partner"}))
    assert caught.value.status == 400
    updated = client.crm.properties.core_api.update(
        "deals",
        "sf_record_type",
        PropertyUpdate(
            options=[
                OptionInput(label="Standard", value="standard", display_order=0, hidden=False),
                OptionInput(label="Partner", value="partner", display_order=1, hidden=False),
            ]
        ),
    )
    assert [o.value for o in updated.options] == ["standard", "partner"]
    client.crm.deals.basic_api.update("301", DealInput(properties={"sf_record_type": "partner"}))


def test_property_creation_errors(client: hubspot.HubSpot) -> None:
    with pytest.raises(PropertiesApiException) as caught:
        client.crm.properties.core_api.create(
            "contacts",
            PropertyCreate(
                name="email", label="E", type="string", field_type="text", group_name="contactinformation"
            ),
        )
    assert caught.value.status == 409
    with pytest.raises(PropertiesApiException) as caught:
        client.crm.properties.core_api.create(
            "contacts",
            PropertyCreate(
                name="x_prop", label="X", type="money", field_type="text", group_name="contactinformation"
            ),
        )
    assert caught.value.status == 400
    assert error_of(caught.value)["category"] == "VALIDATION_ERROR"


def test_archive_custom_property(client: hubspot.HubSpot) -> None:
    client.crm.properties.core_api.create(
        "contacts",
        PropertyCreate(
            name="temp_flag", label="Temp", type="string", field_type="text", group_name="contactinformation"
        ),
    )
    client.crm.properties.core_api.archive("contacts", "temp_flag")
    with pytest.raises(PropertyNotFound):
        client.crm.properties.core_api.get_by_name("contacts", "temp_flag")
    archived = client.crm.properties.core_api.get_all("contacts", archived=True).results
    assert [p.name for p in archived] == ["temp_flag"]
    with pytest.raises(PropertiesApiException):  # HubSpot's own properties cannot be archived
        client.crm.properties.core_api.archive("contacts", "email")


# -- pipelines --------------------------------------------------------------------------------------


def test_default_pipeline_has_hubspots_standard_stages(client: hubspot.HubSpot) -> None:
    pipelines = client.crm.pipelines.pipelines_api.get_all("deals").results
    assert [p.id for p in pipelines] == ["default"]
    stages = {s.id: s.metadata for s in pipelines[0].stages}
    assert list(stages) == [
        "appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
        "contractsent", "closedwon", "closedlost",
    ]  # fmt: skip
    assert stages["closedwon"] == {"isClosed": "true", "probability": "1.0"}
    assert stages["qualifiedtobuy"] == {"isClosed": "false", "probability": "0.4"}


def test_create_pipeline_with_stages_then_read_and_patch(client: hubspot.HubSpot) -> None:
    api = client.crm.pipelines.pipelines_api
    created = api.create(
        "deals",
        PipelineInput(
            label="Salesforce - Standard pipeline",
            display_order=1,
            stages=[
                PipelineStageInput(label="Prospecting", display_order=0, metadata={"probability": "0.1"}),
                PipelineStageInput(
                    label="Closed Won", display_order=1, metadata={"probability": "1.0", "isClosed": "true"}
                ),
            ],
        ),
    )
    assert created.id.isdigit()
    assert [s.label for s in created.stages] == ["Prospecting", "Closed Won"]
    assert created.stages[0].metadata == {"probability": "0.1", "isClosed": "false"}
    assert api.get_by_id("deals", created.id).label == "Salesforce - Standard pipeline"
    renamed = api.update("deals", created.id, PipelinePatchInput(label="Salesforce - Enterprise"))
    assert renamed.label == "Salesforce - Enterprise"
    assert [p.label for p in api.get_all("deals").results] == ["Sales Pipeline", "Salesforce - Enterprise"]


def test_pipeline_labels_are_unique(client: hubspot.HubSpot) -> None:
    api = client.crm.pipelines.pipelines_api
    stage = PipelineStageInput(label="Open", display_order=0, metadata={"probability": "0.5"})
    other = api.create("deals", PipelineInput(label="Other", display_order=2, stages=[stage]))
    with pytest.raises(PipelinesApiException) as created:
        api.create("deals", PipelineInput(label="Sales Pipeline", display_order=1, stages=[stage]))
    with pytest.raises(PipelinesApiException) as renamed:
        api.update("deals", other.id, PipelinePatchInput(label="Sales Pipeline"))
    for caught in (created, renamed):
        assert caught.value.status == 409
        assert error_of(caught.value)["category"] == "CONFLICT"


def test_deal_stages_need_a_probability(client: hubspot.HubSpot) -> None:
    with pytest.raises(PipelinesApiException) as caught:
        client.crm.pipelines.pipeline_stages_api.create(
            "deals", "default", PipelineStageInput(label="Limbo", display_order=9, metadata={})
        )
    assert caught.value.status == 400


def test_stages_create_read_patch(client: hubspot.HubSpot) -> None:
    stages_api = client.crm.pipelines.pipeline_stages_api
    created = stages_api.create(
        "deals",
        "default",
        PipelineStageInput(label="Verbal", display_order=7, metadata={"probability": "0.95"}),
    )
    assert created.id.isdigit()
    assert stages_api.get_by_id("deals", "default", created.id).label == "Verbal"
    listed = [s.id for s in stages_api.get_all("deals", "default").results]
    assert listed[-1] == created.id
    deal = client.crm.deals.basic_api.create(
        DealCreate(properties={"dealname": "V", "dealstage": created.id})
    )
    assert deal.properties["hs_is_closed"] == "false"
    patched = stages_api.update(
        "deals",
        "default",
        created.id,
        PipelineStagePatchInput(label="Verbal win", metadata={"isClosed": "true", "probability": "1.0"}),
    )
    assert patched.metadata == {"isClosed": "true", "probability": "1.0"}
    refreshed = client.crm.deals.basic_api.get_by_id(deal.id, properties=["hs_is_closed_won"])
    assert refreshed.properties["hs_is_closed_won"] == "true"  # derived from stage metadata
    with pytest.raises(PipelineNotFound):
        stages_api.get_by_id("deals", "default", "nope")


def test_replace_pipeline_and_archive_stage(client: hubspot.HubSpot) -> None:
    api = client.crm.pipelines.pipelines_api
    stage = PipelineStageInput(label="Open", display_order=0, metadata={"probability": "0.5"})
    pipeline = api.create("deals", PipelineInput(label="Partner", display_order=4, stages=[stage]))
    replaced = api.replace(
        "deals",
        pipeline.id,
        PipelineInput(
            label="Partner deals",
            display_order=4,
            stages=[
                PipelineStageInput(label="Intro", display_order=0, metadata={"probability": "0.1"}),
                PipelineStageInput(
                    label="Signed", display_order=1, metadata={"probability": "1.0", "isClosed": "true"}
                ),
            ],
        ),
    )
    assert replaced.label == "Partner deals"
    assert [s.label for s in replaced.stages] == ["Intro", "Signed"]
    client.crm.pipelines.pipeline_stages_api.archive("deals", pipeline.id, replaced.stages[0].id)
    remaining = client.crm.pipelines.pipeline_stages_api.get_all("deals", pipeline.id).results
    assert [s.label for s in remaining] == ["Signed"]


def test_delete_pipeline(client: hubspot.HubSpot) -> None:
    api = client.crm.pipelines.pipelines_api
    stage = PipelineStageInput(label="Open", display_order=0, metadata={"probability": "0.5"})
    doomed = api.create("deals", PipelineInput(label="Doomed", display_order=3, stages=[stage]))
    with pytest.raises(PipelinesApiException) as caught:  # deal 301 is in the default pipeline
        api.archive("deals", "default", validate_references_before_delete=True)
    assert caught.value.status == 409
    api.archive("deals", doomed.id)
    with pytest.raises(PipelineNotFound):
        api.get_by_id("deals", doomed.id)


# -- owners -----------------------------------------------------------------------------------------


def test_owners_list_and_shape(client: hubspot.HubSpot) -> None:
    page = client.crm.owners.owners_api.get_page()
    assert [o.id for o in page.results] == ["601", "602", "603"]
    ada = page.results[0]
    assert (ada.email, ada.first_name, ada.last_name, ada.user_id, ada.archived) == (
        "ada@example.com", "Ada", "Lovelace", 9001, False,
    )  # fmt: skip
    assert ada.teams == []
    assert ada.created_at is not None


def test_owners_paging_email_filter_and_archived(client: hubspot.HubSpot) -> None:
    api = client.crm.owners.owners_api
    first = api.get_page(limit=2)
    assert [o.id for o in first.results] == ["601", "602"]
    second = api.get_page(limit=2, after=first.paging.next.after)
    assert [o.id for o in second.results] == ["603"]
    assert second.paging is None
    assert [o.id for o in api.get_page(email="alan@example.com").results] == ["602"]
    assert [o.id for o in api.get_page(archived=True).results] == ["604"]
    with pytest.raises(OwnersApiException) as caught:
        api.get_page(limit=501)
    assert caught.value.status == 400


def test_get_owner_by_id_or_user_id(client: hubspot.HubSpot) -> None:
    api = client.crm.owners.owners_api
    assert api.get_by_id(603).email == "grace@example.com"
    assert api.get_by_id(9002, id_property="userId").id == "602"
    with pytest.raises(OwnerNotFound) as caught:
        api.get_by_id(604)  # archived owners need archived=true
    assert caught.value.status == 404
    assert api.get_by_id(604, archived=True).archived is True
