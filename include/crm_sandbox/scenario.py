"""Scenario files: load, validate the shape, and find the bundled ones.

A scenario is the seed data of both emulators (DESIGN.md, "Scenario files")::

    {"salesforce": {"<SObject>": [records with Salesforce field names, "Id" optional]},
     "hubspot": {"owners": [...], "companies"|"contacts"|"deals": [{"id", "properties", ...}],
                 "pipelines": {"deals": [...]},
                 "associations": [{"from": ["contacts", id], "to": ["companies", id], "typeId": n}]},
     "tokens": ["..."]}

Validation here is about shape, not business meaning: a typo such as ``"Acount"`` or
``"hubspot.company"`` would otherwise load as an empty org and make a test pass for the wrong
reason, so every error names the offending key path (``salesforce.Acount``,
``hubspot.associations[3].from``). Field-level checks stay with the emulators, which know their
schemas.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

#: Salesforce objects a scenario may seed (``AssignmentRule`` drives lead assignment, OWN-2/3),
#: in the order the emulator loads them (parents before the records that reference them).
SALESFORCE_OBJECTS = (
    "User",
    "RecordType",
    "OpportunityStage",
    "AssignmentRule",
    "Account",
    "Contact",
    "Lead",
    "Opportunity",
    "OpportunityContactRole",
)
HUBSPOT_OBJECTS = ("companies", "contacts", "deals")
#: ``properties`` declares custom property definitions per object type (the HubSpot emulator's
#: extension), e.g. ``{"contacts": [{"name": "favourite_colour", "type": "string", ...}]}``.
HUBSPOT_KEYS = ("owners", "properties", "pipelines", *HUBSPOT_OBJECTS, "associations")
#: ``description`` is free text for people reading the file; the emulators ignore it.
TOP_LEVEL_KEYS = ("description", "salesforce", "hubspot", "tokens")


class ScenarioError(ValueError):
    """A scenario file that cannot be loaded; the message names the file and the bad key."""


def _fail(source: str, where: str, problem: str) -> ScenarioError:
    return ScenarioError(f"{source}: {where}: {problem}")


def _expect_list(source: str, where: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(source, where, f"must be a list, got {type(value).__name__}")
    return value


def _expect_object(source: str, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(source, where, f"must be an object, got {type(value).__name__}")
    return value


def _check_unknown(source: str, where: str, keys: Any, allowed: tuple[str, ...]) -> None:
    for key in keys:
        if key not in allowed:
            prefix = f"{where}.{key}" if where else str(key)
            raise _fail(source, prefix, f"unknown key; expected one of {', '.join(allowed)}")


def validate_scenario(data: Any, source: str = "scenario") -> dict[str, Any]:
    """Check the top-level shape of a scenario and return it unchanged.

    Raises :class:`ScenarioError` naming the offending key path. Checks: known top-level,
    Salesforce object and HubSpot keys; lists of objects; unique ``Id`` per Salesforce object and
    ``id`` per HubSpot object; HubSpot ``properties`` being objects; pipelines with stage lists;
    associations naming a known object type and an id on both ends.
    """
    top = _expect_object(source, "scenario", data)
    _check_unknown(source, "", top, TOP_LEVEL_KEYS)
    if "description" in top and not isinstance(top["description"], str | list):
        raise _fail(source, "description", "must be text (or a list of lines)")
    _validate_salesforce(source, top.get("salesforce", {}))
    _validate_hubspot(source, top.get("hubspot", {}))
    if "tokens" in top:
        tokens = _expect_list(source, "tokens", top["tokens"])
        for i, token in enumerate(tokens):
            if not isinstance(token, str) or not token:
                raise _fail(source, f"tokens[{i}]", "must be a non-empty string")
    return top


def _validate_salesforce(source: str, raw: Any) -> None:
    salesforce = _expect_object(source, "salesforce", raw)
    _check_unknown(source, "salesforce", salesforce, SALESFORCE_OBJECTS)
    for name, records in salesforce.items():
        where = f"salesforce.{name}"
        seen: set[str] = set()
        for i, record in enumerate(_expect_list(source, where, records)):
            if not isinstance(record, dict):
                raise _fail(source, f"{where}[{i}]", f"must be an object, got {type(record).__name__}")
            record_id = record.get("Id")
            if record_id is None:
                continue
            if not isinstance(record_id, str) or len(record_id) not in (15, 18):
                raise _fail(
                    source, f"{where}[{i}].Id", f"must be a 15- or 18-character Id, got {record_id!r}"
                )
            if record_id in seen:
                raise _fail(source, f"{where}[{i}].Id", f"duplicate Id {record_id}")
            seen.add(record_id)


def _validate_hubspot(source: str, raw: Any) -> None:
    hubspot = _expect_object(source, "hubspot", raw)
    _check_unknown(source, "hubspot", hubspot, HUBSPOT_KEYS)
    for i, owner in enumerate(_expect_list(source, "hubspot.owners", hubspot.get("owners", []))):
        _expect_object(source, f"hubspot.owners[{i}]", owner)
    for name in HUBSPOT_OBJECTS:
        where = f"hubspot.{name}"
        seen: set[str] = set()
        for i, raw_record in enumerate(_expect_list(source, where, hubspot.get(name, []))):
            record = _expect_object(source, f"{where}[{i}]", raw_record)
            _check_unknown(
                source,
                f"{where}[{i}]",
                record,
                ("id", "properties", "createdAt", "updatedAt", "archived", "archivedAt"),
            )
            if "properties" in record:
                _expect_object(source, f"{where}[{i}].properties", record["properties"])
            if "id" in record:
                key = str(record["id"])
                if not key.isdigit():
                    raise _fail(source, f"{where}[{i}].id", f"must be numeric, got {record['id']!r}")
                if key in seen:
                    raise _fail(source, f"{where}[{i}].id", f"duplicate id {key}")
                seen.add(key)
    properties = _expect_object(source, "hubspot.properties", hubspot.get("properties", {}))
    _check_unknown(source, "hubspot.properties", properties, HUBSPOT_OBJECTS)
    for name, definitions in properties.items():
        for i, definition in enumerate(_expect_list(source, f"hubspot.properties.{name}", definitions)):
            _expect_object(source, f"hubspot.properties.{name}[{i}]", definition)
    pipelines = _expect_object(source, "hubspot.pipelines", hubspot.get("pipelines", {}))
    _check_unknown(source, "hubspot.pipelines", pipelines, ("deals",))
    for i, raw_pipeline in enumerate(
        _expect_list(source, "hubspot.pipelines.deals", pipelines.get("deals", []))
    ):
        where = f"hubspot.pipelines.deals[{i}]"
        pipeline = _expect_object(source, where, raw_pipeline)
        if not pipeline.get("label"):
            raise _fail(source, f"{where}.label", "is required")
        for j, raw_stage in enumerate(_expect_list(source, f"{where}.stages", pipeline.get("stages", []))):
            stage = _expect_object(source, f"{where}.stages[{j}]", raw_stage)
            if not stage.get("label"):
                raise _fail(source, f"{where}.stages[{j}].label", "is required")
    for i, raw_assoc in enumerate(
        _expect_list(source, "hubspot.associations", hubspot.get("associations", []))
    ):
        where = f"hubspot.associations[{i}]"
        assoc = _expect_object(source, where, raw_assoc)
        _check_unknown(source, where, assoc, ("from", "to", "typeId", "category"))
        for end in ("from", "to"):
            value = assoc.get(end)
            if (
                not isinstance(value, list)
                or len(value) != 2
                or value[0] not in HUBSPOT_OBJECTS
                or value[1] in (None, "")
            ):
                raise _fail(
                    source, f"{where}.{end}", f'must be ["companies"|"contacts"|"deals", <id>], got {value!r}'
                )
        if "typeId" in assoc and (not isinstance(assoc["typeId"], int) or isinstance(assoc["typeId"], bool)):
            raise _fail(source, f"{where}.typeId", f"must be an integer, got {assoc['typeId']!r}")


# ------------------------------------------------------------------------------------------------
# Loading and bundled scenarios
# ------------------------------------------------------------------------------------------------


def bundled_scenarios() -> list[str]:
    """Names of the scenarios shipped in ``crm_sandbox/scenarios`` (e.g. ``demo``)."""
    folder = resources.files("crm_sandbox") / "scenarios"
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def bundled_path(name: str) -> Path:
    """Path of a bundled scenario by name; :class:`ScenarioError` lists the names if unknown."""
    names = bundled_scenarios()
    if name not in names:
        raise ScenarioError(f"no bundled scenario {name!r}; bundled: {', '.join(names) or 'none'}")
    return Path(str(resources.files("crm_sandbox") / "scenarios" / f"{name}.json"))


def resolve_scenario_path(path_or_name: str | Path) -> Path:
    """A file path as given, or a bundled scenario's path when the argument is a bare name."""
    path = Path(path_or_name)
    if path.exists():
        return path
    text = str(path_or_name)
    if "/" not in text and not text.endswith(".json"):
        return bundled_path(text)
    raise ScenarioError(f"{text}: no such scenario file")


def load_scenario(path_or_name: str | Path) -> dict[str, Any]:
    """Read and validate a scenario file (or a bundled scenario by name, e.g. ``"demo"``)."""
    path = resolve_scenario_path(path_or_name)
    try:
        with path.open("rb") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise ScenarioError(
            f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from exc
    return validate_scenario(data, source=str(path))


def record_counts(scenario: Mapping[str, Any]) -> dict[str, int]:
    """Records per object, keyed ``salesforce.Account``, ``hubspot.deals``, ... (non-empty only)."""
    counts: dict[str, int] = {}
    for name, records in (scenario.get("salesforce") or {}).items():
        if records:
            counts[f"salesforce.{name}"] = len(records)
    hubspot = scenario.get("hubspot") or {}
    for name in ("owners", *HUBSPOT_OBJECTS, "associations"):
        if hubspot.get(name):
            counts[f"hubspot.{name}"] = len(hubspot[name])
    pipelines = (hubspot.get("pipelines") or {}).get("deals") or []
    if pipelines:
        counts["hubspot.pipelines"] = len(pipelines)
    return counts
