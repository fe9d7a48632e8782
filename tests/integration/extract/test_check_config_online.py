"""``crm-sync check-config --online``: mapped fields checked against the org's describe and the
portal's properties, over HTTP through the real clients to the sandbox."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from crm_sync.cli import main
from crm_sync.settings import default_config_path

from .support import Sandbox


def _check(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["check-config", "--online", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_shipped_config_is_valid_against_a_default_org_and_portal(
    sandbox_for: Callable[..., Sandbox], capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox_for({"salesforce": {}, "hubspot": {}})
    code, out, err = _check(capsys, str(default_config_path()))
    assert (code, err) == (0, "")
    assert "valid (mapped fields checked against the org and the portal)" in out


def test_a_field_the_org_or_the_portal_lacks_fails_naming_the_key(
    sandbox_for: Callable[..., Sandbox], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Both fields are in crm-sync's catalog, so the offline check passes; but this org's admin
    never created the custom ``HubSpot_Id__c`` on Account, and the portal's custom
    ``crm_sync_manual_sync`` company property was archived."""
    box = sandbox_for(
        {"salesforce": {}, "hubspot": {}},
        options={"salesforce": {"hubspot_id_objects": ["Contact", "Lead", "Opportunity"]}},
    )
    box.hubspot().crm.properties.core_api.archive(
        object_type="companies", property_name="crm_sync_manual_sync"
    )
    raw = yaml.safe_load(default_config_path().read_text())
    mapping = {"salesforce": "HubSpot_Id__c", "hubspot": "crm_sync_manual_sync", "rule": "none"}
    raw["field_mappings"]["accounts"].append(mapping)
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump(raw))

    assert main(["check-config", str(path)]) == 0, "offline, both fields are known to the catalog"
    capsys.readouterr()
    code, out, err = _check(capsys, str(path))
    assert (code, out) == (2, "")
    sf_key, hs_key = "field_mappings.accounts[9].salesforce", "field_mappings.accounts[9].hubspot"
    assert f"key '{sf_key}' is 'HubSpot_Id__c', not a field of Salesforce Account in this org" in err
    assert f"key '{hs_key}' is 'crm_sync_manual_sync', not a field of HubSpot companies in this portal" in err
    assert err.count("key '") == 2, "only the missing fields are named"
