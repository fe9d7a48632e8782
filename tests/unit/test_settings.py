"""The sync configuration: the shipped default loads, and each mistake names its key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from crm_sync.settings import ConfigError, default_config_path, load_config, parse_config


def _default() -> dict:
    return yaml.safe_load(default_config_path().read_text())


def test_shipped_default_config_is_valid_and_documented_values_hold() -> None:
    config = load_config(default_config_path())
    assert config.integration_user_email == "integration@northwind-demo.com"
    assert config.contacts_default_object == "Lead"
    assert [c.operator for c in config.inclusion_list] == ["known", "in"]
    assert config.enabled_at("opportunities").isoformat() == "2026-01-01T00:00:00+00:00"
    # DEAL-1: create date flows SF -> HS only.
    rules = {m.salesforce: m.rule for m in config.mappings("opportunities")}
    assert rules["CreatedDate"] == "always_salesforce"


def test_crm_sync_config_env_var_selects_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _default()
    raw["contacts"]["default_object"] = "Contact"
    path = tmp_path / "sync.yaml"
    path.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("CRM_SYNC_CONFIG", str(path))
    assert load_config().contacts_default_object == "Contact"


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda c: c["contacts"].update(default_object="Account"), "contacts.default_object"),
        (lambda c: c["sync_enabled_at"].update(accounts="yesterday"), "sync_enabled_at.accounts"),
        (lambda c: c["sync_enabled_at"].pop("contacts"), "sync_enabled_at.contacts"),
        (lambda c: c.update(integration_user_email="nobody"), "integration_user_email"),
        (
            lambda c: c["contacts"]["inclusion_list"].append({"property": "x", "operator": "like"}),
            "contacts.inclusion_list[2].operator",
        ),
        (
            lambda c: c["field_mappings"]["accounts"][0].update(rule="sometimes"),
            "field_mappings.accounts[0].rule",
        ),
        (lambda c: c["companies"].update(sync="yes"), "companies.sync"),
        (lambda c: c.update(deal_sync=True), "deal_sync"),
        (lambda c: c["extract"].update(chunk_size=0), "extract.chunk_size"),
    ],
)
def test_invalid_config_error_names_the_key(mutate, key: str) -> None:
    raw = _default()
    mutate(raw)
    with pytest.raises(ConfigError, match=re.escape(f"key '{key}'")):
        parse_config(raw, source="test.yaml")


def test_missing_file_says_which_env_var_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CRM_SYNC_CONFIG"):
        load_config(tmp_path / "absent.yaml")
