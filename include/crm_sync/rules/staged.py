"""Reading the staged frames the rules share: live records, links and associations.

Staging stores what the APIs returned, and a stream that was never extracted is an empty frame
without columns; these readers treat that as "no records" instead of crashing, and accept
SQLite's and PostgreSQL's spellings of booleans and ids (see :mod:`crm_sync.rules.normalize`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from crm_sync.rules.normalize import as_bool, as_text, as_timestamp, column


def alive(frame: pd.DataFrame) -> pd.Series:
    """Rows that are not deleted: neither ``_deleted`` (staging) nor SF ``IsDeleted`` nor HS
    ``archived`` is true. Deleted records never match or link (CON-1, ACC-3, ACC-6)."""
    dead = as_bool(column(frame, "_deleted"))
    for name in ("IsDeleted", "archived"):
        if name in frame.columns:
            dead = dead | as_bool(frame[name])
    return ~dead


def account_companies(account_links: pd.DataFrame, company: str = "hs_id") -> pd.DataFrame:
    """Account -> company pairs (``account_id``, ``company``) from the account pairs (``sf_id``,
    ``hs_id``): complete pairs only, the first company per Account. DEAL-7 associates a deal
    with it, and the company rollups (ROLL-1..6) count the Account's deals."""
    return (
        pd.DataFrame(
            {
                "account_id": account_links["sf_id"].astype(object),
                company: account_links["hs_id"].astype(object),
            }
        )
        .dropna()
        .drop_duplicates("account_id")
    )


def link_pairs(links: pd.DataFrame, sf_objects: Iterable[str]) -> pd.DataFrame:
    """Rows of the staging link table for the given SF objects: ``object, sf_id, hs_id``.

    Ids are compared as text; a record linked twice keeps its most recent link (``linked_at``);
    a link whose ``linked_at`` is missing ranks below every dated one.
    """
    cols = ["object", "sf_id", "hs_id"]
    if links.empty or "sf_id" not in links.columns:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in cols})
    objects = as_text(column(links, "object"))
    mine = objects.isin(list(sf_objects)).to_numpy(dtype=bool)
    rows = links[mine]  # the link table holds every object: read only the wanted rows' ids
    frame = pd.DataFrame(
        {
            "object": objects[mine],
            "sf_id": as_text(column(rows, "sf_id")),
            "hs_id": as_text(column(rows, "hs_id")),
            "linked_at": as_timestamp(column(rows, "linked_at")),
        }
    )
    frame = frame[frame["sf_id"].notna() & frame["hs_id"].notna()]
    # A link without a time is never the most recent one.
    frame = frame.sort_values("linked_at", ascending=False, kind="stable", na_position="last")
    return frame[cols].reset_index(drop=True)


#: Column spellings accepted for the staged HubSpot association table.
_ASSOC_FROM_TYPE = ("from_object", "from_type", "fromObjectType")
_ASSOC_TO_TYPE = ("to_object", "to_type", "toObjectType")
_ASSOC_FROM_ID = ("from_id", "fromObjectId")
_ASSOC_TO_ID = ("to_id", "toObjectId")


def _first_column(frame: pd.DataFrame, names: Sequence[str]) -> pd.Series:
    for name in names:
        if name in frame.columns:
            return frame[name]
    return column(frame, names[0])


def association_ends(hs_association: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series, pd.Series]:
    """``(from type, from id, to type, to id)`` of staged associations as text, whichever spelling."""
    return (
        as_text(_first_column(hs_association, _ASSOC_FROM_TYPE)),
        as_text(_first_column(hs_association, _ASSOC_FROM_ID)),
        as_text(_first_column(hs_association, _ASSOC_TO_TYPE)),
        as_text(_first_column(hs_association, _ASSOC_TO_ID)),
    )


def associations(hs_association: pd.DataFrame, from_object: str, to_object: str) -> pd.DataFrame:
    """HubSpot associations between two object types as ``from_id, to_id`` (text), both directions.

    Reads the staged ``hs_association`` table (columns ``from_object, from_id, to_object,
    to_id``; ``_deleted`` rows are removed associations). A row stored in the opposite direction
    (``companies`` -> ``contacts``) counts too; duplicates are dropped.
    """
    cols = ["from_id", "to_id"]
    if hs_association.empty:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in cols})
    keep = alive(hs_association)
    ftype = as_text(_first_column(hs_association, _ASSOC_FROM_TYPE))
    ttype = as_text(_first_column(hs_association, _ASSOC_TO_TYPE))
    forward = (keep & (ftype == from_object) & (ttype == to_object)).to_numpy(dtype=bool)
    backward = (keep & (ftype == to_object) & (ttype == from_object)).to_numpy(dtype=bool)
    either = forward | backward
    rows = hs_association[either]  # the table holds every object pair: read only these ids
    fid = as_text(_first_column(rows, _ASSOC_FROM_ID))
    tid = as_text(_first_column(rows, _ASSOC_TO_ID))
    forward, backward = forward[either], backward[either]
    frame = pd.concat(
        [
            pd.DataFrame({"from_id": fid[forward], "to_id": tid[forward]}),
            pd.DataFrame({"from_id": tid[backward], "to_id": fid[backward]}),
        ],
        ignore_index=True,
    )
    frame = frame.dropna().drop_duplicates(ignore_index=True)
    return frame.astype("str")
