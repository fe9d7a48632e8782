"""SYNC-2 field mappings: the built-in ones, how the config adds to them, and the catalog check.

A sync with no ``field_mappings`` still has to carry what identifies a record: a company
created without its name, or a contact without its email, is a record nobody can find or match
again. So the identity fields of each object pair, and DEAL-1's standard deal fields, are built
in (as in HubSpot's own Salesforce integration, whose default mappings cover them); the config's
``field_mappings`` add fields, or override a built-in one by naming the same Salesforce field or
HubSpot property (``rule: none`` switches one off).

Every mapped field must be one crm-sync extracts (:mod:`crm_sync.catalog`): a field it never
reads can never sync, and a misspelled one (``Nmae``) would silently plan creates without a
name. :func:`catalog_problem` says what is wrong, with the closest real name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from crm_sync.catalog import stream

MappingRule = Literal["two_way", "prefer_salesforce", "always_salesforce", "hubspot_to_salesforce", "none"]
Side = Literal["salesforce", "hubspot"]
SIDES: tuple[Side, ...] = ("salesforce", "hubspot")

MAPPING_RULES: tuple[str, ...] = (
    "two_way",
    "prefer_salesforce",
    "always_salesforce",
    "hubspot_to_salesforce",
    "none",
)
#: Mapping groups: which Salesforce object pairs with which HubSpot object.
MAPPING_PAIRS: dict[str, tuple[str, str]] = {
    "accounts": ("Account", "companies"),
    "contacts": ("Contact", "contacts"),
    "leads": ("Lead", "contacts"),
    "opportunities": ("Opportunity", "deals"),
}


@dataclass(frozen=True)
class FieldMapping:
    """SYNC-2: one mapped field of an object pair and the rule that decides its direction.

    ``values`` (picklist <-> enumeration pairs only): Salesforce value -> HubSpot value
    overrides of the value map, which otherwise matches by label or value, case-insensitively.
    """

    salesforce: str
    hubspot: str
    rule: MappingRule
    values: tuple[tuple[str, str], ...] = ()


def _two_way(*pairs: tuple[str, str]) -> tuple[FieldMapping, ...]:
    return tuple(FieldMapping(sf, hs, "two_way") for sf, hs in pairs)


_PERSON = (("FirstName", "firstname"), ("LastName", "lastname"), ("Email", "email"))

#: Mappings every sync has without configuring them. The stage and pipeline (DEAL-2), owners
#: (OWN-*), record types and the link ids are decided by their own rules, never mapped. The
#: website feeds HubSpot's ``domain`` (its company dedupe key) and Salesforce stays its source.
BUILT_IN_MAPPINGS: dict[str, tuple[FieldMapping, ...]] = {
    "accounts": (
        FieldMapping("Name", "name", "two_way"),
        FieldMapping("Website", "domain", "prefer_salesforce"),
    ),
    "contacts": _two_way(*_PERSON),
    "leads": _two_way(*_PERSON, ("Company", "company")),
    "opportunities": _two_way(("Name", "dealname"), ("Amount", "amount"), ("CloseDate", "closedate")),
}


def built_in_key(group: str, mapping: FieldMapping) -> str:
    """How a message names a built-in mapping (it has no key in the file)."""
    return f"built-in {group} mapping {mapping.salesforce} <-> {mapping.hubspot}"


def side_key(key: str, side: Side) -> str:
    """The key of one side of a mapping named ``key`` (see :func:`keyed_mappings`)."""
    return f"{key}.{side}" if key.startswith("field_mappings.") else f"{key} ({side} side)"


def keyed_mappings(group: str, configured: tuple[FieldMapping, ...]) -> tuple[tuple[str, FieldMapping], ...]:
    """The mappings of ``group`` in force, each with the key that names it in messages.

    The built-ins not overridden by ``configured`` (same Salesforce field or same HubSpot
    property: two mappings must never write one field), then ``configured`` in file order.
    """
    sf_fields = {m.salesforce for m in configured}
    hs_fields = {m.hubspot for m in configured}
    kept = tuple(
        (built_in_key(group, m), m)
        for m in BUILT_IN_MAPPINGS.get(group, ())
        if m.salesforce not in sf_fields and m.hubspot not in hs_fields
    )
    return kept + tuple((f"field_mappings.{group}[{i}]", m) for i, m in enumerate(configured))


def effective_mappings(group: str, configured: tuple[FieldMapping, ...]) -> tuple[FieldMapping, ...]:
    """The mappings of ``group`` in force: :func:`keyed_mappings` without the keys."""
    return tuple(m for _, m in keyed_mappings(group, configured))


def object_of(group: str, side: Side) -> str:
    """The Salesforce object or HubSpot object type a group's mappings name on ``side``."""
    sf_object, hs_object = MAPPING_PAIRS[group]
    return sf_object if side == "salesforce" else hs_object


def describe_object(group: str, side: Side) -> str:
    """``Salesforce Account`` / ``HubSpot companies``: how messages name one side of a group."""
    return f"{'Salesforce' if side == 'salesforce' else 'HubSpot'} {object_of(group, side)}"


def unknown_field_problem(name: str, known: tuple[str, ...] | set[str], where: str) -> str | None:
    """``None`` if ``name`` is in ``known``, else why not, with the closest name (``did you mean``)."""
    if name in known:
        return None
    by_lower = {k.lower(): k for k in sorted(known)}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    hint = f" (did you mean {by_lower[close[0]]!r}?)" if close else ""
    return f"is {name!r}, not a field of {where}{hint}"


def catalog_problem(group: str, side: Side, name: str) -> str | None:
    """Why ``name`` cannot be mapped on ``side`` of ``group``: crm-sync does not extract it."""
    fields = stream(side, object_of(group, side)).field_names
    return unknown_field_problem(name, fields, describe_object(group, side))
