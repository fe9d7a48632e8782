"""Describe as connectors read it: every key of a real field describe, long text areas neither
filterable nor aggregatable (and refused in WHERE), booleans not aggregatable."""

from __future__ import annotations

from typing import Any

import pytest
from crm_sandbox.salesforce.testing import session_fixtures
from simple_salesforce.exceptions import SalesforceMalformedRequest

sandbox, _fresh, sf = session_fixtures()

#: Keys of a field in a real org's describe (REST API Developer Guide, "sObject Describe";
#: the SOAP API's DescribeSObjectResult "Field").
FIELD_KEYS = {
    "aggregatable", "aiPredictionField", "autoNumber", "byteLength", "calculated", "calculatedFormula",
    "cascadeDelete", "caseSensitive", "compoundFieldName", "controllerName", "createable", "custom",
    "defaultValue", "defaultedOnCreate", "dependentPicklist", "deprecatedAndHidden", "digits",
    "displayLocationInDecimal", "encrypted", "externalId", "extraTypeInfo", "filterable",
    "filteredLookupInfo", "formulaTreatNullNumberAsZero", "groupable", "highScaleNumber", "htmlFormatted",
    "idLookup", "inlineHelpText", "label", "length", "mask", "maskType", "name", "nameField",
    "namePointing", "nillable", "permissionable", "picklistValues", "polymorphicForeignKey", "precision",
    "queryByDistance", "referenceTargetField", "referenceTo", "relationshipName", "relationshipOrder",
    "restrictedPicklist", "scale", "searchPrefilterable", "soapType", "sortable", "type", "unique",
    "updateable", "writeRequiresMasterRead",
}  # fmt: skip


def fields(sf: Any, sobject: str) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in getattr(sf, sobject).describe()["fields"]}


def test_every_field_has_the_keys_of_a_real_describe(sf: Any) -> None:
    for sobject in ("Account", "Contact", "Lead", "Opportunity"):
        for name, described in fields(sf, sobject).items():
            assert set(described) >= FIELD_KEYS, (sobject, name, FIELD_KEYS - set(described))


def test_describe_flags(sf: Any) -> None:
    account = fields(sf, "Account")
    assert (account["Description"]["filterable"], account["Description"]["aggregatable"]) == (False, False)
    assert account["Name"]["filterable"] is True
    assert account["IsDeleted"]["aggregatable"] is False
    assert account["OwnerId"]["searchPrefilterable"] is True
    opportunity = fields(sf, "Opportunity")
    assert (opportunity["IsWon"]["calculated"], opportunity["IsWon"]["createable"]) == (True, False)
    assert opportunity["StageName"]["restrictedPicklist"] is True
    assert opportunity["Id"]["createable"] is False


def test_long_text_area_cannot_be_filtered(sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.query("SELECT Id FROM Account WHERE Description = 'x'")
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "can not be filtered" in refused.value.content[0]["message"]


# -- compound fields (SOAP API Developer Guide, "Compound Fields") ---------------------------------
def test_describe_names_compound_fields(sf: Any) -> None:
    account = fields(sf, "Account")
    assert account["BillingAddress"]["type"] == "address"
    assert (account["BillingAddress"]["createable"], account["BillingAddress"]["filterable"]) == (
        False,
        False,
    )
    assert account["BillingCity"]["compoundFieldName"] == "BillingAddress"
    assert account["Name"]["compoundFieldName"] is None
    contact = fields(sf, "Contact")
    assert (contact["FirstName"]["compoundFieldName"], contact["LastName"]["compoundFieldName"]) == (
        "Name",
        "Name",
    )


def test_address_reads_as_one_value_and_follows_its_components(sf: Any) -> None:
    row = sf.query("SELECT BillingAddress FROM Account WHERE Name = 'Globex'")["records"][0]
    assert row["BillingAddress"] == {
        "city": None, "country": "Germany", "geocodeAccuracy": None, "latitude": None, "longitude": None,
        "postalCode": None, "state": None, "street": None,
    }  # fmt: skip
    globex = sf.query("SELECT Id FROM Account WHERE Name = 'Globex'")["records"][0]["Id"]
    sf.Account.update(globex, {"BillingCity": "Berlin"})
    assert sf.Account.get(globex)["BillingAddress"]["city"] == "Berlin"
    assert (
        sf.query("SELECT BillingAddress FROM Account WHERE Name = 'Initech'")["records"][0]["BillingAddress"]
        is None
    )


@pytest.mark.parametrize(
    "soql",
    ["SELECT Id FROM Account WHERE BillingAddress = null", "SELECT Id FROM Account ORDER BY BillingAddress"],
)
def test_address_cannot_be_filtered_or_sorted(sf: Any, soql: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.query(soql)
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_address_cannot_be_written(sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Account.create({"Name": "Addr", "BillingAddress": {"city": "Paris"}})
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_bulk_queries_refuse_compound_fields(sf: Any) -> None:
    from simple_salesforce.exceptions import SalesforceGeneralError

    with pytest.raises(SalesforceGeneralError) as v1:
        sf.bulk.Account.query("SELECT Id, BillingAddress FROM Account")
    assert "Cannot serialize value for 'BillingAddress'" in str(v1.value)
    with pytest.raises(SalesforceMalformedRequest) as v2:
        list(sf.bulk2.Account.query("SELECT Id, BillingAddress FROM Account"))
    assert "Cannot serialize value for 'BillingAddress' in CSV format" in str(v2.value.content)


def test_bulk_2_query_jobs_refuse_aggregates_of_a_field(sf: Any) -> None:
    """``COUNT(Id)`` now compiles as an aggregate query; Bulk API 2.0 still refuses it."""
    with pytest.raises(SalesforceMalformedRequest) as refused:
        list(sf.bulk2.Account.query("SELECT COUNT(Id) FROM Account"))
    assert "Aggregate queries are not supported" in str(refused.value.content)
