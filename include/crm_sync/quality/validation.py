"""Validation of a run before loading: suites -> row-level failures -> the gate.

Pure (no staging I/O): :func:`validate` takes the staged frames and the plan, runs every suite
through Great Expectations (:class:`~crm_sync.quality.gx.GxRunner`) and through the vectorised
masks of :class:`~crm_sync.quality.checks.Check`, insists both agree, and returns

* :attr:`Validation.failures`: one row per failing record and expectation (SYNC-5: these go to
  quarantine, the rest proceeds), with the values the expectation read;
* :attr:`Validation.plan_reasons`: for each plan row to hold back, why (its own expectation, or
  an expectation its source or target record failed), so loaders skip it;
* :attr:`Validation.objects`: per object, rows checked, rows failing and the rate the gate
  compares with ``quality.failure_threshold`` (:func:`breaches`, :class:`QualityGateError`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crm_sync.quality.checks import Check
from crm_sync.quality.gx import GxRunner
from crm_sync.quality.plan_suite import plan_references, plan_suite, prepare_plan
from crm_sync.quality.suites import OBJECTS, ObjectSpec, prepare, references, source_columns, suite
from crm_sync.rules.staged import alive

#: Columns of :attr:`Validation.failures`.
FAILURE_COLUMNS: tuple[str, ...] = ("scope", "system", "object", "record_id", "rule", "reason", "payload")
#: Plan objects whose rows a failing staged record holds back: (system, object) -> plan (target, object, by).
_AFFECTED: dict[tuple[str, str], tuple[tuple[str, str, str], ...]] = {
    ("salesforce", "Account"): (
        ("salesforce", "Account", "target_id"),
        ("hubspot", "companies", "source_id"),
    ),
    ("salesforce", "Contact"): (("salesforce", "Contact", "target_id"), ("hubspot", "contacts", "source_id")),
    ("salesforce", "Lead"): (("salesforce", "Lead", "target_id"), ("hubspot", "contacts", "source_id")),
    ("salesforce", "Opportunity"): (
        ("salesforce", "Opportunity", "target_id"),
        ("hubspot", "deals", "source_id"),
        ("hubspot", "associations", "source_id"),
    ),
    ("hubspot", "companies"): (("hubspot", "companies", "target_id"), ("salesforce", "Account", "source_id")),
    ("hubspot", "contacts"): (
        ("hubspot", "contacts", "target_id"),
        ("salesforce", "Contact", "source_id"),
        ("salesforce", "Lead", "source_id"),
    ),
    ("hubspot", "deals"): (
        ("hubspot", "deals", "target_id"),
        ("salesforce", "Opportunity", "source_id"),
        ("salesforce", "OpportunityContactRole", "source_id"),
    ),
}
#: Plan actions that write; a skip or an existing quarantine row is left as it is.
WRITING_ACTIONS: tuple[str, ...] = ("create", "update", "delete", "link", "associate")


class QualityGateError(RuntimeError):
    """An object's failure rate passed ``quality.failure_threshold``: the run stops before loading."""


@dataclass
class ObjectOutcome:
    """One object's validation: rows checked, rows failing any expectation, per-check counts."""

    scope: str  # "staged" or "plan"
    system: str
    object: str
    rows: int
    failed: int
    by_check: dict[str, int] = field(default_factory=dict)
    expectations: dict[str, str] = field(default_factory=dict)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: The gate's view: the rows this run read (changed since the last run), when known.
    run_rows: int | None = None
    run_failed: int | None = None
    run_by_check: dict[str, int] | None = None
    run_samples: dict[str, list[dict[str, Any]]] | None = None

    @property
    def rate(self) -> float:
        return self.failed / self.rows if self.rows else 0.0

    @property
    def gate(self) -> tuple[int, int, dict[str, int], dict[str, list[dict[str, Any]]]]:
        """(rows, failing rows, failures per check, samples) the failure-rate gate judges.

        Staging keeps every record ever read, so a record that failed long ago (and waits in
        quarantine) is still there; it must not stop every later run. The gate therefore judges
        the rows this run read when staging says which they are (``_run_id``), else all rows.
        """
        if self.run_rows is None:
            return self.rows, self.failed, self.by_check, self.samples
        return self.run_rows, self.run_failed or 0, self.run_by_check or {}, self.run_samples or {}

    @property
    def label(self) -> str:
        prefix = "plan " if self.scope == "plan" else ""
        return f"{prefix}{self.system} {self.object}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "system": self.system,
            "object": self.object,
            "rows": self.rows,
            "failed": self.failed,
            "rate": round(self.rate, 6),
            "by_check": dict(self.by_check),
            **(
                {"run_rows": self.run_rows, "run_failed": self.run_failed}
                if self.run_rows is not None
                else {}
            ),
        }


@dataclass
class Validation:
    """Everything :func:`validate` decided (see the module docstring)."""

    objects: list[ObjectOutcome]
    failures: pd.DataFrame
    plan_reasons: dict[int, str]


def _failure_rows(
    frame: pd.DataFrame,
    live: pd.DataFrame,
    check: Check,
    positions: np.ndarray,
    columns: Sequence[str],
    *,
    scope: str,
    system: str,
    obj: str,
    detail: pd.Series | None = None,
) -> list[dict[str, Any]]:
    record_ids = frame["record_id"].to_numpy(dtype=object)
    present = [c for c in columns if c in live.columns]
    values = {c: live[c].to_numpy(dtype=object) for c in present}
    rows = []
    for i in positions.tolist():
        rid = record_ids[i]
        reason = check.reason if detail is None else f"{check.reason}: {detail.iat[i]}"
        rows.append(
            {
                "scope": scope,
                "system": system,
                "object": obj,
                "record_id": str(rid) if rid is not None and not pd.isna(rid) else f"<row {i}>",
                "rule": check.name,
                "reason": reason,
                "payload": {c: _plain(values[c][i]) for c in present},
            }
        )
    return rows


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _run(runner: GxRunner, name: str, checks: Sequence[Check], frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Masks of every check, after GX validated the same suite and agreed on every count."""
    outcomes = runner.validate(name, checks, frame)
    masks: dict[str, np.ndarray] = {}
    for check in checks:
        mask = check.failing(frame)
        gx_count = outcomes[check.name].unexpected_count
        if int(mask.sum()) != gx_count:
            raise RuntimeError(
                f"{name}: {check.name} ({check.expectation}) fails {int(mask.sum())} rows in crm-sync "
                f"but {gx_count} in Great Expectations; the suite and its row masks disagree"
            )
        masks[check.name] = mask
    return masks


def validate_object(
    runner: GxRunner,
    spec: ObjectSpec,
    staged: pd.DataFrame,
    checks: Sequence[Check],
    *,
    samples: int = 5,
    run_id: str | None = None,
) -> tuple[ObjectOutcome, list[dict[str, Any]]]:
    """One staged object's suite: its outcome and its failure rows.

    With ``run_id`` (and staging's ``_run_id`` column), the outcome also counts the rows that
    run read, which is what the gate judges (:attr:`ObjectOutcome.gate`).
    """
    live = staged[alive(staged).to_numpy(dtype=bool)].reset_index(drop=True) if not staged.empty else staged
    frame = prepare(spec, live)
    masks = _run(runner, f"staged.{spec.system}.{spec.name}", checks, frame)
    outcome = ObjectOutcome("staged", spec.system, spec.name, rows=len(frame), failed=0)
    batch = (
        (live["_run_id"] == run_id).to_numpy(dtype=bool, na_value=False)
        if run_id is not None and "_run_id" in live.columns
        else None
    )
    run_by_check: dict[str, int] = {}
    run_samples: dict[str, list[dict[str, Any]]] = {}
    any_failed = np.zeros(len(frame), dtype=bool)
    failures: list[dict[str, Any]] = []
    for check in checks:
        mask = masks[check.name]
        positions = np.flatnonzero(mask)
        cols = (spec.stream.key, *source_columns(spec, check))
        rows = _failure_rows(
            frame, live, check, positions, cols, scope="staged", system=spec.system, obj=spec.name
        )
        failures += rows
        any_failed |= mask
        outcome.by_check[check.name] = len(positions)
        outcome.expectations[check.name] = check.expectation
        outcome.samples[check.name] = [{"record_id": r["record_id"], **r["payload"]} for r in rows[:samples]]
        if batch is not None:
            in_run = [r for r, p in zip(rows, positions.tolist(), strict=True) if batch[p]]
            run_by_check[check.name] = len(in_run)
            run_samples[check.name] = [
                {"record_id": r["record_id"], **r["payload"]} for r in in_run[:samples]
            ]
    outcome.failed = int(any_failed.sum())
    if batch is not None:
        outcome.run_rows = int(batch.sum())
        outcome.run_failed = int((any_failed & batch).sum())
        outcome.run_by_check = run_by_check
        outcome.run_samples = run_samples
    return outcome, failures


def validate_plan_rows(
    runner: GxRunner, plan: pd.DataFrame, frames: Mapping[str, pd.DataFrame], samples: int = 5
) -> tuple[list[ObjectOutcome], list[dict[str, Any]], dict[int, str]]:
    """The plan suite: per (target, object) outcomes, failure rows, and reasons by plan position."""
    refs = plan_references(frames, plan)
    checks = plan_suite(refs)
    frame = prepare_plan(plan, refs)
    masks = _run(runner, "plan", checks, frame)
    keys = plan["target"].astype("str") + "\t" + plan["object"].astype("str")
    outcomes: dict[str, ObjectOutcome] = {}
    for key in dict.fromkeys(keys.tolist()):
        target, obj = key.split("\t")
        outcomes[key] = ObjectOutcome("plan", target, obj, rows=int((keys == key).sum()), failed=0)
    any_failed = np.zeros(len(frame), dtype=bool)
    failures: list[dict[str, Any]] = []
    reasons: dict[int, str] = {}
    live = pd.DataFrame(
        {
            "action": plan["action"].to_numpy(dtype=object),
            "source_id": plan["source_id"].to_numpy(dtype=object),
            "target_id": plan["target_id"].to_numpy(dtype=object),
            "fields": plan["fields"].to_numpy(dtype=object),
        }
    )
    key_values = keys.to_numpy(dtype=object)
    for check in checks:
        mask = masks[check.name]
        detail = frame["enum_problem"] if check.column == "enum_problem" else None
        for key, outcome in outcomes.items():
            positions = np.flatnonzero(mask & (key_values == key))
            target, obj = key.split("\t")
            rows = _failure_rows(
                frame, live, check, positions, ("action", "source_id", "target_id", "fields"),
                scope="plan", system=target, obj=obj, detail=detail,
            )  # fmt: skip
            failures += rows
            for pos, row in zip(positions.tolist(), rows, strict=True):
                reasons.setdefault(pos, f"validate {check.name}: {row['reason']}")
            if len(positions):
                outcome.by_check[check.name] = len(positions)
                outcome.expectations[check.name] = check.expectation
                outcome.samples[check.name] = [
                    {"record_id": r["record_id"], **r["payload"]} for r in rows[:samples]
                ]
        any_failed |= mask
    for key, outcome in outcomes.items():
        outcome.failed = int((any_failed & (key_values == key)).sum())
    return list(outcomes.values()), failures, reasons


def held_back_rows(plan: pd.DataFrame, failures: pd.DataFrame) -> dict[int, str]:
    """Plan positions whose source or target record failed a staged expectation, with why."""
    staged = failures[failures["scope"] == "staged"]
    if staged.empty or plan.empty:
        return {}
    reasons: dict[int, str] = {}
    target = plan["target"].to_numpy(dtype=object)
    obj = plan["object"].to_numpy(dtype=object)
    writing = plan["action"].isin(list(WRITING_ACTIONS)).to_numpy(dtype=bool)
    ids = {"source_id": plan["source_id"].astype("str"), "target_id": plan["target_id"].astype("str")}
    for (system, name), group in staged.groupby(["system", "object"], sort=False):
        why = {
            rid: f"validate {rule}: {system} {name} {rid}: {reason}"
            for rid, rule, reason in zip(group["record_id"], group["rule"], group["reason"], strict=True)
        }
        for p_target, p_object, by in _AFFECTED.get((str(system), str(name)), ()):
            hit = writing & (target == p_target) & (obj == p_object) & ids[by].isin(list(why)).to_numpy()
            for pos in np.flatnonzero(hit).tolist():
                reasons.setdefault(pos, why[ids[by].iat[pos]])
    return reasons


def validate(
    frames: Mapping[str, pd.DataFrame],
    plan: pd.DataFrame,
    *,
    runner: GxRunner | None = None,
    samples: int = 5,
    run_id: str | None = None,
) -> Validation:
    """Every staged object's suite and the plan suite (see the module docstring)."""
    runner = runner or GxRunner()
    refs = references(frames)
    outcomes: list[ObjectOutcome] = []
    failures: list[dict[str, Any]] = []
    for spec in OBJECTS:
        staged = frames.get(spec.stream.table, pd.DataFrame())
        checks = suite(spec, refs)
        outcome, rows = validate_object(runner, spec, staged, checks, samples=samples, run_id=run_id)
        outcomes.append(outcome)
        failures += rows
    plan_outcomes, plan_failures, reasons = validate_plan_rows(runner, plan, frames, samples)
    outcomes += plan_outcomes
    failures += plan_failures
    frame = pd.DataFrame.from_records(failures, columns=list(FAILURE_COLUMNS))
    writing = set(np.flatnonzero(plan["action"].isin(list(WRITING_ACTIONS)).to_numpy(dtype=bool)).tolist())
    held = {p: r for p, r in {**held_back_rows(plan, frame), **reasons}.items() if p in writing}
    return Validation(objects=outcomes, failures=frame, plan_reasons=held)


def breaches(objects: Sequence[ObjectOutcome], threshold: float, min_rows: int) -> list[ObjectOutcome]:
    """Objects whose failure rate (:attr:`ObjectOutcome.gate`) passes ``threshold`` over at least
    ``min_rows`` rows."""
    out = []
    for o in objects:
        rows, failed, _, _ = o.gate
        if rows >= max(min_rows, 1) and failed and failed / rows > threshold:
            out.append(o)
    return out


def gate_message(broken: Sequence[ObjectOutcome], threshold: float) -> str:
    """The task log's explanation: which object, which expectation, and a sample of its rows."""
    lines = [f"validation stopped the run before loading: failure rate above {threshold:.1%}"]
    for o in broken:
        rows, failed, by_check, samples = o.gate
        scope = " read by this run" if o.run_rows is not None else ""
        worst = max(by_check, key=lambda name: by_check[name])
        lines.append(
            f"  {o.label}: {failed} of {rows} rows{scope} fail ({failed / rows:.1%}); worst expectation "
            f"{worst} ({o.expectations.get(worst, '?')}) fails {by_check[worst]} rows; sample: "
            f"{samples.get(worst, [])[:3]}"
        )
    return "\n".join(lines)
