"""Running a suite with Great Expectations Core: an ephemeral context, nothing on disk.

Each validation builds an in-memory (ephemeral) GX context inside the task, so there are no GX
project files to hand-edit or to drift from the code: the suites live in
:mod:`crm_sync.quality.suites` and :mod:`crm_sync.quality.plan_suite`. Progress bars and
usage analytics are switched off, so task logs stay readable and a worker never phones home.

GX is imported when a suite runs, never at module import: DAG parsing stays light.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crm_sync.quality.checks import Check

_ANALYTICS_ENV = "GX_ANALYTICS_ENABLED"


@dataclass(frozen=True)
class GxOutcome:
    """GX's verdict on one expectation: success, rows checked, rows that broke it."""

    success: bool
    element_count: int
    unexpected_count: int


class GxRunner:
    """One ephemeral GX context for a validation step; runs any number of suites."""

    def __init__(self) -> None:
        os.environ.setdefault(_ANALYTICS_ENV, "False")
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        self._gx: Any = gx
        _skip_batch_fingerprints()
        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
        )
        self.context: Any = gx.get_context(mode="ephemeral", project_config=config)
        self._source: Any = self.context.data_sources.add_pandas("crm_sync_staging")
        self._batches: dict[str, Any] = {}

    def suite(self, name: str, checks: Sequence[Check]) -> Any:
        """The GX ``ExpectationSuite`` of ``checks`` (each tagged with its check name in ``meta``)."""
        gx = self._gx
        suite = gx.ExpectationSuite(name=name)
        for check in checks:
            cls = getattr(gx.expectations, _class_name(check.expectation))
            suite.add_expectation(
                cls(**check.gx_kwargs(), meta={"check": check.name, "reason": check.reason})
            )
        return suite

    def validate(self, name: str, checks: Sequence[Check], frame: pd.DataFrame) -> dict[str, GxOutcome]:
        """Validate ``frame`` against the suite of ``checks``; outcomes by check name."""
        if not checks:
            return {}
        if name not in self._batches:
            asset = self._source.add_dataframe_asset(name)
            self._batches[name] = asset.add_batch_definition_whole_dataframe("whole")
        batch = self._batches[name].get_batch(batch_parameters={"dataframe": frame})
        result = batch.validate(self.suite(name, checks), result_format="BASIC")
        outcomes: dict[str, GxOutcome] = {}
        for item in result.results:
            if item.exception_info and item.exception_info.get("raised_exception"):
                raise RuntimeError(
                    f"GX could not evaluate {name}: {item.exception_info.get('exception_message')}"
                )
            meta = item.expectation_config.meta or {}
            outcomes[str(meta["check"])] = GxOutcome(
                success=bool(item.success),
                element_count=int(item.result.get("element_count") or 0),
                unexpected_count=int(item.result.get("unexpected_count") or 0),
            )
        return outcomes


def _skip_batch_fingerprints() -> None:
    """Do not fingerprint each in-memory batch (an md5 over every cell of the frame).

    GX's pandas engine hashes every DataFrame below ``HASH_THRESHOLD`` bytes to record a
    ``pandas_data_fingerprint`` in the batch markers, provenance for results kept in a store.
    Our context is ephemeral and keeps no results, and at a million rows of text the hash costs
    more than all the expectations together (about 2.5 s of 3 s for 400k contacts). GX itself
    skips it above the threshold; setting the threshold to 0 takes that same path for every
    batch, and changes no expectation's outcome.
    """
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0  # type: ignore[attr-defined]


def _class_name(expectation: str) -> str:
    """``expect_column_values_to_be_unique`` -> ``ExpectColumnValuesToBeUnique``."""
    return "".join(part.capitalize() for part in expectation.split("_"))
