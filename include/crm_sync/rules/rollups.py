"""ROLL-1..ROLL-6: the deal rollups HubSpot should show on contacts and companies, and DEAL-8's
currency flags.

HubSpot calculates these properties itself from the associated deals and rejects writes to
them (read-only), so crm-sync never plans them: it computes what HubSpot should show once the
plan is loaded (``rule_rollups``) and lists where the staged HubSpot values differ
(``rule_rollup_differences``) for the quality report.

Rollups are computed from scratch on every run from the *post-plan* deal state
(:data:`~crm_sync.rules.deals.DEAL_STATE_COLUMNS`: live deals with this plan's writes applied,
plus the deals it creates) and from all current associations, never incrementally: a deleted
deal or a removed association simply is not in the input any more, so it drops out (ROLL-6).
Using the post-plan state gives the values HubSpot will show once this plan is loaded.

* contacts: the deals associated with the contact (``deal_contacts``);
* companies: the deals of the Account linked to the company (``account_links``), i.e. the
  Opportunities whose ``AccountId`` is that Account.

Per record: ROLL-1 ``num_associated_deals`` (open or closed), ROLL-2
``first_deal_created_date`` (earliest create date), and over closed-won deals only: ROLL-3
``recent_deal_close_date`` (latest close date), ROLL-4 ``recent_deal_amount`` (amount of the
most recently *created* closed-won deal; ties: the higher deal id), ROLL-5 ``total_revenue``
(sum of amounts). ROLL-6: no closed-won deal -> ROLL-3..5 are null, never zero.

DEAL-8 beyond: amounts are never converted, so a record whose closed-won deals carry more than
one currency gets a rollup that adds apples to oranges; it is listed in
:data:`CURRENCY_FLAG_COLUMNS` for the quality report.

Everything is a groupby over integer codes (numpy), no per-record Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_sync.plan import REF_PREFIX, json_safe, json_texts
from crm_sync.rules.merge import ValueKind, changed_mask
from crm_sync.rules.normalize import as_text, column
from crm_sync.rules.staged import account_companies, alive

ROLLUP_FIELDS: tuple[str, ...] = (
    "num_associated_deals",
    "first_deal_created_date",
    "recent_deal_close_date",
    "recent_deal_amount",
    "total_revenue",
)
ROLLUP_KINDS: dict[str, ValueKind] = {
    "num_associated_deals": "number",
    "first_deal_created_date": "datetime",
    "recent_deal_close_date": "datetime",
    "recent_deal_amount": "number",
    "total_revenue": "number",
}
ROLLUP_RULES: dict[str, tuple[str, ...]] = {
    "num_associated_deals": ("ROLL-1",),
    "first_deal_created_date": ("ROLL-2",),
    "recent_deal_close_date": ("ROLL-3",),
    "recent_deal_amount": ("ROLL-4",),
    "total_revenue": ("ROLL-5",),
}
#: One row per record with deals: ``object`` (contacts|companies), ``record_id`` (HubSpot id or
#: created ref), the five rollups, ``won_deals`` and ``currencies`` (comma-separated codes of
#: its closed-won deals). Persisted as ``rule_rollups``.
ROLLUP_COLUMNS: tuple[str, ...] = ("object", "record_id", *ROLLUP_FIELDS, "won_deals", "currencies")
#: DEAL-8 beyond: records whose closed-won deals mix currencies (``rule_currency_flags``).
CURRENCY_FLAG_COLUMNS: tuple[str, ...] = ("object", "record_id", "currencies", "won_deals", "total_revenue")


def compute_rollups(edges: pd.DataFrame, deals: pd.DataFrame) -> pd.DataFrame:
    """ROLL-1..ROLL-6 for every record of ``edges`` (``record_id, deal_key``) over ``deals``.

    ``deals``: :data:`~crm_sync.rules.deals.DEAL_STATE_COLUMNS`. Edges to deals not in
    ``deals`` (deleted, archived) are ignored; duplicate edges count once. Returns one row per
    record with at least one deal, indexed by ``record_id``, with :data:`ROLLUP_FIELDS`,
    ``won_deals`` and ``currencies``; ROLL-3..5 are NaN/NaT without a closed-won deal (ROLL-6).
    """
    cols = [*ROLLUP_FIELDS, "won_deals", "currencies"]
    if edges.empty or deals.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols}, index=pd.Index([], name="record_id"))
    e = edges[["record_id", "deal_key"]].dropna().drop_duplicates()
    d = deals.drop_duplicates("deal_key")
    pos = pd.Index(d["deal_key"].to_numpy(dtype=object)).get_indexer(e["deal_key"].to_numpy(dtype=object))
    keep = pos >= 0
    pos = pos[keep]
    codes, uniques = pd.factorize(e["record_id"].to_numpy(dtype=object)[keep])
    n = len(uniques)
    created = _as_ns(d["created_at"]).to_numpy()[pos]
    close = _as_ns(d["close_date"]).to_numpy()[pos]
    amount = pd.to_numeric(d["amount"], errors="coerce").to_numpy(dtype=float)[pos]
    won = d["is_won"].to_numpy(dtype=bool)[pos]
    currency = d["currency"].to_numpy(dtype=object)[pos]
    deal_key = d["deal_key"].to_numpy(dtype=object)[pos]

    num = np.bincount(codes, minlength=n).astype(np.int64)
    nat = np.iinfo(np.int64).min
    created_i = created.view(np.int64)
    close_i = close.view(np.int64)
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    known = created_i != nat
    np.minimum.at(first, codes[known], created_i[known])

    wc = codes[won]
    won_count = np.bincount(wc, minlength=n)
    has_won = won_count > 0
    recent_close = np.full(n, nat, dtype=np.int64)
    wclose = close_i[won]
    np.maximum.at(recent_close, wc, wclose)
    revenue = np.bincount(wc, weights=np.nan_to_num(amount[won], nan=0.0), minlength=n)

    # ROLL-4: the closed-won deal created last; ties -> higher deal id (numeric ids compare as
    # numbers; a deal this plan creates has no id yet and will get a higher one than any existing).
    wkey = deal_key[won]
    wnum = pd.to_numeric(pd.Series(wkey, dtype=object), errors="coerce").to_numpy(dtype=float)
    wnum = np.where(np.isnan(wnum), np.inf, wnum)
    wtext_rank = pd.Series(wkey, dtype=object).astype("str").rank(method="dense").to_numpy()
    order = np.lexsort((wtext_rank, wnum, created_i[won], wc))
    last = np.ones(len(order), dtype=bool)
    if len(order) > 1:
        last[:-1] = wc[order][1:] != wc[order][:-1]
    chosen = order[last]
    recent_amount = np.full(n, np.nan)
    recent_amount[wc[chosen]] = amount[won][chosen]

    out = pd.DataFrame(
        {
            "num_associated_deals": num,
            "first_deal_created_date": _to_ts(np.where(first == np.iinfo(np.int64).max, nat, first)),
            "recent_deal_close_date": _to_ts(np.where(has_won, recent_close, nat)),
            "recent_deal_amount": np.where(has_won, recent_amount, np.nan),
            "total_revenue": np.where(has_won, revenue, np.nan),
            "won_deals": won_count.astype(np.int64),
        },
        index=pd.Index(uniques, name="record_id"),
    )
    out["currencies"] = _won_currencies(wc, currency[won], n)
    return out


def _as_ns(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values, utc=True, errors="coerce")
    return stamps.astype("datetime64[ns, UTC]").dt.tz_localize(None)


def _to_ts(ints: np.ndarray) -> pd.DatetimeIndex:
    """int64 nanoseconds (int64 min = missing) -> UTC timestamps, positionally."""
    return pd.DatetimeIndex(ints.astype(np.int64).view("datetime64[ns]")).tz_localize("UTC")


def _won_currencies(codes: np.ndarray, currency: np.ndarray, n: int) -> np.ndarray:
    """Comma-separated distinct currency codes of each record's closed-won deals (None if none)."""
    out = np.full(n, None, dtype=object)
    frame = pd.DataFrame({"code": codes, "currency": currency}).dropna().drop_duplicates()
    if frame.empty:
        return out
    counts = frame.groupby("code", sort=False).size()
    single = counts[counts == 1].index.to_numpy()
    first = frame.drop_duplicates("code").set_index("code")["currency"]
    out[single] = first.reindex(single).to_numpy(dtype=object)
    multi = counts[counts > 1].index
    if len(multi):
        joined = (
            frame[frame["code"].isin(multi)]
            .sort_values(["code", "currency"])
            .groupby("code", sort=False)["currency"]
            .agg(",".join)
        )
        out[joined.index.to_numpy()] = joined.to_numpy(dtype=object)
    return out


@dataclass
class RollupsResult:
    """Expected rollup values (:data:`ROLLUP_COLUMNS`), where HubSpot shows something else
    (:data:`DIFFERENCE_COLUMNS`) and DEAL-8's currency flags. No plan rows: HubSpot calculates
    ROLL-1..6 itself and rejects writes to them."""

    rollups: pd.DataFrame
    currency_flags: pd.DataFrame
    differences: pd.DataFrame


#: ROLL-1..6 as crm-sync expects HubSpot to show them vs what HubSpot showed when staged:
#: ``object``, ``record_id``, ``field``, ``rules`` (comma-separated ids), ``expected`` and
#: ``hubspot`` (JSON text). Persisted as ``rule_rollup_differences`` for the quality report.
DIFFERENCE_COLUMNS: tuple[str, ...] = ("object", "record_id", "field", "rules", "expected", "hubspot")


def _current(frame: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """Staged rollup values of records ``ids`` (blank for unknown ids and created refs)."""
    out = pd.DataFrame(index=pd.RangeIndex(len(ids)))
    if frame.empty or "id" not in frame.columns:
        for name in ROLLUP_FIELDS:
            out[name] = None
        return out
    keys = as_text(frame["id"])
    uniq = frame[(keys.notna() & ~keys.duplicated(keep="last")).to_numpy()]
    indexed = uniq.set_index(pd.Index(as_text(uniq["id"]).to_numpy(dtype=object)))
    found = indexed.reindex(ids.to_numpy(dtype=object))
    for name in ROLLUP_FIELDS:
        out[name] = column(found, name).to_numpy(dtype=object)
    return out


def _with_stale_records(values: pd.DataFrame, staged: pd.DataFrame) -> pd.DataFrame:
    """Expected values of the live staged records and of records this plan creates, plus an
    empty expectation for live records without deals whose staged rollups still show some
    (ROLL-6: removed associations and deleted deals drop out)."""
    rows = values.reset_index()
    live = (
        as_text(column(staged, "id"))[alive(staged)].dropna() if not staged.empty else pd.Series(dtype=object)
    )
    target = rows["record_id"].astype("str")
    is_ref = target.str.startswith(REF_PREFIX).to_numpy(dtype=bool, na_value=False)
    rows = rows[target.isin(live).to_numpy() | is_ref]
    if staged.empty:
        return rows.reset_index(drop=True)
    any_value = np.zeros(len(staged), dtype=bool)
    for name in ROLLUP_FIELDS:
        any_value |= column(staged, name).notna().to_numpy()
    stale = as_text(column(staged, "id"))[alive(staged).to_numpy() & any_value].dropna()
    stale_ids = sorted(set(stale[~stale.isin(target)].tolist()))
    if not stale_ids:
        return rows.reset_index(drop=True)
    empty = pd.DataFrame(
        {
            "record_id": stale_ids,
            "num_associated_deals": 0,
            "first_deal_created_date": pd.to_datetime(pd.Series([pd.NaT] * len(stale_ids)), utc=True),
            "recent_deal_close_date": pd.to_datetime(pd.Series([pd.NaT] * len(stale_ids)), utc=True),
            "recent_deal_amount": np.nan,
            "total_revenue": np.nan,
            "won_deals": 0,
            "currencies": None,
        }
    )
    return pd.concat([rows, empty], ignore_index=True)


def rollup_differences(obj: str, values: pd.DataFrame, staged: pd.DataFrame) -> pd.DataFrame:
    """ROLL-1..6: the fields where HubSpot's staged value differs from the expected one.

    Records this plan creates have no HubSpot value yet and are compared as blank. Compared
    canonically (a count ``"2"`` equals ``2``; dates to the second), so formatting never shows
    as a difference.
    """
    rows = _with_stale_records(values, staged)
    if rows.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DIFFERENCE_COLUMNS})
    for name in ("num_associated_deals", "recent_deal_amount", "total_revenue"):
        rows[name] = pd.to_numeric(rows[name], errors="coerce").astype("float64")
    for name in ("first_deal_created_date", "recent_deal_close_date"):
        rows[name] = pd.to_datetime(rows[name], utc=True, errors="coerce")
    current = _current(staged, rows["record_id"].astype("str"))
    parts = []
    for name in ROLLUP_FIELDS:
        differs = changed_mask(rows[name], current[name], ROLLUP_KINDS[name])
        if not differs.any():
            continue
        expected = rows[name] if ROLLUP_KINDS[name] != "number" else _numbers(rows[name])
        parts.append(
            pd.DataFrame(
                {
                    "object": obj,
                    "record_id": rows["record_id"].to_numpy(dtype=object)[differs],
                    "field": name,
                    "rules": ",".join(ROLLUP_RULES[name]),
                    "expected": json_texts(json_safe(expected)[differs]),
                    "hubspot": json_texts(json_safe(current[name])[differs]),
                }
            )
        )
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in DIFFERENCE_COLUMNS})
    return pd.concat(parts, ignore_index=True)[list(DIFFERENCE_COLUMNS)]


def _numbers(values: pd.Series) -> pd.Series:
    """Floats as JSON numbers: integral ones as ``int`` (``1200`` rather than ``1200.0``)."""
    values = pd.to_numeric(values, errors="coerce").astype("float64")
    out = values.astype(object).where(values.notna(), None)
    integral = values.notna() & (values == np.floor(values))
    if bool(integral.any()):
        out[integral] = values[integral].astype("int64").astype(object)
    return out


def plan_rollups(
    deals: pd.DataFrame,
    deal_contacts: pd.DataFrame,
    account_links: pd.DataFrame,
    *,
    hs_contact: pd.DataFrame,
    hs_company: pd.DataFrame,
    companies_sync: bool,
) -> RollupsResult:
    """ROLL-1..ROLL-6 expected on contacts and (with company sync on) companies.

    ``deals``/``deal_contacts`` come from :func:`~crm_sync.rules.deals.plan_deals`;
    ``account_links`` (``sf_id, hs_id``) are the Account/company pairs after this plan. HubSpot
    computes these properties itself and rejects writes to them, so nothing is planned: the
    result holds what HubSpot should show once the plan is loaded, and where the staged values
    differ, for the quality report.
    """
    contact_edges = (
        pd.DataFrame(
            {
                "record_id": deal_contacts["contact_key"].astype(object),
                "deal_key": deal_contacts["deal_key"].astype(object),
            }
        )
        if not deal_contacts.empty
        else pd.DataFrame({"record_id": [], "deal_key": []})
    )
    contact_values = compute_rollups(contact_edges, deals)
    frames = [contact_values.reset_index().assign(object="contacts")]
    differences = [rollup_differences("contacts", contact_values, hs_contact)]
    if companies_sync and not account_links.empty and not deals.empty:
        links = account_companies(account_links, "record_id")
        company_edges = deals[["deal_key", "account_id"]].dropna().merge(links, on="account_id")
        company_values = compute_rollups(company_edges[["record_id", "deal_key"]], deals)
    else:
        company_values = compute_rollups(pd.DataFrame(), pd.DataFrame())
    if companies_sync:
        differences.append(rollup_differences("companies", company_values, hs_company))
    frames.append(company_values.reset_index().assign(object="companies"))
    rollups = (
        pd.concat([f for f in frames if not f.empty], ignore_index=True)
        if any(not f.empty for f in frames)
        else pd.DataFrame({c: pd.Series(dtype=object) for c in ROLLUP_COLUMNS})
    )
    rollups = rollups.reindex(columns=list(ROLLUP_COLUMNS))
    return RollupsResult(
        rollups=rollups,
        currency_flags=currency_flags(rollups),
        differences=pd.concat(differences, ignore_index=True)[list(DIFFERENCE_COLUMNS)],
    )


def currency_flags(rollups: pd.DataFrame) -> pd.DataFrame:
    """DEAL-8 beyond: records whose closed-won deals carry more than one currency code."""
    if rollups.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CURRENCY_FLAG_COLUMNS})
    mixed = rollups["currencies"].astype("str").str.contains(",", regex=False).fillna(False).astype(bool)
    out = rollups.loc[mixed, ["object", "record_id", "currencies", "won_deals", "total_revenue"]]
    return out.reset_index(drop=True)[list(CURRENCY_FLAG_COLUMNS)]


__all__ = [
    "CURRENCY_FLAG_COLUMNS",
    "DIFFERENCE_COLUMNS",
    "ROLLUP_COLUMNS",
    "ROLLUP_FIELDS",
    "RollupsResult",
    "compute_rollups",
    "currency_flags",
    "plan_rollups",
    "rollup_differences",
]
