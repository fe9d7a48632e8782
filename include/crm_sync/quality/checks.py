"""One expectation, said twice: as a Great Expectations expectation and as a pandas row mask.

Great Expectations validates a suite and reports, per expectation, how many rows broke it; it
does not hand back *which* rows cheaply (a ``COMPLETE`` result builds Python lists per row).
crm-sync needs the rows too (SYNC-5: failing rows go to quarantine, the rest proceeds), so every
:class:`Check` also evaluates the same expectation as a vectorised mask with GX's semantics:
map expectations ignore missing values, ``not_null`` is the exception. The validation step runs
both and insists they agree, so the suite a person reads in GX terms is the one that decided.

Only four GX expectation types are used, all on columns of a *prepared* frame (one row per
record or plan row, with derived columns such as ``stage_key`` or ``enum_problem``), which keeps
both evaluations fast at a million rows.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

ExpectationType = Literal[
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_unique",
    "expect_column_values_to_be_in_set",
    "expect_column_values_to_match_regex",
    "expect_column_values_to_be_null",
]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Check:
    """One expectation of a suite.

    ``name`` is the id stored as the quarantine ``rule`` (``email_valid``, ``plan_single_create``);
    ``column`` the prepared frame's column it reads; ``reason`` the sentence a person reads in
    quarantine and in the task log. ``value_set``/``regex`` parameterise in-set and regex checks.
    """

    name: str
    expectation: ExpectationType
    column: str
    reason: str
    value_set: frozenset[Any] = field(default_factory=frozenset)
    regex: str | None = None

    def failing(self, frame: pd.DataFrame) -> BoolArray:
        """Rows of ``frame`` that break this expectation (GX semantics, vectorised)."""
        values = frame[self.column]
        present = values.notna().to_numpy(dtype=bool)
        if self.expectation == "expect_column_values_to_not_be_null":
            return ~present
        if self.expectation == "expect_column_values_to_be_null":
            return present
        if self.expectation == "expect_column_values_to_be_unique":
            return present & values.duplicated(keep=False).to_numpy(dtype=bool)
        if self.expectation == "expect_column_values_to_be_in_set":
            return present & ~values.isin(list(self.value_set)).to_numpy(dtype=bool)
        pattern = re.compile(self.regex or "")
        text = values.astype("str")
        matched = text.str.contains(pattern, regex=True).to_numpy(dtype=bool, na_value=False)
        return present & ~matched

    def gx_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the GX expectation class (column plus its parameters)."""
        kwargs: dict[str, Any] = {"column": self.column}
        if self.expectation == "expect_column_values_to_be_in_set":
            kwargs["value_set"] = sorted(self.value_set, key=str)
        if self.expectation == "expect_column_values_to_match_regex":
            kwargs["regex"] = self.regex
        return kwargs


def in_set(name: str, column: str, values: Collection[Any], reason: str) -> Check:
    """A ``expect_column_values_to_be_in_set`` check (missing values pass)."""
    return Check(name, "expect_column_values_to_be_in_set", column, reason, value_set=frozenset(values))


def passes(name: str, column: str, reason: str) -> Check:
    """A check on a derived boolean column: ``True`` passes, ``False`` fails, missing is n/a."""
    return in_set(name, column, (True,), reason)


def flag(values: pd.Series | npt.NDArray[Any], applies: pd.Series | npt.NDArray[Any]) -> pd.Series:
    """A derived check column: ``values`` (bool) where the check ``applies``, else missing.

    Nullable booleans keep GX's "missing values are not checked" semantics without object
    columns, so both GX and :meth:`Check.failing` stay vectorised.
    """
    ok = np.asarray(values, dtype=bool)
    mask = ~np.asarray(applies, dtype=bool)
    return pd.Series(pd.arrays.BooleanArray(ok, mask))
