"""The staged state the rules read, as one bundle of DataFrames.

Staging keeps the latest extracted state of every record ever read (raw tables are upserted by
source key), so the rules compute the *desired* state from all of it and the plan is the diff
against each target's staged state. That makes planning idempotent by construction (SYNC-4):
the same staging gives the same plan, however often it runs.

Column names are exactly the catalog field names (:mod:`crm_sync.catalog`) plus ``_deleted``
(SF ``IsDeleted`` / HS archived) and ``_run_id`` (the run that last changed the row).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

#: Which rows of a staged frame to keep: a boolean array as long as the frame.
RowMask = Callable[[pd.DataFrame], "np.ndarray[Any, np.dtype[np.bool_]]"]


def _empty() -> pd.DataFrame:
    return pd.DataFrame()


@dataclass
class RuleInputs:
    """Everything the rules need, loaded from staging by the rule tasks.

    ``links``: columns ``object`` (SF object name: Account, Contact, Lead, Opportunity),
    ``sf_id``, ``hs_id``, ``linked_at`` — the staging link table (pairs known to be the same
    record; RULES.md "Linked").
    ``snapshot``: columns ``object``, ``sf_id``, ``hs_id``, ``sf_field``, ``hs_field``, ``value``
    (JSON text of the last synced value), ``synced_at`` — the last-synced values SYNC-3 merges
    against.
    ``imported``: columns ``object`` (SF object name), ``sf_id`` — pre-existing SF records
    imported by a backfill (ACC-2, DEAL-9).
    ``association_snapshot``: the last-synced DEAL-6 deal-contact pairs
    (:data:`~crm_sync.rules.deal_contacts.ASSOCIATION_SNAPSHOT_COLUMNS`).
    ``picklist_options``: both CRMs' picklist / enumeration options
    (:data:`~crm_sync.rules.value_maps.OPTION_COLUMNS`) for SYNC-2's value maps.
    """

    now: datetime
    sf_user: pd.DataFrame = field(default_factory=_empty)
    sf_record_type: pd.DataFrame = field(default_factory=_empty)
    sf_opportunity_stage: pd.DataFrame = field(default_factory=_empty)
    sf_account: pd.DataFrame = field(default_factory=_empty)
    sf_contact: pd.DataFrame = field(default_factory=_empty)
    sf_lead: pd.DataFrame = field(default_factory=_empty)
    sf_opportunity: pd.DataFrame = field(default_factory=_empty)
    sf_opportunity_contact_role: pd.DataFrame = field(default_factory=_empty)
    hs_owner: pd.DataFrame = field(default_factory=_empty)
    hs_pipeline: pd.DataFrame = field(default_factory=_empty)
    hs_pipeline_stage: pd.DataFrame = field(default_factory=_empty)
    hs_company: pd.DataFrame = field(default_factory=_empty)
    hs_contact: pd.DataFrame = field(default_factory=_empty)
    hs_deal: pd.DataFrame = field(default_factory=_empty)
    hs_association: pd.DataFrame = field(default_factory=_empty)
    links: pd.DataFrame = field(default_factory=_empty)
    snapshot: pd.DataFrame = field(default_factory=_empty)
    imported: pd.DataFrame = field(default_factory=_empty)
    association_snapshot: pd.DataFrame = field(default_factory=_empty)
    picklist_options: pd.DataFrame = field(default_factory=_empty)


@dataclass(frozen=True)
class InputView:
    """Which part of staging to load into :class:`RuleInputs`, by attribute.

    ``columns``: only these columns (those the table has); ``rows``: only the rows the mask
    keeps (applied while reading, so the rest is never held); ``skip``: not read at all (an
    empty frame). Attributes not named are read whole. A backfill chunk reads its neighbourhood
    this way (:mod:`crm_sync.backfill.focus`).
    """

    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    rows: Mapping[str, RowMask] = field(default_factory=dict)
    skip: frozenset[str] = frozenset()
