"""SYNC-2: value maps between a Salesforce picklist and a HubSpot enumeration.

The two CRMs rarely spell a choice the same way: Salesforce ``Type`` holds ``New Business``
where HubSpot's ``dealtype`` holds ``newbusiness`` (labelled ``New Business``). A value is
translated to the option of the other side whose value *or* label equals its value or label,
case-insensitively; a mapping's ``values`` in the config (Salesforce value -> HubSpot value)
overrides that per value. A value with no counterpart is not written: that one field is
skipped with rule and reason, and the rest of the record syncs.

Options come from the CRMs' own metadata, staged in :data:`PICKLIST_OPTIONS_TABLE`
(:data:`OPTION_COLUMNS`: Salesforce describe ``picklistValues``, HubSpot property ``options``).
Where the target side's options are unknown, a value passes unchanged (the CRM's own check
decides), after the config overrides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm_sync.catalog import stream
from crm_sync.rules.normalize import as_text, column
from crm_sync.settings import FieldMapping

#: Staged picklist / enumeration options of both CRMs (absent until extraction stages them).
PICKLIST_OPTIONS_TABLE = "picklist_options"
#: ``system`` (salesforce|hubspot), ``object`` (SObject or HubSpot object), ``field``,
#: ``value`` (what the API stores), ``label`` (what a person sees).
OPTION_COLUMNS: tuple[str, ...] = ("system", "object", "field", "value", "label")


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


@dataclass(frozen=True)
class ValueMap:
    """Both directions of one picklist <-> enumeration pair: folded value or label -> value.

    ``known_*``: whether that side's options are known (else values pass through).
    """

    to_hubspot: Mapping[str, str] = field(default_factory=dict)
    to_salesforce: Mapping[str, str] = field(default_factory=dict)
    known_hubspot: bool = False
    known_salesforce: bool = False

    def translate(self, values: pd.Series, *, to_hubspot: bool) -> tuple[pd.Series, np.ndarray]:
        """``values`` in the other side's spelling, and the mask of values without a counterpart
        (blank values always translate to blank)."""
        table = self.to_hubspot if to_hubspot else self.to_salesforce
        known = self.known_hubspot if to_hubspot else self.known_salesforce
        text = as_text(values.reset_index(drop=True))
        folded = text.map(lambda v: _fold(v) if isinstance(v, str) else None)
        found = folded.map(table)
        present = text.notna().to_numpy()
        missing = present & found.isna().to_numpy()
        out = found.astype(object).where(~pd.Series(missing), None if known else text.astype(object))
        unmapped = missing if known else np.zeros(len(text), dtype=bool)
        return pd.Series(out.to_numpy(dtype=object), index=values.index, dtype=object), unmapped


def _options(options: pd.DataFrame, system: str, obj: str, name: str) -> pd.DataFrame:
    if options.empty:
        return pd.DataFrame({"value": pd.Series(dtype=object), "label": pd.Series(dtype=object)})
    mine = (
        (as_text(column(options, "system")) == system)
        & (as_text(column(options, "object")) == obj)
        & (as_text(column(options, "field")) == name)
    ).to_numpy(dtype=bool, na_value=False)
    values = as_text(column(options, "value"))[mine]
    labels = as_text(column(options, "label"))[mine].fillna(values)
    return pd.DataFrame({"value": values.astype(object), "label": labels.astype(object)}).dropna()


def _index(target: pd.DataFrame, source: pd.DataFrame) -> dict[str, str]:
    """Folded spellings of a value -> the target's value: the target's own values and labels,
    then each source value whose label names a target option."""
    table: dict[str, str] = {}
    for value, label in zip(target["value"], target["label"], strict=True):
        table.setdefault(_fold(value), value)
        table.setdefault(_fold(label), value)
    for value, label in zip(source["value"], source["label"], strict=True):
        if _fold(value) not in table and _fold(label) in table:
            table[_fold(value)] = table[_fold(label)]
    return table


def is_picklist_pair(mapping: FieldMapping, sf_object: str, hs_object: str) -> bool:
    """Whether the catalog types both sides of ``mapping`` as picklists (enumerations)."""
    try:
        sf_type = stream("salesforce", sf_object).field(mapping.salesforce).type
        hs_type = stream("hubspot", hs_object).field(mapping.hubspot).type
    except KeyError:
        return False
    return sf_type == "picklist" and hs_type == "picklist"


def value_map(
    mapping: FieldMapping, *, sf_object: str, hs_object: str, options: pd.DataFrame | None = None
) -> ValueMap | None:
    """The value map of one mapping, or None when it is not a picklist pair (values pass as text)."""
    if not (is_picklist_pair(mapping, sf_object, hs_object) or mapping.values):
        return None
    frame = options if options is not None else pd.DataFrame()
    sf = _options(frame, "salesforce", sf_object, mapping.salesforce)
    hs = _options(frame, "hubspot", hs_object, mapping.hubspot)
    to_hs = _index(hs, sf)
    to_sf = _index(sf, hs)
    for sf_value, hs_value in mapping.values:  # the config wins, both ways
        to_hs[_fold(sf_value)] = hs_value
        to_sf[_fold(hs_value)] = sf_value
    return ValueMap(to_hs, to_sf, known_hubspot=not hs.empty, known_salesforce=not sf.empty)


def unmapped_reason(
    values: pd.Series, *, source: str, source_field: str, target: str, target_field: str
) -> pd.Series:
    """SYNC-2: why a value of ``source_field`` is not written to ``target_field``."""
    return (
        f"SYNC-2: {source} {source_field} "
        + values.astype(str).map(repr)
        + f" has no counterpart among {target} {target_field}'s options; that field is not synced,"
        " the rest of the record is (map it in the config: field_mappings ... values)"
    )


__all__ = [
    "OPTION_COLUMNS",
    "PICKLIST_OPTIONS_TABLE",
    "ValueMap",
    "is_picklist_pair",
    "unmapped_reason",
    "value_map",
]
