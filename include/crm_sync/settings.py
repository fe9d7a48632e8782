"""Typed sync configuration, read from the YAML file named by ``CRM_SYNC_CONFIG``.

The file is validated as a whole before any work starts: the first task of every DAG loads it,
so a typo fails the run at once with a message that names the key, instead of half a sync later.
The environment is read when :func:`load_config` is called, never at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from crm_sync.mappings import (
    MAPPING_PAIRS,
    MAPPING_RULES,
    SIDES,
    FieldMapping,
    MappingRule,
    Side,
    catalog_problem,
    effective_mappings,
)

#: Public names; the mapping types live in :mod:`crm_sync.mappings` and are re-exported here.
__all__ = [
    "ENV_VAR",
    "MAPPING_PAIRS",
    "MAPPING_RULES",
    "OPERATORS",
    "ConfigError",
    "DefaultObject",
    "ExtractSettings",
    "FieldMapping",
    "InclusionCondition",
    "MappingRule",
    "ObjectKind",
    "Operator",
    "QualitySettings",
    "SyncConfig",
    "config_path",
    "default_config_path",
    "load_config",
    "parse_config",
]

DefaultObject = Literal["Lead", "Contact"]
Operator = Literal["eq", "neq", "in", "known", "not_known"]
ObjectKind = Literal["accounts", "contacts", "opportunities"]

OPERATORS: tuple[str, ...] = ("eq", "neq", "in", "known", "not_known")
ENV_VAR = "CRM_SYNC_CONFIG"


class ConfigError(ValueError):
    """The sync configuration is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class InclusionCondition:
    """One condition of the contact inclusion list (CON-2); conditions are ANDed."""

    property: str
    operator: Operator
    value: Any = None


@dataclass(frozen=True)
class ExtractSettings:
    """Operational knobs for extraction (SYNC-1 overlap, Bulk API 2.0 threshold and polling)."""

    overlap: timedelta = timedelta(minutes=5)
    bulk_threshold: int = 10_000
    bulk_poll_seconds: float = 2.0
    chunk_size: int = 2_000


@dataclass(frozen=True)
class QualitySettings:
    """Validation gate and report knobs (issue 15).

    ``failure_threshold``: the share of an object's rows failing an expectation above which the
    run stops before loading (SYNC-5 keeps the failing rows in quarantine either way);
    ``min_rows``: objects with fewer rows never trip the gate (two bad rows out of ten is noise,
    not a broken source); ``examples``: examples per field in the report; ``trend_runs``: runs
    the report's trend chart covers.
    """

    failure_threshold: float = 0.05
    min_rows: int = 50
    examples: int = 5
    trend_runs: int = 10


@dataclass(frozen=True)
class SyncConfig:
    """The whole sync configuration, validated."""

    integration_user_email: str
    sync_enabled_at: dict[str, datetime]
    contacts_default_object: DefaultObject = "Lead"
    inclusion_list: tuple[InclusionCondition, ...] = ()
    companies_sync: bool = True
    deals_sync: bool = True
    field_mappings: dict[str, tuple[FieldMapping, ...]] = field(default_factory=dict)
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    quality: QualitySettings = field(default_factory=QualitySettings)
    source: str = "<defaults>"

    def enabled_at(self, kind: ObjectKind) -> datetime:
        return self.sync_enabled_at[kind]

    def mappings(self, group: str) -> tuple[FieldMapping, ...]:
        """SYNC-2: the group's built-in mappings with ``field_mappings`` added or overriding."""
        return effective_mappings(group, self.field_mappings.get(group, ()))


def default_config_path() -> Path:
    """The documented default shipped inside the package."""
    return Path(str(resources.files("crm_sync") / "default_config.yaml"))


def config_path() -> Path:
    """``CRM_SYNC_CONFIG`` if set, else the shipped default."""
    configured = os.environ.get(ENV_VAR)
    return Path(configured) if configured else default_config_path()


def load_config(path: str | Path | None = None) -> SyncConfig:
    """Read and validate the configuration; raise :class:`ConfigError` naming the bad key."""
    source = Path(path) if path is not None else config_path()
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"crm-sync config {source}: file not found (set {ENV_VAR})") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"crm-sync config {source}: not valid YAML: {exc}") from exc
    return parse_config(raw, source=str(source))


def parse_config(raw: Any, *, source: str = "<memory>") -> SyncConfig:
    """Validate an already-parsed YAML document into a :class:`SyncConfig`."""
    v = _Validator(source)
    doc = v.mapping(raw, "<root>")
    known = {
        "integration_user_email",
        "sync_enabled_at",
        "contacts",
        "companies",
        "deals",
        "field_mappings",
        "extract",
        "quality",
    }
    v.no_unknown(doc, known, "")

    email = v.string(doc.get("integration_user_email"), "integration_user_email")
    if "@" not in email:
        v.fail("integration_user_email", f"must be an email address (got {email!r})")

    enabled_raw = v.mapping(doc.get("sync_enabled_at"), "sync_enabled_at")
    v.no_unknown(enabled_raw, {"accounts", "contacts", "opportunities"}, "sync_enabled_at.")
    enabled = {
        kind: v.timestamp(enabled_raw.get(kind), f"sync_enabled_at.{kind}")
        for kind in ("accounts", "contacts", "opportunities")
    }

    contacts = v.mapping(doc.get("contacts", {}), "contacts")
    v.no_unknown(contacts, {"default_object", "inclusion_list"}, "contacts.")
    default_object = contacts.get("default_object", "Lead")
    if default_object not in ("Lead", "Contact"):
        v.fail("contacts.default_object", f"must be Lead or Contact (got {default_object!r})")
    conditions = tuple(
        _condition(v, item, f"contacts.inclusion_list[{i}]")
        for i, item in enumerate(v.sequence(contacts.get("inclusion_list", []), "contacts.inclusion_list"))
    )

    companies = v.mapping(doc.get("companies", {}), "companies")
    v.no_unknown(companies, {"sync"}, "companies.")
    deals = v.mapping(doc.get("deals", {}), "deals")
    v.no_unknown(deals, {"sync"}, "deals.")

    mappings_raw = v.mapping(doc.get("field_mappings", {}), "field_mappings")
    v.no_unknown(mappings_raw, set(MAPPING_PAIRS), "field_mappings.")
    mappings: dict[str, tuple[FieldMapping, ...]] = {}
    for group, entries in mappings_raw.items():
        items = v.sequence(entries, f"field_mappings.{group}")
        mappings[group] = tuple(
            _mapping(v, item, group, f"field_mappings.{group}[{i}]") for i, item in enumerate(items)
        )

    extract_raw = v.mapping(doc.get("extract", {}), "extract")
    v.no_unknown(
        extract_raw, {"overlap_minutes", "bulk_threshold", "bulk_poll_seconds", "chunk_size"}, "extract."
    )
    extract = ExtractSettings(
        overlap=timedelta(minutes=v.number(extract_raw.get("overlap_minutes", 5), "extract.overlap_minutes")),
        bulk_threshold=int(v.number(extract_raw.get("bulk_threshold", 10_000), "extract.bulk_threshold")),
        bulk_poll_seconds=v.number(extract_raw.get("bulk_poll_seconds", 2.0), "extract.bulk_poll_seconds"),
        chunk_size=int(v.number(extract_raw.get("chunk_size", 2_000), "extract.chunk_size", minimum=1)),
    )
    quality = _quality(v, doc.get("quality", {}))
    return SyncConfig(
        integration_user_email=email.strip().lower(),
        sync_enabled_at=enabled,
        contacts_default_object=cast(DefaultObject, default_object),
        inclusion_list=conditions,
        companies_sync=v.boolean(companies.get("sync", True), "companies.sync"),
        deals_sync=v.boolean(deals.get("sync", True), "deals.sync"),
        field_mappings=mappings,
        extract=extract,
        quality=quality,
        source=source,
    )


def _quality(v: _Validator, raw: Any) -> QualitySettings:
    doc = v.mapping(raw, "quality")
    v.no_unknown(doc, {"failure_threshold", "min_rows", "examples", "trend_runs"}, "quality.")
    threshold = v.number(doc.get("failure_threshold", 0.05), "quality.failure_threshold")
    if threshold > 1:
        v.fail("quality.failure_threshold", f"is a share of rows between 0 and 1 (got {threshold!r})")
    return QualitySettings(
        failure_threshold=threshold,
        min_rows=int(v.number(doc.get("min_rows", 50), "quality.min_rows")),
        examples=int(v.number(doc.get("examples", 5), "quality.examples", minimum=1)),
        trend_runs=int(v.number(doc.get("trend_runs", 10), "quality.trend_runs", minimum=1)),
    )


def _condition(v: _Validator, raw: Any, key: str) -> InclusionCondition:
    item = v.mapping(raw, key)
    v.no_unknown(item, {"property", "operator", "value"}, f"{key}.")
    prop = v.string(item.get("property"), f"{key}.property")
    op = item.get("operator")
    if op not in OPERATORS:
        v.fail(f"{key}.operator", f"must be one of {', '.join(OPERATORS)} (got {op!r})")
    value = item.get("value")
    if op in ("eq", "neq") and value is None:
        v.fail(f"{key}.value", f"is required for operator {op}")
    if op == "in":
        value = tuple(v.sequence(value, f"{key}.value"))
    return InclusionCondition(property=prop, operator=cast(Operator, op), value=value)


def _mapping(v: _Validator, raw: Any, group: str, key: str) -> FieldMapping:
    """One ``field_mappings`` entry; both fields must be ones crm-sync extracts (the catalog)."""
    item = v.mapping(raw, key)
    v.no_unknown(item, {"salesforce", "hubspot", "rule", "values"}, f"{key}.")
    rule = item.get("rule")
    if rule not in MAPPING_RULES:
        v.fail(f"{key}.rule", f"must be one of {', '.join(MAPPING_RULES)} (got {rule!r})")
    values = v.mapping(item.get("values") or {}, f"{key}.values")
    for sf_value, hs_value in values.items():
        v.string(hs_value, f"{key}.values.{sf_value}")
    names: dict[Side, str] = {side: v.string(item.get(side), f"{key}.{side}") for side in SIDES}
    for side, name in names.items():
        problem = catalog_problem(group, side, name)
        if problem:
            v.fail(f"{key}.{side}", problem)
    return FieldMapping(
        salesforce=names["salesforce"],
        hubspot=names["hubspot"],
        rule=cast(MappingRule, rule),
        values=tuple((str(k), str(val)) for k, val in values.items()),
    )


class _Validator:
    """Small typed checks that raise :class:`ConfigError` with the file and dotted key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> Any:
        raise ConfigError(f"crm-sync config {self.source}: key '{key}' {problem}")

    def mapping(self, value: Any, key: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(key, f"must be a mapping (got {type(value).__name__})")
        return cast(dict[str, Any], value)

    def sequence(self, value: Any, key: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(key, f"must be a list (got {type(value).__name__})")
        return cast(list[Any], value)

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(key, "is required and must be a non-empty string")
        return cast(str, value)

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            self.fail(key, f"must be true or false (got {value!r})")
        return cast(bool, value)

    def number(self, value: Any, key: str, minimum: float = 0) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            self.fail(key, f"must be a number >= {minimum} (got {value!r})")
        return float(value)

    def timestamp(self, value: Any, key: str) -> datetime:
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return cast(datetime, self.fail(key, f"must be an ISO 8601 timestamp (got {value!r})"))
        else:
            return cast(datetime, self.fail(key, "is required and must be an ISO 8601 timestamp"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def no_unknown(self, doc: dict[str, Any], known: set[str], prefix: str) -> None:
        unknown = sorted(set(doc) - known)
        if unknown:
            self.fail(f"{prefix}{unknown[0]}", f"is not a known setting (known: {', '.join(sorted(known))})")
