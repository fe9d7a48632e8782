"""Field-by-field comparison of linked pairs across Salesforce and HubSpot, after normalisation.

For every linked pair (``sync_link``: Account/company, Contact/contact, Lead/contact,
Opportunity/deal) whose two records are both staged and live, each synced field is compared in
the canonical form the SYNC-3 merge uses (:func:`crm_sync.rules.merge.mapped_fields`: dates as
days, datetimes to the second, numbers as floats, URLs as hosts, emails case-insensitively), so
the report calls "different" exactly what the sync would call a change. Fields that go through
a translation are compared through the same one the rules use:

* owner: ``OwnerId`` and ``hubspot_owner_id`` by the owner's email (OWN-5's owner map);
* deal pipeline: the Opportunity's record type's pipeline name vs the deal's pipeline name
  (DEAL-2, ``rule_pipelines``); deal stage: the Opportunity's stage label vs the deal stage's label;
* currency: ``CurrencyIsoCode`` vs ``deal_currency_code`` (DEAL-8).

Per object and field: pairs compared, matches, mismatches, missing on one side (blank there,
set on the other), and examples. Pure: frames in, :class:`FieldStats` out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crm_sync.rules.merge import PairSides, align_pairs, canonical, mapped_fields, owner_field
from crm_sync.rules.normalize import as_text, column
from crm_sync.rules.owners import OwnerMap
from crm_sync.rules.pipelines import pipeline_keys
from crm_sync.rules.staged import alive
from crm_sync.settings import SyncConfig

#: (SF object, HubSpot object, mapping group, staged SF table, staged HS table).
PAIR_OBJECTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("Account", "companies", "accounts", "sf_account", "hs_company"),
    ("Contact", "contacts", "contacts", "sf_contact", "hs_contact"),
    ("Lead", "contacts", "leads", "sf_lead", "hs_contact"),
    ("Opportunity", "deals", "opportunities", "sf_opportunity", "hs_deal"),
)


@dataclass
class FieldStats:
    """One synced field of one object pair, over all its linked pairs."""

    object: str
    field: str
    salesforce_field: str
    hubspot_field: str
    compared: int = 0
    matches: int = 0
    mismatches: int = 0
    missing_salesforce: int = 0
    missing_hubspot: int = 0
    examples: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def mismatch_rate(self) -> float:
        """Pairs that disagree (different values, or set on one side only) per pair compared."""
        differing = self.mismatches + self.missing_salesforce + self.missing_hubspot
        return differing / self.compared if self.compared else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "field": self.field,
            "salesforce_field": self.salesforce_field,
            "hubspot_field": self.hubspot_field,
            "compared": self.compared,
            "matches": self.matches,
            "mismatches": self.mismatches,
            "missing_salesforce": self.missing_salesforce,
            "missing_hubspot": self.missing_hubspot,
            "mismatch_rate": round(self.mismatch_rate, 6),
            "examples": self.examples,
        }


@dataclass
class ObjectComparison:
    """All fields of one object pair, plus links whose records are not both staged and live."""

    object: str
    pairs: int
    compared: int
    records_missing: int
    fields: list[FieldStats]


@dataclass(frozen=True)
class _Compared:
    name: str
    sf_field: str
    hs_field: str
    sf_key: pd.Series
    hs_key: pd.Series
    sf_raw: pd.Series
    hs_raw: pd.Series


def field_stats(obj: str, item: _Compared, pairs: pd.DataFrame, examples: int) -> FieldStats:
    """Count matches, mismatches and one-sided values of one field; keep the first examples."""
    sf_key = item.sf_key.reset_index(drop=True)
    hs_key = item.hs_key.reset_index(drop=True)
    sf_blank = sf_key.isna().to_numpy()
    hs_blank = hs_key.isna().to_numpy()
    equal = (sf_key == hs_key).to_numpy(dtype=bool, na_value=False)
    match = equal | (sf_blank & hs_blank)
    missing_sf = sf_blank & ~hs_blank
    missing_hs = hs_blank & ~sf_blank
    mismatch = ~match & ~missing_sf & ~missing_hs
    stats = FieldStats(
        object=obj,
        field=item.name,
        salesforce_field=item.sf_field,
        hubspot_field=item.hs_field,
        compared=len(sf_key),
        matches=int(match.sum()),
        mismatches=int(mismatch.sum()),
        missing_salesforce=int(missing_sf.sum()),
        missing_hubspot=int(missing_hs.sum()),
    )
    kinds = (("mismatch", mismatch), ("missing_salesforce", missing_sf), ("missing_hubspot", missing_hs))
    for kind, mask in kinds:
        for i in np.flatnonzero(mask)[: max(examples - len(stats.examples), 0)].tolist():
            stats.examples.append(
                {
                    "kind": kind,
                    "sf_id": str(pairs["sf_id"].iat[i]),
                    "hs_id": str(pairs["hs_id"].iat[i]),
                    "salesforce": _plain(item.sf_raw.iat[i]),
                    "hubspot": _plain(item.hs_raw.iat[i]),
                }
            )
    return stats


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def live_pairs(
    links: pd.DataFrame, sf_object: str, sf: pd.DataFrame, hs: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """The object's links whose two records are staged and live; and how many links are not."""
    if links.empty:
        return pd.DataFrame({"sf_id": pd.Series(dtype="str"), "hs_id": pd.Series(dtype="str")}), 0
    mine = links[as_text(column(links, "object")) == sf_object]
    pairs = pd.DataFrame({"sf_id": as_text(mine["sf_id"]), "hs_id": as_text(mine["hs_id"])}).dropna()
    empty = pd.Series(dtype="str")
    sf_live = as_text(column(sf, "Id"))[alive(sf)].dropna() if not sf.empty else empty
    hs_live = as_text(column(hs, "id"))[alive(hs)].dropna() if not hs.empty else empty
    ok = pairs["sf_id"].isin(sf_live.to_numpy(dtype=object)) & pairs["hs_id"].isin(
        hs_live.to_numpy(dtype=object)
    )
    kept = pairs[ok.to_numpy(dtype=bool)].sort_values("sf_id", kind="stable").reset_index(drop=True)
    return kept, int((~ok).sum())


def _owner(sides: PairSides, owners: OwnerMap) -> _Compared:
    sf_raw = column(sides.sf, "OwnerId")
    hs_raw = column(sides.hs, "hubspot_owner_id")
    f = owner_field(owners, sf_raw, hs_raw)
    return _Compared("owner", "OwnerId", "hubspot_owner_id", f.sf_key, f.hs_key, sf_raw, hs_raw)


def _deal_translations(sides: PairSides, frames: Mapping[str, pd.DataFrame]) -> list[_Compared]:
    """DEAL-2 pipeline and stage by name, DEAL-8 currency code (see the module docstring)."""
    pipelines = frames.get("rule_pipelines", pd.DataFrame())
    hs_pipelines = frames.get("hs_pipeline", pd.DataFrame())
    sf_stages = frames.get("sf_opportunity_stage", pd.DataFrame())
    hs_stages = frames.get("hs_pipeline_stage", pd.DataFrame())
    out: list[_Compared] = []
    if not pipelines.empty:
        keys = pipeline_keys(sides.sf, pipelines)
        label_of = pd.Series(
            as_text(pipelines["label"]).to_numpy(dtype=object), index=as_text(pipelines["pipeline_key"])
        )
        sf_label = keys.map(label_of)
        hs_label = as_text(column(sides.hs, "pipeline")).map(_by_id(hs_pipelines, "id", "label"))
        out.append(
            _Compared(
                "pipeline",
                "RecordTypeId",
                "pipeline",
                canonical(sf_label, "string").str.casefold(),
                canonical(hs_label, "string").str.casefold(),
                column(sides.sf, "RecordTypeId"),
                column(sides.hs, "pipeline"),
            )
        )
    sf_stage = as_text(column(sides.sf, "StageName"))
    stage_label = _by_id(sf_stages, "ApiName", "MasterLabel")
    sf_stage_label = sf_stage.map(stage_label).fillna(sf_stage) if not stage_label.empty else sf_stage
    hs_stage_label = as_text(column(sides.hs, "dealstage")).map(_by_id(hs_stages, "id", "label"))
    out.append(
        _Compared(
            "stage",
            "StageName",
            "dealstage",
            canonical(sf_stage_label, "string").str.casefold(),
            canonical(hs_stage_label, "string").str.casefold(),
            column(sides.sf, "StageName"),
            column(sides.hs, "dealstage"),
        )
    )
    out.append(
        _Compared(
            "currency",
            "CurrencyIsoCode",
            "deal_currency_code",
            canonical(column(sides.sf, "CurrencyIsoCode"), "string").str.upper(),
            canonical(column(sides.hs, "deal_currency_code"), "string").str.upper(),
            column(sides.sf, "CurrencyIsoCode"),
            column(sides.hs, "deal_currency_code"),
        )
    )
    return out


def _by_id(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    if frame.empty or key not in frame.columns:
        return pd.Series(dtype=object)
    ids = as_text(frame[key])
    keep = ids.notna() & ~ids.duplicated(keep="last")
    return pd.Series(as_text(column(frame, value))[keep].to_numpy(dtype=object), index=ids[keep].to_numpy())


def compare_object(
    spec: tuple[str, str, str, str, str],
    frames: Mapping[str, pd.DataFrame],
    config: SyncConfig,
    owners: OwnerMap,
    examples: int = 5,
) -> ObjectComparison:
    """Every synced field of one object pair over its live linked pairs."""
    sf_object, hs_object, group, sf_table, hs_table = spec
    sf = frames.get(sf_table, pd.DataFrame())
    hs = frames.get(hs_table, pd.DataFrame())
    links = frames.get("sync_link", pd.DataFrame())
    pairs, missing = live_pairs(links, sf_object, sf, hs)
    n_links = len(pairs) + missing
    label = f"{sf_object} / {hs_object}"
    if pairs.empty:
        return ObjectComparison(label, n_links, 0, missing, [])
    sides = align_pairs(pairs, sf, hs)
    mappings = [m for m in config.mappings(group) if m.rule != "none"]
    compared = [
        _Compared(
            m.salesforce,
            m.salesforce,
            m.hubspot,
            f.sf_key,
            f.hs_key,
            column(sides.sf, m.salesforce),
            column(sides.hs, m.hubspot),
        )
        for m, f in zip(
            mappings, mapped_fields(sides, mappings, sf_object=sf_object, hs_object=hs_object), strict=True
        )
    ]
    compared.append(_owner(sides, owners))
    if sf_object == "Opportunity":
        compared += _deal_translations(sides, frames)
    stats = [field_stats(label, item, pairs, examples) for item in compared]
    return ObjectComparison(label, n_links, len(pairs), missing, stats)


def compare_all(
    frames: Mapping[str, pd.DataFrame], config: SyncConfig, owners: OwnerMap, examples: int = 5
) -> list[ObjectComparison]:
    """:func:`compare_object` for every object pair (companies only with company sync on)."""
    specs: Sequence[tuple[str, str, str, str, str]] = [
        s for s in PAIR_OBJECTS if config.companies_sync or s[0] != "Account"
    ]
    return [compare_object(s, frames, config, owners, examples) for s in specs]
