"""The sync plan: what the rules decided to do to each target, one row per decision.

The plan is the product's central artefact. Users read it before anything is written
(``dry_run``), ``crm-sync plan`` prints it, validation audits it and the loaders apply it. Its row
shape is a public contract (see DESIGN.md): ``run_id, target, object, action, source_id,
target_id, fields, rules, reason``.

Rule functions return plan frames built with :func:`plan_frame`; ``fields`` holds only the
target fields to write (for updates: only the ones that change), ``rules`` the RULES.md ids
that decided the row, ``reason`` a sentence for ``skip`` and ``quarantine`` rows so a user can
ask why a record did not sync.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

Target = Literal["salesforce", "hubspot"]
Action = Literal["create", "update", "delete", "link", "associate", "skip", "quarantine"]

TARGETS: tuple[str, ...] = ("salesforce", "hubspot")
ACTIONS: tuple[str, ...] = ("create", "update", "delete", "link", "associate", "skip", "quarantine")
SALESFORCE_OBJECTS: tuple[str, ...] = (
    "Account",
    "Contact",
    "Lead",
    "Opportunity",
    "OpportunityContactRole",
    "User",
)
HUBSPOT_OBJECTS: tuple[str, ...] = ("companies", "contacts", "deals", "pipelines", "associations")
PLAN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "target",
    "object",
    "action",
    "source_id",
    "target_id",
    "fields",
    "rules",
    "reason",
)


@dataclass(frozen=True)
class PlanRow:
    """One decision. ``fields`` maps *target* field names to values; ``rules`` are RULES.md ids."""

    target: Target
    object: str
    action: Action
    source_id: str | None = None
    target_id: str | None = None
    fields: Mapping[str, Any] | None = None
    rules: Sequence[str] = ()
    reason: str | None = None

    def as_dict(self, run_id: str = "") -> dict[str, Any]:
        return {
            "run_id": run_id,
            "target": self.target,
            "object": self.object,
            "action": self.action,
            "source_id": self.source_id,
            "target_id": self.target_id,
            "fields": dict(self.fields or {}),
            "rules": list(self.rules),
            "reason": self.reason,
        }


def plan_frame(rows: Iterable[PlanRow | Mapping[str, Any]] = (), run_id: str = "") -> pd.DataFrame:
    """Build a plan DataFrame with exactly :data:`PLAN_COLUMNS`, validating targets and actions."""
    records = [r.as_dict(run_id) if isinstance(r, PlanRow) else {**dict(r)} for r in rows]
    frame = pd.DataFrame.from_records(records, columns=list(PLAN_COLUMNS))
    if run_id:
        frame["run_id"] = run_id
    check_plan(frame)
    return frame


def empty_plan() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in PLAN_COLUMNS})


def check_plan(frame: pd.DataFrame) -> None:
    """Reject rows that break the contract early, where the rule that made them is known."""
    missing = [c for c in PLAN_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"plan frame lacks columns {missing}")
    if frame.empty:
        return
    bad_target = ~frame["target"].isin(TARGETS)
    bad_action = ~frame["action"].isin(ACTIONS)
    if bad_target.any() or bad_action.any():
        sample = frame.loc[bad_target | bad_action, ["target", "object", "action"]].head(3)
        raise ValueError(f"plan rows with unknown target/action: {sample.to_dict('records')}")
    allowed = frame["target"].map({"salesforce": SALESFORCE_OBJECTS, "hubspot": HUBSPOT_OBJECTS})
    bad_object = [obj not in objs for obj, objs in zip(frame["object"], allowed, strict=True)]
    if any(bad_object):
        sample = frame.loc[bad_object, ["target", "object"]].head(3)
        raise ValueError(f"plan rows name objects their target does not have: {sample.to_dict('records')}")


def concat_plans(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate plan frames (empty ones allowed) keeping the column order."""
    parts = [f for f in frames if not f.empty]
    if not parts:
        return empty_plan()
    return pd.concat(parts, ignore_index=True)[list(PLAN_COLUMNS)]


def summarize(plan: pd.DataFrame) -> pd.DataFrame:
    """Counts per target, object, action and rule: the human-readable plan summary.

    A row decided by several rules counts once under each of them, so the table answers
    "what did OWN-2 do this run?" directly.
    """
    if plan.empty:
        return pd.DataFrame(columns=["target", "object", "action", "rule", "count"])
    exploded = plan[["target", "object", "action", "rules"]].explode("rules")
    exploded["rule"] = exploded["rules"].fillna("-")
    counts = (
        exploded.groupby(["target", "object", "action", "rule"], sort=True).size().reset_index(name="count")
    )
    return counts
