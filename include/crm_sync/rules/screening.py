"""Screening records through a sequence of checks: who does not sync this run, and why.

A rule family decides about a set of records (a :class:`Side`: where its rows land and the
records' ids), then applies its checks in order with :func:`screen` (CON-1..3, DEAL-2/3/8/9).
Each record failing a check becomes one ``skip`` or ``quarantine`` row with the check's rule
ids and reason, reported once, under the first check it fails (SYNC-5: the rest proceeds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crm_sync.plan import Action, Target, plan_rows

#: Why records fail a check: fixed text, or text made from the mask of the records it takes out.
Reason = str | Callable[[np.ndarray], pd.Series]


@dataclass(frozen=True)
class Side:
    """Records a rule decides about, and where its rows about them land: ``target`` and
    ``object``, the records' ids (``source_id``) and, for pairs, their counterparts'
    (``target_id``; None for records without one)."""

    target: Target
    object: str
    source_id: pd.Series
    target_id: pd.Series | None = None

    def rows(
        self, action: Action, rules: Sequence[str], reason: Any, mask: np.ndarray | None = None
    ) -> pd.DataFrame:
        """``action`` rows without fields for the records ``mask`` selects (all by default);
        ``reason``: one text, or one per selected record."""
        if mask is None:
            mask = np.ones(len(self.source_id), dtype=bool)
        return plan_rows(
            target=self.target,
            object=self.object,
            action=action,
            count=int(mask.sum()),
            source_id=self.source_id[mask],
            target_id=None if self.target_id is None else self.target_id[mask],
            rules=rules,
            reason=reason,
        )

    def skip(self, rules: Sequence[str], failing: pd.Series | np.ndarray, reason: Reason) -> Check:
        """A check whose failing records are ``skip`` rows (see :func:`screen`)."""
        return Check(self, Action.SKIP, rules, _mask(failing), reason)

    def quarantine(self, rules: Sequence[str], failing: pd.Series | np.ndarray, reason: Reason) -> Check:
        """A check whose failing records are ``quarantine`` rows (see :func:`screen`)."""
        return Check(self, Action.QUARANTINE, rules, _mask(failing), reason)


def _mask(failing: pd.Series | np.ndarray) -> np.ndarray:
    """A positional bool mask; a missing value does not fail the check."""
    if isinstance(failing, pd.Series):
        return np.asarray(failing.fillna(False).astype(bool).to_numpy(), dtype=bool)
    return np.asarray(failing, dtype=bool)


@dataclass(frozen=True)
class Check:
    """One reason records do not sync this run: ``action`` rows under ``rules`` for the records
    ``failing`` marks (positionally, aligned with ``side``), explained by ``reason``."""

    side: Side
    action: Action
    rules: Sequence[str]
    failing: np.ndarray
    reason: Reason


def screen(plans: list[pd.DataFrame], *checks: Check) -> np.ndarray:
    """Apply ``checks`` in order to the same records (CON-1..3, DEAL-2/3/8/9; SYNC-5: the rest
    proceeds). Each takes the records still in play that fail it out as skip/quarantine rows,
    appended to ``plans``, so a record is reported once, under the first check it fails.
    Returns the mask of the records that pass them all."""
    passing = np.ones(len(checks[0].failing), dtype=bool)
    for check in checks:
        hit = passing & check.failing
        if hit.any():
            reason = check.reason if isinstance(check.reason, str) else check.reason(hit)
            plans.append(check.side.rows(check.action, check.rules, reason, hit))
        passing &= ~hit
    return passing
