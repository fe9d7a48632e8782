"""The report's other findings: duplicates, records kept back, mixed currencies, HubSpot's rollups.

Each function reads frames the rules and loads left in staging and returns plain, JSON-ready
data, so the same figures go to the JSON, the HTML and the tests:

* :func:`duplicate_groups`: ACC-6 groups of probable duplicate Accounts and their survivors
  (``rule_account_groups``); nothing is merged, so every run lists them;
* :func:`open_entries`: open quarantine entries (SYNC-5) and dead letters (per-record write
  failures, table ``dead_letter`` when the load stage has created it), counted and sampled;
* :func:`validation_outcomes`: what the ``validate`` task of the sync run found, per object;
* :func:`mixed_currency`: DEAL-8 rollups adding amounts of more than one currency;
* :func:`rollup_differences`: HubSpot's calculated deal rollups (ROLL-1..6) on contacts and
  companies against the values crm-sync expects from Salesforce (``rule_rollups``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from crm_sync.plan import REF_PREFIX
from crm_sync.rules.merge import canonical
from crm_sync.rules.normalize import as_bool, as_text, column
from crm_sync.rules.rollups import ROLLUP_FIELDS, ROLLUP_KINDS, ROLLUP_RULES


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def records(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of ``frame`` as JSON-ready dicts with ``columns`` (missing columns are ``None``)."""
    return [
        {c: _plain(v) for c, v in zip(columns, row, strict=True)}
        for row in frame.reindex(columns=list(columns)).itertuples(index=False)
    ]


def duplicate_groups(groups: pd.DataFrame, accounts: pd.DataFrame) -> list[dict[str, Any]]:
    """ACC-6: one entry per group: id, size, survivor (id and name), members with how they matched."""
    if groups.empty:
        return []
    names = dict(zip(as_text(column(accounts, "Id")), as_text(column(accounts, "Name")), strict=True))
    out = []
    frame = groups.assign(survivor_flag=as_bool(column(groups, "is_survivor")))
    for group_id, members in frame.groupby(as_text(frame["group_id"]), sort=True):
        survivor = str(as_text(members["survivor_id"]).iat[0])
        ordered = members.sort_values(["survivor_flag", "sf_id"], ascending=[False, True], kind="stable")
        out.append(
            {
                "group_id": str(group_id),
                "size": len(members),
                "survivor_id": survivor,
                "survivor_name": names.get(survivor),
                "members": [
                    {
                        "sf_id": str(m.sf_id),
                        "name": names.get(str(m.sf_id)),
                        "survivor": bool(m.survivor_flag),
                        "key": _plain(m.key),
                    }
                    for m in ordered.itertuples(index=False)
                ],
            }
        )
    return out


def open_entries(
    frame: pd.DataFrame | None, group_by: Sequence[str], columns: Sequence[str], examples: int
) -> dict[str, Any]:
    """Open entries (``resolved_at`` blank) of a quarantine-like table: total, counts, first rows.

    ``None`` (the table does not exist yet) reports ``available: false`` rather than zero, so a
    reader can tell "no dead letters" from "dead letters are not recorded yet".
    """
    if frame is None:
        return {"available": False, "open": 0, "by": [], "entries": []}
    open_rows = (
        frame[column(frame, "resolved_at").isna().to_numpy()] if "resolved_at" in frame.columns else frame
    )
    by = [c for c in group_by if c in open_rows.columns]
    counts = (
        open_rows.groupby(by, dropna=False).size().reset_index(name="count").to_dict("records")
        if by and not open_rows.empty
        else []
    )
    present = [c for c in columns if c in open_rows.columns] or list(open_rows.columns)
    return {
        "available": True,
        "open": len(open_rows),
        "by": [{str(k): _plain(v) for k, v in r.items()} for r in counts],
        "entries": records(open_rows.head(examples), present),
    }


def validation_outcomes(sync_log: pd.DataFrame, run_id: str | None) -> list[dict[str, Any]]:
    """The sync run's expectation outcomes per object (``sync_log`` stage ``validate``)."""
    if sync_log.empty or run_id is None:
        return []
    mine = sync_log[(column(sync_log, "run_id") == run_id) & (column(sync_log, "stage") == "validate")]
    out = []
    for row in mine.sort_values("object", kind="stable").itertuples(index=False):
        details = json.loads(row.details) if isinstance(row.details, str) and row.details else {}
        failing = {k: v for k, v in (details.get("by_check") or {}).items() if v}
        rows = int(_plain(row.read) or 0)
        failed = int(_plain(row.quarantined) or 0)
        out.append(
            {
                "object": str(row.object),
                "rows": rows,
                "failed": failed,
                "rate": round(failed / rows, 6) if rows else 0.0,
                "failing_expectations": failing,
            }
        )
    return out


def mixed_currency(flags: pd.DataFrame) -> list[dict[str, Any]]:
    """DEAL-8 beyond: records whose closed-won deals mix currencies (their revenue adds them up)."""
    return records(flags, ("object", "record_id", "currencies", "won_deals", "total_revenue"))


def rollup_differences(
    expected: pd.DataFrame, staged: Mapping[str, pd.DataFrame], examples: int
) -> list[dict[str, Any]]:
    """ROLL-1..6: per object and rollup field, HubSpot's value vs crm-sync's expectation.

    Records created by the plan (``@`` refs) are left out until they exist in HubSpot. Values
    compare canonically (numbers as floats, dates to the second); both blank is a match (ROLL-6).
    """
    out: list[dict[str, Any]] = []
    if expected.empty:
        return out
    for obj, table in (("contacts", "hs_contact"), ("companies", "hs_company")):
        mine = expected[as_text(column(expected, "object")) == obj]
        ids = as_text(column(mine, "record_id"))
        mine = mine[(ids.notna() & ~ids.str.startswith(REF_PREFIX).fillna(False)).to_numpy(dtype=bool)]
        if mine.empty:
            continue
        hs = staged.get(table, pd.DataFrame())
        hs_ids = as_text(column(hs, "id"))
        found = hs.set_index(hs_ids.to_numpy(dtype=object)) if not hs.empty else hs
        present = as_text(mine["record_id"]).isin(set(hs_ids.dropna())).to_numpy(dtype=bool)
        mine = mine[present].reset_index(drop=True)
        record_ids = as_text(mine["record_id"]).to_numpy(dtype=object)
        actual = found.reindex(record_ids) if not found.empty else pd.DataFrame(index=range(len(mine)))
        for name in ROLLUP_FIELDS:
            out.append(
                _rollup_field(
                    obj, name, mine, actual.reset_index(drop=True), ids=record_ids, examples=examples
                )
            )
    return out


def _rollup_field(
    obj: str, name: str, expected: pd.DataFrame, actual: pd.DataFrame, *, ids: np.ndarray, examples: int
) -> dict[str, Any]:
    kind = ROLLUP_KINDS[name]
    want = canonical(column(expected, name).reset_index(drop=True), kind)
    have = canonical(column(actual, name).reset_index(drop=True), kind)
    if name == "num_associated_deals":  # HubSpot shows 0 where crm-sync has no row: both "none"
        want, have = want.fillna(0.0), have.fillna(0.0)
    equal = (want == have).to_numpy(dtype=bool, na_value=False) | (want.isna() & have.isna()).to_numpy()
    differ = np.flatnonzero(~equal)
    return {
        "object": obj,
        "field": name,
        "rules": list(ROLLUP_RULES[name]),
        "compared": len(want),
        "matches": int(equal.sum()),
        "mismatches": len(differ),
        "examples": [
            {
                "record_id": str(ids[i]),
                "expected": _plain(column(expected, name).iat[i]),
                "hubspot": _plain(column(actual, name).iat[i]),
            }
            for i in differ[:examples].tolist()
        ],
    }
