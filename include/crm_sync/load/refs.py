"""Resolving ``@object:source_id`` references to the ids the CRM gave the records.

The rules plan a whole run at once, so a deal association, a contact role or a deal's stage can
name a record that the same run creates (``@deals:006…``, ``@Opportunity:3010``,
``@pipelines:<key>/<ApiName>``). The loader writes creates first and feeds their ids here; a
reference to a record created by an earlier run (or an earlier attempt of this one) falls back
to the links stored in ``sync_link``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import pandas as pd
import sqlalchemy as sa

from crm_sync import staging
from crm_sync.load.writer import LoadItem
from crm_sync.plan import HUBSPOT_OBJECTS, SALESFORCE_OBJECTS, Ref
from crm_sync.plan import parse_ref as plan_ref

#: Objects a plan row can create, hence name in a reference.
CREATABLE = frozenset(HUBSPOT_OBJECTS) | frozenset(SALESFORCE_OBJECTS)

#: Plan object -> (sync_link object, side of the link the create's ``source_id`` is on).
LINK_OBJECTS: dict[str, tuple[str, str]] = {
    "companies": ("Account", "sf_id"),
    "deals": ("Opportunity", "sf_id"),
    "pipelines": ("RecordType", "sf_id"),
    "Account": ("Account", "hs_id"),
    "Contact": ("Contact", "hs_id"),
    "Lead": ("Lead", "hs_id"),
    "Opportunity": ("Opportunity", "hs_id"),
}


def parse_ref(value: Any) -> Ref | None:
    """The reference ``value`` spells, if it names an object the plan creates; text that only
    looks like one (``@team:sales`` in a description) stays a value."""
    ref = plan_ref(value)
    return ref if ref is not None and ref.object in CREATABLE else None


class UnresolvedReferenceError(LookupError):
    """A row names a record whose create has not succeeded (yet); the row waits for a later run."""


class RefResolver:
    """Ids of records created this run, with ``sync_link`` as the fallback."""

    def __init__(self, engine: sa.Engine, stage_labels: Mapping[tuple[str, str], str] | None = None) -> None:
        self._engine = engine
        self._ids: dict[tuple[str, str], str] = {}
        self._stage_labels = dict(stage_labels or {})

    @classmethod
    def for_run(cls, engine: sa.Engine, run_id: str) -> RefResolver:
        """A resolver that knows the labels of the stages of pipelines run ``run_id`` creates (DEAL-2)."""
        labels: dict[tuple[str, str], str] = {}
        stages = staging.read_run_rows(
            engine, "rule_pipeline_stages", run_id, ("pipeline_key", "stage_api_name", "stage_label")
        )
        for key, api, label in zip(
            stages["pipeline_key"], stages["stage_api_name"], stages["stage_label"], strict=True
        ):
            if isinstance(key, str) and isinstance(api, str) and isinstance(label, str):
                labels[(key, api)] = label
        return cls(engine, labels)

    def created(self, obj: str, source_id: str | None, target_id: str | None) -> None:
        """Remember the id a create returned."""
        if source_id is not None and target_id is not None:
            self._ids[(obj, source_id)] = target_id

    def created_children(self, source_id: str | None, children: tuple[tuple[str, str], ...]) -> None:
        """Remember the stages of a pipeline created from key ``source_id``, by stage label."""
        if source_id is None:
            return
        by_label = dict(children)
        for (key, api), label in self._stage_labels.items():
            if key == source_id and label in by_label:
                self._ids[("pipelines", f"{key}/{api}")] = by_label[label]

    def resolve(self, value: Any) -> Any:
        """``value`` with a reference replaced by its id; raises if the record is not known."""
        ref = parse_ref(value)
        if ref is None:
            return value
        found = self._ids.get((ref.object, ref.source_id)) or self._linked(ref)
        if found is None:
            raise UnresolvedReferenceError(
                f"{value} names a {ref.object} record this run has not created (its create failed or waits)"
            )
        return found

    def resolve_item(self, item: LoadItem) -> LoadItem:
        """The item with every reference in ``target_id`` and ``fields`` resolved."""
        fields = {k: self.resolve(v) for k, v in item.fields.items()}
        return replace(item, target_id=self.resolve(item.target_id), fields=fields)

    def _linked(self, ref: Ref) -> str | None:
        link = LINK_OBJECTS.get(ref.object)
        if link is None:
            return None
        link_object, source_side = link
        other = "hs_id" if source_side == "sf_id" else "sf_id"
        table = staging.sync_link
        with self._engine.connect() as conn:
            found = conn.execute(
                sa.select(table.c[other]).where(
                    table.c.object == link_object, table.c[source_side] == ref.source_id
                )
            ).scalar()
        if found is not None:
            self._ids[(ref.object, ref.source_id)] = str(found)
        return None if found is None or pd.isna(found) else str(found)
