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
