"""The ``quality:`` section of the sync configuration: defaults, overrides, keys named on errors."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from crm_sync.settings import ConfigError, QualitySettings, default_config_path, load_config, parse_config


def _raw() -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(default_config_path().read_text())
    return raw


def test_the_shipped_default_documents_the_defaults() -> None:
    assert load_config(default_config_path()).quality == QualitySettings(
        failure_threshold=0.05, min_rows=50, examples=5, trend_runs=10
    )


def test_a_config_without_the_section_gets_the_defaults() -> None:
    raw = _raw()
    raw.pop("quality")
    assert parse_config(raw).quality == QualitySettings()


def test_overrides_are_read() -> None:
    raw = _raw()
    raw["quality"] = {"failure_threshold": 0.2, "min_rows": 3}
    quality = parse_config(raw).quality
    assert (quality.failure_threshold, quality.min_rows, quality.examples) == (0.2, 3, 5)


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"failure_threshold": 5}, "quality.failure_threshold"),
        ({"failure_threshold": "5%"}, "quality.failure_threshold"),
        ({"min_rows": -1}, "quality.min_rows"),
        ({"threshold": 0.1}, "quality.threshold"),
    ],
)
def test_a_bad_value_names_its_key(section: dict[str, Any], key: str) -> None:
    raw = _raw()
    raw["quality"] = section
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        parse_config(raw)
