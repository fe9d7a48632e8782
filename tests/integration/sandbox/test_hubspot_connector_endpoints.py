"""HubSpot endpoints common connectors call, through hubspot-api-client: custom object schemas,
property groups, association labels, merge, GDPR delete, the legacy properties v2 and pipelines
v1 APIs (through ``api_request``, the client's raw call) and the OAuth endpoints of public apps.
Shapes compared with HubSpot's API reference (developers.hubspot.com: CRM "Schemas",
"Properties" groups, "Associations v4" labels, "Contacts" merge and GDPR delete, legacy
"Contact/Company/Deal Properties API", "CRM Pipelines API", "OAuth")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import hubspot
import pytest
from crm_sandbox.hubspot.testing import client_fixtures, hubspot_sandbox
from hubspot.crm.contacts import PublicGdprDeleteInput, PublicMergeInput
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.contacts.exceptions import NotFoundException as ContactNotFound
from hubspot.crm.properties import PropertyGroupCreate
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException
from hubspot.oauth.exceptions import ApiException as OAuthApiException

SCENARIO: dict[str, Any] = {
    "hubspot": {
        "owners": [
            {"id": "601", "email": "ada@example.com", "firstName": "Ada", "lastName": "L", "userId": 9001}
        ],
        "companies": [
            {"id": "101", "properties": {"name": "Acme", "domain": "acme.com"}},
            {"id": "102", "properties": {"name": "Acme Duplicate", "domain": "acme.io", "city": "Berlin"}},
        ],
        "contacts": [
            {"id": "201", "properties": {"email": "ada@acme.com", "firstname": "Ada"}},
            {
                "id": "202",
                "properties": {"email": "ada.l@acme.io", "lastname": "Lovelace", "jobtitle": "CTO"},
            },
            {"id": "203", "properties": {"email": "forget@me.com", "firstname": "Forget"}},
        ],
        "deals": [{"id": "301", "properties": {"dealname": "Big", "dealstage": "closedwon", "amount": "10"}}],
        "associations": [
            {"from": ["contacts", "202"], "to": ["companies", "102"], "typeId": 279},
            {"from": ["deals", "301"], "to": ["contacts", "202"], "typeId": 3},
        ],
    }
}

base_url, client = client_fixtures(SCENARIO)


def raw(client: hubspot.HubSpot, base_url: str, path: str) -> Any:
    response = client.api_request({"method": "GET", "path": path, "base_url": base_url})
    assert response.status_code == 200, response.text
    return response.json()


def test_schemas_list_is_empty_without_custom_objects(client: hubspot.HubSpot) -> None:
    assert client.crm.schemas.core_api.get_all().results == []


def test_property_groups(client: hubspot.HubSpot) -> None:
    groups = {g.name: g for g in client.crm.properties.groups_api.get_all("contacts").results}
    assert groups["contactinformation"].label == "Contact information"
    assert groups["contactinformation"].archived is False
    created = client.crm.properties.groups_api.create(
        "contacts", PropertyGroupCreate(name="crm_sync", label="crm-sync", display_order=7)
    )
    assert (created.name, created.label, created.display_order) == ("crm_sync", "crm-sync", 7)
    assert client.crm.properties.groups_api.get_by_name("contacts", "crm_sync").label == "crm-sync"
    with pytest.raises(PropertiesApiException) as duplicate:
        client.crm.properties.groups_api.create("contacts", PropertyGroupCreate(name="crm_sync", label="x"))
    assert duplicate.value.status == 409
    client.crm.properties.groups_api.archive("contacts", "crm_sync")
    with pytest.raises(PropertiesApiException) as gone:
        client.crm.properties.groups_api.get_by_name("contacts", "crm_sync")
    assert gone.value.status == 404


def test_association_labels(client: hubspot.HubSpot) -> None:
    labels = client.crm.associations.v4.schema.definitions_api.get_all("contacts", "companies").results
    assert {(label.type_id, label.label, label.category) for label in labels} == {
        (279, None, "HUBSPOT_DEFINED"),
        (1, "Primary", "HUBSPOT_DEFINED"),
    }


def test_merge_contacts(client: hubspot.HubSpot) -> None:
    merged = client.crm.contacts.basic_api.merge(
        PublicMergeInput(primary_object_id="201", object_id_to_merge="202")
    )
    assert merged.id == "201"
    primary = client.crm.contacts.basic_api.get_by_id(
        "201", properties=["email", "firstname", "lastname", "jobtitle", "hs_additional_emails"]
    )
    assert primary.properties["email"] == "ada@acme.com"
    assert primary.properties["firstname"] == "Ada"
    assert primary.properties["lastname"] == "Lovelace"  # the primary had none
    assert primary.properties["hs_additional_emails"] == "ada.l@acme.io"
    companies = client.crm.associations.v4.basic_api.get_page("contacts", "201", "companies").results
    assert [c.to_object_id for c in companies] == ["102"]
    deals = client.crm.associations.v4.basic_api.get_page("contacts", "201", "deals").results
    assert [d.to_object_id for d in deals] == ["301"]
    with pytest.raises(ContactNotFound):
        client.crm.contacts.basic_api.get_by_id("202")
    archived = client.crm.contacts.basic_api.get_page(archived=True).results
    assert "202" not in {c.id for c in archived}


def test_merge_errors(client: hubspot.HubSpot) -> None:
    with pytest.raises(ContactsApiException) as same:
        client.crm.contacts.basic_api.merge(
            PublicMergeInput(primary_object_id="201", object_id_to_merge="201")
        )
    assert same.value.status == 400
    with pytest.raises(ContactNotFound):
        client.crm.contacts.basic_api.merge(
            PublicMergeInput(primary_object_id="201", object_id_to_merge="999")
        )


def test_merge_companies_keeps_the_primarys_values(client: hubspot.HubSpot) -> None:
    client.crm.companies.basic_api.merge(
        hubspot.crm.companies.PublicMergeInput(primary_object_id="101", object_id_to_merge="102")
    )
    acme = client.crm.companies.basic_api.get_by_id("101", properties=["name", "domain", "city"])
    assert (acme.properties["name"], acme.properties["domain"], acme.properties["city"]) == (
        "Acme",
        "acme.com",
        "Berlin",
    )
    contacts = client.crm.associations.v4.basic_api.get_page("companies", "101", "contacts").results
    assert [c.to_object_id for c in contacts] == ["202"]


def test_gdpr_delete(client: hubspot.HubSpot) -> None:
    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id="203"))
    with pytest.raises(ContactNotFound):
        client.crm.contacts.basic_api.get_by_id("203")
    assert "203" not in {c.id for c in client.crm.contacts.basic_api.get_page(archived=True).results}
    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id="ADA@acme.com", id_property="email"))
    with pytest.raises(ContactNotFound):
        client.crm.contacts.basic_api.get_by_id("201")
    # an unknown address is accepted (HubSpot blocklists it); an unknown id is not
    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id="nobody@x.com", id_property="email"))
    with pytest.raises(ContactNotFound):
        client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id="999"))


def test_legacy_properties_v2(client: hubspot.HubSpot, base_url: str) -> None:
    properties = {p["name"]: p for p in raw(client, base_url, "/properties/v2/companies/properties")}
    name = properties["name"]
    assert (name["type"], name["fieldType"], name["groupName"]) == ("string", "text", "companyinformation")
    assert name["readOnlyDefinition"] is True
    assert name["deleted"] is False
    assert isinstance(name["createdAt"], int)
    industry = properties["industry"]
    assert {"label", "value", "displayOrder", "hidden", "readOnly"} <= set(industry["options"][0])
    owner = raw(client, base_url, "/properties/v2/deals/properties/named/hubspot_owner_id")
    assert owner["externalOptions"] is True
    contact_v1 = {p["name"] for p in raw(client, base_url, "/properties/v1/contacts/properties")}
    assert "email" in contact_v1
    groups = raw(client, base_url, "/properties/v2/deals/groups?includeProperties=true")
    deal_info = next(g for g in groups if g["name"] == "dealinformation")
    assert deal_info["displayName"] == "Deal information"
    assert "dealname" in {p["name"] for p in deal_info["properties"]}
    missing = client.api_request(
        {"method": "GET", "path": "/properties/v2/deals/properties/named/nope", "base_url": base_url}
    )
    assert missing.status_code == 404


def test_legacy_v1_paths_with_trailing_slashes(client: hubspot.HubSpot, base_url: str) -> None:
    """hubspot3 (a client of the legacy APIs) reads ``/properties/v1/<object>/properties/``."""
    for object_type in ("contacts", "companies", "deals"):
        v1 = raw(client, base_url, f"/properties/v1/{object_type}/properties/")
        assert v1 == raw(client, base_url, f"/properties/v2/{object_type}/properties")
    assert raw(client, base_url, "/properties/v1/deals/groups/")[0]["name"] == "dealinformation"


def test_legacy_owners_v2(client: hubspot.HubSpot, base_url: str) -> None:
    owners = raw(client, base_url, "/owners/v2/owners/")
    assert [(o["ownerId"], o["email"], o["type"], o["portalId"]) for o in owners] == [
        (601, "ada@example.com", "PERSON", 62515)
    ]
    assert isinstance(owners[0]["createdAt"], int)


def test_legacy_deal_pipelines_v1(client: hubspot.HubSpot, base_url: str) -> None:
    pipelines = raw(client, base_url, "/crm-pipelines/v1/pipelines/deals")["results"]
    default = pipelines[0]
    assert (default["pipelineId"], default["objectType"], default["default"]) == ("default", "DEAL", True)
    stages = {s["stageId"]: s for s in default["stages"]}
    assert stages["closedwon"]["closedWon"] is True
    assert stages["closedwon"]["probability"] == 1.0
    assert stages["closedlost"]["closedWon"] is False
    assert stages["qualifiedtobuy"]["metadata"] == {"isClosed": "false", "probability": "0.4"}
    assert raw(client, base_url, "/crm-pipelines/v1/pipelines/deals/default")["label"] == default["label"]
    assert raw(client, base_url, "/deals/v1/pipelines") == pipelines


# -- OAuth for public apps -------------------------------------------------------------------------
APP = {"client_id": "app-id", "client_secret": "app-secret", "redirect_uri": "https://app.example.com/cb"}


def test_oauth_code_exchange_refresh_and_metadata(client: hubspot.HubSpot, base_url: str) -> None:
    tokens = client.oauth.tokens_api.create(grant_type="authorization_code", code="code-1", **APP)
    assert tokens.token_type == "bearer"
    assert tokens.expires_in == 1800
    app_client = hubspot.HubSpot(access_token=tokens.access_token, host=base_url)
    assert app_client.crm.contacts.basic_api.get_by_id("201").id == "201"
    info = client.oauth.access_tokens_api.get(tokens.access_token)
    assert (info.token, info.token_type, info.hub_id) == (tokens.access_token, "access", 62515)
    assert "crm.objects.contacts.read" in info.scopes
    with pytest.raises(OAuthApiException) as reused:
        client.oauth.tokens_api.create(grant_type="authorization_code", code="code-1", **APP)
    assert reused.value.status == 400
    assert '"BAD_AUTH_CODE"' in reused.value.body
    refreshed = client.oauth.tokens_api.create(
        grant_type="refresh_token", refresh_token=tokens.refresh_token,
        client_id=APP["client_id"], client_secret=APP["client_secret"],
    )  # fmt: skip
    assert refreshed.refresh_token == tokens.refresh_token
    assert refreshed.access_token != tokens.access_token
    refresh_info = client.oauth.refresh_tokens_api.get(tokens.refresh_token)
    assert (refresh_info.client_id, refresh_info.token_type) == ("app-id", "refresh")
    client.oauth.refresh_tokens_api.archive(tokens.refresh_token)


def test_oauth_errors(client: hubspot.HubSpot) -> None:
    with pytest.raises(OAuthApiException) as no_client:
        client.oauth.tokens_api.create(grant_type="authorization_code", code="c", redirect_uri="https://x")
    assert '"BAD_CLIENT_ID"' in no_client.value.body


@pytest.fixture(scope="module")
def locked_url() -> Iterator[str]:
    with hubspot_sandbox({**SCENARIO, "tokens": ["private-app-token", "listed-refresh"]}) as url:
        yield url


def test_locked_portal_accepts_issued_app_tokens(locked_url: str) -> None:
    anonymous = hubspot.HubSpot(host=locked_url)
    with pytest.raises(OAuthApiException) as unknown:
        anonymous.oauth.tokens_api.create(
            grant_type="refresh_token", refresh_token="made-up", client_id="a", client_secret="b"
        )
    assert '"BAD_REFRESH_TOKEN"' in unknown.value.body
    tokens = anonymous.oauth.tokens_api.create(
        grant_type="refresh_token", refresh_token="listed-refresh", client_id="a", client_secret="b"
    )
    app_client = hubspot.HubSpot(access_token=tokens.access_token, host=locked_url)
    assert app_client.crm.companies.basic_api.get_by_id("101").properties["name"] == "Acme"
    stranger = hubspot.HubSpot(access_token="made-up", host=locked_url)
    with pytest.raises(hubspot.crm.companies.ApiException) as refused:
        stranger.crm.companies.basic_api.get_by_id("101")
    assert refused.value.status == 401
