"""Factories of staged frames for the owner, contact and account rule tests.

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
from crm_sync.settings import SyncConfig, parse_config

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ENABLED = "2026-01-01T00:00:00Z"
BEFORE = "2025-06-01T00:00:00.000+0000"
AFTER = "2026-03-01T00:00:00.000+0000"
INTEGRATION_EMAIL = "integration@example.com"


def staged(system: str, name: str, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """A staged frame of a catalog stream: every catalog column, ``_deleted`` False by default."""
    columns = [*stream(system, name).field_names, "_deleted"]  # type: ignore[arg-type]
    records = [{"_deleted": False, **row} for row in rows]
    unknown = {k for r in records for k in r} - set(columns)
    if unknown:
        raise KeyError(f"{system} {name} has no catalog fields {sorted(unknown)}")
    return pd.DataFrame.from_records(records, columns=columns)


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


def config(
    *,
    default_object: str = "Lead",
    inclusion_list: Sequence[Mapping[str, Any]] | None = None,
    companies_sync: bool = True,
    integration_email: str = INTEGRATION_EMAIL,
) -> SyncConfig:
    """A validated config like the shipped default, with the knobs the rules read."""
    if inclusion_list is None:
        inclusion_list = [
            {"property": "email", "operator": "known"},
            {"property": "lifecyclestage", "operator": "in", "value": ["salesqualifiedlead", "customer"]},
        ]
    return parse_config(
        {
            "integration_user_email": integration_email,
            "sync_enabled_at": {"accounts": ENABLED, "contacts": ENABLED, "opportunities": ENABLED},
            "contacts": {"default_object": default_object, "inclusion_list": list(inclusion_list)},
            "companies": {"sync": companies_sync},
            "field_mappings": {
                "accounts": [
                    {"salesforce": "Name", "hubspot": "name", "rule": "two_way"},
                    {"salesforce": "Website", "hubspot": "domain", "rule": "prefer_salesforce"},
                ],
                "contacts": [
                    {"salesforce": "FirstName", "hubspot": "firstname", "rule": "two_way"},
                    {"salesforce": "LastName", "hubspot": "lastname", "rule": "two_way"},
                    {"salesforce": "Email", "hubspot": "email", "rule": "two_way"},
                ],
                "leads": [
                    {"salesforce": "LastName", "hubspot": "lastname", "rule": "two_way"},
                    {"salesforce": "Email", "hubspot": "email", "rule": "two_way"},
                    {"salesforce": "Company", "hubspot": "company", "rule": "two_way"},
                ],
            },
        }
    )


def inputs(**frames: pd.DataFrame) -> RuleInputs:
    return RuleInputs(now=NOW, **frames)


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
