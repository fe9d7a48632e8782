"""DEAL-6: OpportunityContactRoles <-> deal-contact associations, removals included.

Comparing the two sides alone cannot tell a role *added* in Salesforce from an association
*removed* in HubSpot: both look like "a role without an association". The last-synced snapshot
of the pairs both sides held decides it (as SYNC-3's value snapshot does for fields):

* a role and an association: in sync, nothing to do;
* only a role: in the snapshot -> the association was removed in HubSpot, so the role is
  deleted; not in it -> the role is new, so the association is created;
* only an association: in the snapshot -> the role was deleted in Salesforce, so the
  association is removed; not in it -> it is new, so a role is created;
* neither: the snapshot row is dropped.

A removal is therefore never undone by re-creating it from the other side. Only pairs whose
Opportunity/deal and Contact/contact both exist and are linked take part (records created in
this plan have nothing to remove yet).

The snapshot a run leaves (:func:`next_association_snapshot`) holds the quadruples observed
on *both* sides when the run planned, plus those still present on one side whose removal this
plan carries out. It depends on observed state only, so it is right whether or not this run's
writes succeed: a failed create is retried next run (it is not in the snapshot), a failed
removal is retried too (its row stays). The loader stores it in
:data:`ASSOCIATION_SNAPSHOT_TABLE` after the load (see :func:`next_association_snapshot`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from crm_sync.plan import REF_PREFIX
from crm_sync.rules.normalize import as_text, column

#: The last-synced deal-contact snapshot, read by the rules (``RuleInputs.association_snapshot``)
#: and replaced by the loader after a load.
ASSOCIATION_SNAPSHOT_TABLE = "sync_association_snapshot"
#: The snapshot this run's plan leaves, written by the ``plan_deals`` stage.
PLANNED_ASSOCIATION_SNAPSHOT_TABLE = "rule_association_snapshot"
#: One row per Opportunity/deal pair and Contact/contact pair whose role and association are
#: both synced: ``opportunity_id``, ``deal_id``, ``contact_id`` (SF Contact), ``hs_contact_id``.
ASSOCIATION_SNAPSHOT_COLUMNS: tuple[str, ...] = ("opportunity_id", "deal_id", "contact_id", "hs_contact_id")

#: The quadruple in the rules' own column names: Opportunity, deal, SF Contact, HubSpot contact.
_KEY = ["sf_key", "hs_key", "contact_sf", "contact_hs"]


@dataclass(frozen=True)
class DealContactChanges:
    """What DEAL-6 does this run. Frames carry ``sf_key`` (Opportunity), ``hs_key`` (deal),
    ``contact_sf`` and ``contact_hs`` (ids or created refs); ``delete_roles`` also ``role_id``."""

    create_associations: pd.DataFrame
    create_roles: pd.DataFrame
    delete_roles: pd.DataFrame
    delete_associations: pd.DataFrame
    snapshot: pd.DataFrame


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def _snapshot_keys(snapshot: pd.DataFrame) -> pd.DataFrame:
    """The stored snapshot in the rules' column names (text ids, duplicates dropped)."""
    names = dict(zip(ASSOCIATION_SNAPSHOT_COLUMNS, _KEY, strict=True))
    frame = pd.DataFrame({names[c]: as_text(column(snapshot, c)).astype(object) for c in names})
    return frame.dropna().drop_duplicates(ignore_index=True)


def _marked(frame: pd.DataFrame, keys: pd.DataFrame, on: list[str]) -> pd.Series:
    """True for the rows of ``frame`` whose ``on`` columns appear among ``keys``' rows."""
    if frame.empty or keys.empty:
        return pd.Series(False, index=frame.index, dtype=bool)
    probe = (
        frame[on]
        .astype(object)
        .merge(keys[on].astype(object).drop_duplicates().assign(_hit=True), on=on, how="left")
    )
    return pd.Series(probe["_hit"].notna().to_numpy(dtype=bool), index=frame.index)


def _real(frame: pd.DataFrame) -> pd.Series:
    """Rows whose four ids are all existing records (no created refs)."""
    ok = pd.Series(True, index=frame.index, dtype=bool)
    for name in _KEY:
        ok &= ~frame[name].astype(str).str.startswith(REF_PREFIX).to_numpy(dtype=bool)
    return ok


def deal_contact_changes(
    roles: pd.DataFrame,
    associations: pd.DataFrame,
    pairs: pd.DataFrame,
    contacts: pd.DataFrame,
    snapshot: pd.DataFrame,
) -> DealContactChanges:
    """DEAL-6 decisions (see the module docstring).

    ``roles``: live roles (``role_id``, ``sf_key`` = OpportunityId, ``contact_sf``);
    ``associations``: live deal -> contact associations (``hs_key``, ``contact_hs``);
    ``pairs``: Opportunity/deal pairs that sync after this plan (``sf_key``, ``hs_key``);
    ``contacts``: Contact/contact pairs (``contact_sf``, ``contact_hs``); ``snapshot``: the
    stored :data:`ASSOCIATION_SNAPSHOT_COLUMNS` rows.
    """
    role_side = roles.merge(pairs[["sf_key", "hs_key"]], on="sf_key").merge(contacts, on="contact_sf")
    role_side = role_side.drop_duplicates(_KEY, ignore_index=True)
    assoc_side = associations.merge(pairs[["sf_key", "hs_key"]], on="hs_key").merge(contacts, on="contact_hs")
    assoc_side = assoc_side.drop_duplicates(_KEY, ignore_index=True)
    synced = _snapshot_keys(snapshot)

    only_roles = role_side[~_marked(role_side, associations, ["hs_key", "contact_hs"])]
    removed_in_hs = _marked(only_roles, synced, _KEY)
    only_assoc = assoc_side[~_marked(assoc_side, roles, ["sf_key", "contact_sf"])]
    removed_in_sf = _marked(only_assoc, synced, _KEY)

    both = role_side[_marked(role_side, assoc_side, _KEY)][_KEY]
    pending = pd.concat([only_roles[removed_in_hs][_KEY], only_assoc[removed_in_sf][_KEY]], ignore_index=True)
    kept = pd.concat([both, pending], ignore_index=True).drop_duplicates(ignore_index=True)
    kept = kept[_real(kept)]
    return DealContactChanges(
        create_associations=only_roles[~removed_in_hs].reset_index(drop=True),
        create_roles=only_assoc[~removed_in_sf].reset_index(drop=True),
        delete_roles=only_roles[removed_in_hs].reset_index(drop=True),
        delete_associations=only_assoc[removed_in_sf].reset_index(drop=True),
        snapshot=next_association_snapshot(
            kept.rename(columns=dict(zip(_KEY, ASSOCIATION_SNAPSHOT_COLUMNS, strict=True)))
        ),
    )


def next_association_snapshot(planned: pd.DataFrame) -> pd.DataFrame:
    """The DEAL-6 snapshot to store after a load, from the ``plan_deals`` stage's table.

    Pure: ``planned`` is :data:`PLANNED_ASSOCIATION_SNAPSHOT_TABLE` as read back from staging
    (extra columns such as ``_run_id`` are ignored). Returns :data:`ASSOCIATION_SNAPSHOT_COLUMNS`
    rows, text ids, sorted and without duplicates or created refs, to *replace* the contents of
    :data:`ASSOCIATION_SNAPSHOT_TABLE`. Whether this run's writes succeeded does not matter
    (the rows are observed state), so the loader stores it after every load that ran.
    """
    if planned.empty:
        return _empty(list(ASSOCIATION_SNAPSHOT_COLUMNS))
    frame = pd.DataFrame(
        {c: as_text(column(planned, c)).astype(object) for c in ASSOCIATION_SNAPSHOT_COLUMNS}
    )
    frame = frame.dropna()
    refs = pd.Series(False, index=frame.index, dtype=bool)
    for name in ASSOCIATION_SNAPSHOT_COLUMNS:
        refs |= frame[name].astype(str).str.startswith(REF_PREFIX).to_numpy(dtype=bool)
    frame = frame[~refs].drop_duplicates()
    return frame.sort_values(list(ASSOCIATION_SNAPSHOT_COLUMNS), kind="stable").reset_index(drop=True)


__all__ = [
    "ASSOCIATION_SNAPSHOT_COLUMNS",
    "ASSOCIATION_SNAPSHOT_TABLE",
    "PLANNED_ASSOCIATION_SNAPSHOT_TABLE",
    "DealContactChanges",
    "deal_contact_changes",
    "next_association_snapshot",
]
