"""Factories of staged frames and configs for the rule tests (owners, contacts and accounts use
them directly; :mod:`tests.unit.rules.deal_world` builds the deal worlds on them).

Frames are built the way staging hands them to the rules: one column per catalog field of the
stream (so a test never passes because a column happened to be missing), plus ``_deleted``.
Only the values a test cares about are given; everything else is blank.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from crm_sync.catalog import stream
from crm_sync.rules.inputs import RuleInputs
from crm_sync.rules.owners import OwnerMap, build_owner_map
from crm_sync.settings import SyncConfig, parse_config

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ENABLED = "2026-01-01T00:00:00Z"
BEFORE = "2025-06-01T00:00:00.000+0000"
AFTER = "2026-03-01T00:00:00.000+0000"
INTEGRATION_EMAIL = "integration@example.com"


def staged(
    system: str, name: str, rows: Sequence[Mapping[str, Any]], *, as_object: bool = False
) -> pd.DataFrame:
    """A staged frame of a catalog stream: every catalog column, ``_deleted`` False by default.

    ``as_object``: every column of ``object`` dtype (as frames read back from the staging
    database are), instead of the dtypes pandas infers from the values.
    """
    columns = [*stream(system, name).field_names, "_deleted"]  # type: ignore[arg-type]
    records = [{"_deleted": False, **row} for row in rows]
    unknown = {k for r in records for k in r} - set(columns)
    if unknown:
        raise KeyError(f"{system} {name} has no catalog fields {sorted(unknown)}")
    frame = pd.DataFrame.from_records(records, columns=columns)
    return frame.astype(object) if as_object else frame


def sf(name: str, *rows: Mapping[str, Any]) -> pd.DataFrame:
    return staged("salesforce", name, rows)


def hs(name: str, *rows: Mapping[str, Any]) -> pd.DataFrame:
    return staged("hubspot", name, rows)


def user(
    uid: str, email: str, first: str = "Ann", last: str = "Lee", *, active: bool = True, **extra: Any
) -> dict[str, Any]:
    return {
        "Id": uid,
        "Email": email,
        "FirstName": first,
        "LastName": last,
        "Name": f"{first} {last}",
        "IsActive": active,
        **extra,
    }


def owner(oid: str, email: str, first: str = "Ann", last: str = "Lee", **extra: Any) -> dict[str, Any]:
    return {"id": oid, "email": email, "firstName": first, "lastName": last, "archived": False, **extra}


def integration_user(uid: str = "005INT") -> dict[str, Any]:
    return user(uid, INTEGRATION_EMAIL, "Integration", "User")


def associations(*pairs: tuple[str, str]) -> pd.DataFrame:
    """contacts -> companies associations, as staged in ``hs_association``."""
    return pd.DataFrame(
        {
            "from_object": ["contacts"] * len(pairs),
            "from_id": [c for c, _ in pairs],
            "to_object": ["companies"] * len(pairs),
            "to_id": [co for _, co in pairs],
            "type_id": [1] * len(pairs),
            "_deleted": [False] * len(pairs),
        }
    )


def links(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """Staging link table rows ``(object, sf_id, hs_id)``."""
    return pd.DataFrame(
        {
            "object": [r[0] for r in rows],
            "sf_id": [r[1] for r in rows],
            "hs_id": [r[2] for r in rows],
            "linked_at": ["2026-02-01T00:00:00Z"] * len(rows),
        }
    )


#: The default inclusion list of the test configs (CON-2).
INCLUSION_LIST: list[dict[str, Any]] = [
    {"property": "email", "operator": "known"},
    {"property": "lifecyclestage", "operator": "in", "value": ["salesqualifiedlead", "customer"]},
]
ACCOUNT_MAPPINGS: list[dict[str, str]] = [
    {"salesforce": "Name", "hubspot": "name", "rule": "two_way"},
    {"salesforce": "Website", "hubspot": "domain", "rule": "prefer_salesforce"},
]
CONTACT_MAPPINGS: list[dict[str, str]] = [
    {"salesforce": "FirstName", "hubspot": "firstname", "rule": "two_way"},
    {"salesforce": "LastName", "hubspot": "lastname", "rule": "two_way"},
    {"salesforce": "Email", "hubspot": "email", "rule": "two_way"},
]
LEAD_MAPPINGS: list[dict[str, str]] = [
    {"salesforce": "LastName", "hubspot": "lastname", "rule": "two_way"},
    {"salesforce": "Email", "hubspot": "email", "rule": "two_way"},
    {"salesforce": "Company", "hubspot": "company", "rule": "two_way"},
]


def config(
    *,
    default_object: str = "Lead",
    inclusion_list: Sequence[Mapping[str, Any]] | None = None,
    companies_sync: bool = True,
    integration_email: str = INTEGRATION_EMAIL,
    deals_sync: bool | None = None,
    leads: Sequence[Mapping[str, Any]] = LEAD_MAPPINGS,
    opportunities: Sequence[Mapping[str, Any]] | None = None,
) -> SyncConfig:
    """A validated config like the shipped default, with the knobs the rules read.

    ``deals_sync`` and ``opportunities`` are left to the config's defaults unless given.
    """
    if inclusion_list is None:
        inclusion_list = INCLUSION_LIST
    raw: dict[str, Any] = {
        "integration_user_email": integration_email,
        "sync_enabled_at": {"accounts": ENABLED, "contacts": ENABLED, "opportunities": ENABLED},
        "contacts": {"default_object": default_object, "inclusion_list": list(inclusion_list)},
        "companies": {"sync": companies_sync},
    }
    if deals_sync is not None:
        raw["deals"] = {"sync": deals_sync}
    mappings: dict[str, Any] = {
        "accounts": ACCOUNT_MAPPINGS,
        "contacts": CONTACT_MAPPINGS,
        "leads": list(leads),
    }
    if opportunities is not None:
        mappings["opportunities"] = list(opportunities)
    raw["field_mappings"] = mappings
    return parse_config(raw)


def inputs(**frames: pd.DataFrame) -> RuleInputs:
    return RuleInputs(now=NOW, **frames)


def contact_world(
    *,
    hs_contacts: Sequence[Mapping[str, Any]] = (),
    sf_contacts: Sequence[Mapping[str, Any]] = (),
    sf_leads: Sequence[Mapping[str, Any]] = (),
    link_rows: Sequence[tuple[str, str, str]] = (),
    users: Sequence[Mapping[str, Any]] | None = None,
    **frames: pd.DataFrame,
) -> tuple[RuleInputs, OwnerMap]:
    """Staged contacts, Leads and links (plus ``frames``) with their owner map: by default the
    integration user and one user ``005A`` who is HubSpot owner ``1`` (ann@x.com)."""
    sf_users = sf("User", *(users if users is not None else [integration_user(), user("005A", "ann@x.com")]))
    hs_owners = hs("owners", owner("1", "ann@x.com"))
    world = inputs(
        sf_user=sf_users,
        hs_owner=hs_owners,
        hs_contact=hs("contacts", *hs_contacts),
        sf_contact=sf("Contact", *sf_contacts),
        sf_lead=sf("Lead", *sf_leads),
        links=links(*link_rows),
        **frames,
    )
    return world, build_owner_map(sf_users, hs_owners, INTEGRATION_EMAIL)


def rows(plan: pd.DataFrame, **match: Any) -> list[dict[str, Any]]:
    """Plan rows (as dicts) whose columns equal ``match``."""
    mask = pd.Series(True, index=plan.index)
    for key, value in match.items():
        mask &= plan[key] == value
    return [{str(k): v for k, v in r.items()} for r in plan[mask].to_dict("records")]


def one(plan: pd.DataFrame, **match: Any) -> dict[str, Any]:
    """The single plan row matching ``match`` (fails the test if there are none or several)."""
    found = rows(plan, **match)
    assert len(found) == 1, f"expected one row for {match}, got {len(found)}: {found}"
    return found[0]
