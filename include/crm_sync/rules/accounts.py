"""Account rules ACC-1..ACC-6 and ACC-8: which Account is which company, and which one to keep.

Three steps, each a pure function over staged frames:

1. :func:`dedup_accounts` (ACC-6) groups live Salesforce Accounts that are probably the same
   organisation: same registrable website domain or same normalized name (word order
   ignored). Groups are the connected components over those keys; each has one survivor
   (already linked > most recently modified > oldest Id), and only the survivor syncs.
   Near-identical names (typos; rapidfuzz, compared only inside small blocks so that a million
   accounts dedup in seconds) are only *possible* duplicates: reported, never kept from
   syncing, since a fuzzy match alone is too weak to stop a real company from syncing.
2. :func:`accounts_to_hubspot` (ACC-1, ACC-2, ACC-3, ACC-6): the Accounts that sync (created
   after sync was enabled, or imported, or modified since, or already linked; and survivors
   only) link to an existing HubSpot company in ACC-3's order, else create one. Non-survivors
   get ``skip`` rows naming their survivor.
3. :func:`companies_to_salesforce` (ACC-4, ACC-5, ACC-6): unlinked HubSpot companies create an
   Account only when ACC-4 allows and ACC-5 does not forbid it (the manual flag overrides
   ACC-5); one that matches an existing Account group links to its survivor instead.

:func:`plan_accounts` composes the three; :func:`resync_chunks` is ACC-8's chunking helper.
Nothing is ever merged or deleted in either CRM.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd
from rapidfuzz import fuzz, process

from crm_sync.plan import Action, Target, concat_plans, created_refs, plan_rows
from crm_sync.rules.contacts import ContactsResult
from crm_sync.rules.enablement import since_enabled
from crm_sync.rules.inputs import RuleInputs
from crm_sync.rules.matching import best_matching
from crm_sync.rules.new_records import first_link_rows, hubspot_create_rows, salesforce_create_rows
from crm_sync.rules.normalize import (
    as_bool,
    as_text,
    as_timestamp,
    column,
    company_name_keys,
    domain_keys,
    first_present,
    map_unique,
    salesforce_ids18,
    values_of,
)
from crm_sync.rules.owners import OwnerMap
from crm_sync.rules.staged import alive, associations, link_pairs
from crm_sync.settings import SyncConfig

IntArray = npt.NDArray[np.int64]

#: ``hs_object_source`` of a company HubSpot created automatically from a contact's email domain.
AUTO_CREATED_SOURCE = "AUTOMATIC_COMPANY_CREATION"
#: HubSpot's cap on one bulk resync (ACC-8).
MAX_RESYNC_CHUNK = 200_000

#: Columns of :attr:`DedupResult.groups` (one row per member of a group of two or more):
#: ``group_id`` (the smallest member Id: stable while the group stands), ``sf_id``,
#: ``is_survivor`` (bool), ``survivor_id``, ``key`` (how this member joined, e.g. ``domain
#: acme.com; name acme``, or ``similar name acme corp`` for a fuzzy match), ``domain_key``,
#: ``name_key`` (normalized; NA when absent), ``size`` (members in the group).
DEDUP_GROUP_COLUMNS: tuple[str, ...] = (
    "group_id",
    "sf_id",
    "is_survivor",
    "survivor_id",
    "key",
    "domain_key",
    "name_key",
    "size",
)

#: Columns of :attr:`DedupResult.possible`: Accounts whose names are near-identical (fuzzy)
#: without sharing an ACC-6 key, reported for a person to check; both still sync.
POSSIBLE_DUPLICATE_COLUMNS: tuple[str, ...] = ("sf_id", "similar_id", "name_key", "similar_name")

#: Columns of :attr:`AccountsResult.pairs`: ``sf_id`` (Account Id, or ``"@Account:<hs_id>"``
#: for one this plan creates), ``hs_id`` (company id, or ``"@companies:<sf_id>"``), ``how``:
#: ``linked`` (link table), ``hubspot_id`` (company holds the Account Id), ``salesforce_id``
#: (Account holds the company id), ``contacts`` / ``domain`` (ACC-3), ``group`` (a company
#: matching an Account group links to its survivor, ACC-6), ``create_in_hubspot`` (ACC-1/2),
#: ``create_in_salesforce`` (ACC-4).
ACCOUNT_PAIR_COLUMNS: tuple[str, ...] = ("sf_id", "hs_id", "how")


# ============================================================================ ACC-6: dedup


@dataclass(frozen=True)
class DedupResult:
    """ACC-6 groups of probable duplicate Accounts.

    ``groups``: :data:`DEDUP_GROUP_COLUMNS`, members of groups of two or more, for the quality
    report. ``survivor``: str Series indexed by ``sf_id`` for *every* live Account, giving the
    Account that syncs for it (itself for singletons and survivors). ``keys``: per live Account
    (index ``sf_id``): ``domain_key``, ``name_key``, ``token_key`` (name words sorted),
    ``group_id``. ``stats``: counts (accounts, groups, grouped accounts, fuzzy comparisons and
    pairs) and milliseconds per stage (``ms_keys``, ``ms_fuzzy``, ``ms_components``,
    ``ms_survivors``) for task logs and the benchmark. ``possible``: near-identical names in
    different groups (:data:`POSSIBLE_DUPLICATE_COLUMNS`), reported only.
    """

    groups: pd.DataFrame
    survivor: pd.Series
    keys: pd.DataFrame
    stats: dict[str, int] = field(default_factory=dict)
    possible: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame({c: pd.Series(dtype="str") for c in POSSIBLE_DUPLICATE_COLUMNS})
    )

    @staticmethod
    def empty_possible() -> pd.DataFrame:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in POSSIBLE_DUPLICATE_COLUMNS})

    @property
    def non_survivors(self) -> pd.Index:
        """Ids of Accounts that do not sync while their group stands (ACC-6)."""
        moved = self.survivor.to_numpy() != self.survivor.index.to_numpy()
        ids: list[str] = [str(i) for i in self.survivor.index[moved]]
        return pd.Index(ids, name="sf_id", dtype="str")


class _Clock:
    """Milliseconds spent per stage, reported in :attr:`DedupResult.stats` for task logs."""

    def __init__(self) -> None:
        self.laps: dict[str, int] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round((now - self._last) * 1000)
        self._last = now


def _components(n: int, u: IntArray, v: IntArray) -> IntArray:
    """Connected components of an undirected graph: union-find by hooking and pointer jumping.

    Vectorized: every round hooks each edge's larger root under the smaller one (``minimum.at``
    keeps one parent per root, so no cycle can form) and then compresses all paths; labels only
    decrease, and a round without a hook means every edge lies inside one component. Returns,
    for each node, the smallest node of its component.
    """
    parent = np.arange(n, dtype=np.int64)
    if len(u) == 0:
        return parent
    while True:
        pu, pv = parent[u], parent[v]
        differ = pu != pv
        if not differ.any():
            return parent
        lo = np.minimum(pu[differ], pv[differ])
        hi = np.maximum(pu[differ], pv[differ])
        np.minimum.at(parent, hi, lo)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def _star_edges(codes: IntArray) -> tuple[IntArray, IntArray]:
    """Edges joining every node to the first node sharing its key (``codes`` < 0: no key)."""
    nodes = np.flatnonzero(codes >= 0)
    if len(nodes) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    c = codes[nodes]
    first = np.full(int(c.max()) + 1, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, c, nodes)
    rep = first[c]
    keep = rep != nodes
    return nodes[keep].astype(np.int64), rep[keep].astype(np.int64)


def _block_key(names: pd.Series) -> pd.Series:
    """Fuzzy-matching block: first word plus every digit of the name.

    Near-duplicates (typos, a missing letter, plural) almost always share their first word, and
    names that differ in a number ("Store 12" / "Store 13") are different organisations, so
    putting digits in the key keeps them from ever being compared.
    """
    first = names.str.split(" ", n=1).str[0]
    digits = names.str.replace(r"\D+", "", regex=True)
    return first + "|" + digits


def similar_name_pairs(
    names: pd.Series, *, threshold: float = 94.0, window: int = 256, min_length: int = 8
) -> tuple[IntArray, IntArray, int]:
    """ACC-6 near-duplicate names: positions ``(i, j)`` into ``names`` whose similarity is high.

    ``names`` are *distinct* normalized names. Each is compared only with names of its block
    (:func:`_block_key`); inside a block, names are sorted and compared within a sliding window
    of ``window`` neighbours (rapidfuzz ``fuzz.ratio`` via ``process.cdist``, score >=
    ``threshold`` out of 100): every pair less than ``window / 2`` apart in that order is
    compared. Cost is at most ``len(names) * window`` comparisons, so it stays linear however
    large one block grows. Names shorter than ``min_length`` characters are not
    fuzzy-matched (one letter is a different short name). Returns ``(i, j, comparisons)``.
    """
    empty = np.empty(0, dtype=np.int64)
    text = names.astype("str")
    lengths = text.str.len().fillna(0).to_numpy()
    eligible = np.flatnonzero(lengths >= min_length)
    if len(eligible) < 2:
        return empty, empty, 0
    frame = pd.DataFrame({"pos": eligible, "name": text.to_numpy()[eligible]})
    frame["block"] = _block_key(frame["name"])
    sizes = frame.groupby("block", sort=False)["pos"].transform("size")
    frame = frame[sizes.to_numpy() > 1].sort_values(["block", "name"], kind="stable")
    m = len(frame)
    if m < 2:
        return empty, empty, 0
    sorted_names = frame["name"].tolist()
    block_codes = pd.factorize(frame["block"])[0]
    positions = frame["pos"].to_numpy(dtype=np.int64)
    window = max(2, window)
    stride = max(1, window // 2)
    found_i: list[IntArray] = []
    found_j: list[IntArray] = []
    comparisons = 0
    for start in range(0, m - 1, stride):
        # Each name in [start, start + stride) against the names after it up to start + window:
        # every pair less than ``stride`` apart is compared once per window that holds it.
        queries = sorted_names[start : start + stride]
        choices = sorted_names[start : start + window]
        scores = process.cdist(
            queries, choices, scorer=fuzz.ratio, score_cutoff=threshold, dtype=np.uint8, workers=-1
        )
        comparisons += len(queries) * len(choices)
        qi, cj = np.nonzero(scores)
        later = cj > qi
        ii = start + qi[later]
        jj = start + cj[later]
        same_block = block_codes[ii] == block_codes[jj]
        found_i.append(positions[ii[same_block]])
        found_j.append(positions[jj[same_block]])
    if not found_i:
        return empty, empty, comparisons
    pairs = np.unique(np.stack([np.concatenate(found_i), np.concatenate(found_j)], axis=1), axis=0)
    return pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64), comparisons


_CONNECTORS = frozenset({"and"})


def _sorted_words(name: object) -> str | None:
    if not isinstance(name, str):
        return None
    words = name.split()
    kept = [w for w in words if w not in _CONNECTORS] or words
    return " ".join(sorted(kept))


def token_keys(names: pd.Series) -> pd.Series:
    """ACC-6: normalized names as their sorted words without "and", so "Smith & Jones", "Jones
    and Smith" and "Jones Smith" share one key; word order rarely tells two organisations apart."""
    return map_unique(names, _sorted_words)


def dedup_accounts(
    sf_account: pd.DataFrame,
    linked_ids: Collection[str] | pd.Series = (),
    *,
    fuzzy_threshold: float = 94.0,
    fuzzy_window: int = 256,
    fuzzy_min_length: int = 8,
) -> DedupResult:
    """ACC-6: group live Accounts that are probable duplicates and pick each group's survivor.

    ``sf_account``: staged Accounts (``Id, Name, Website, LastModifiedDate, SystemModstamp``,
    ``_deleted``/``IsDeleted``; deleted ones are ignored). ``linked_ids``: Account Ids already
    linked to a HubSpot company (link table, company property or ``HubSpot_Id__c``).

    Two Accounts are connected when they share a registrable website domain
    (:func:`~crm_sync.rules.normalize.domain_key`: scheme, ``www.``, port, path, case stripped;
    webmail/social domains ignored) or share a normalized name
    (:func:`~crm_sync.rules.normalize.normalize_company_name`, word order ignored). Groups are
    connected components, so A~B by domain and B~C by name put A, B, C together.
    Near-identical names (:func:`similar_name_pairs`, ``fuzzy_threshold``; ``> 100`` turns it
    off) of Accounts in different groups are listed in :attr:`DedupResult.possible` only.
    Survivor: already linked, then most recently modified (``LastModifiedDate``, else
    ``SystemModstamp``; unknown last), then the smallest Id (the oldest).
    Cost is near-linear in the number of Accounts.
    """
    clock = _Clock()
    acc = _dedup_frame(sf_account, linked_ids)
    n = len(acc)
    clock.lap("ms_keys")
    edges_u, edges_v = _key_edges(acc)
    similar, comparisons = _similar_names(acc, fuzzy_threshold, fuzzy_window, fuzzy_min_length)
    fuzzy_pairs = len(similar[0])
    clock.lap("ms_fuzzy")
    labels = _components(n, edges_u, edges_v)
    clock.lap("ms_components")
    possible = _possible_duplicates(acc, labels, *similar) if fuzzy_pairs else DedupResult.empty_possible()
    grouped, groups = _groups(acc, labels)
    survivor, keys = _survivor_maps(acc, grouped)
    clock.lap("ms_survivors")
    stats = {
        **clock.laps,
        "accounts": n,
        "groups": int(grouped["label"].nunique()),
        "grouped_accounts": len(grouped),
        "non_survivors": int((~grouped["is_survivor"]).sum()),
        "fuzzy_comparisons": int(comparisons),
        "fuzzy_pairs": int(fuzzy_pairs),
        "possible_duplicates": len(possible),
    }
    return DedupResult(groups=groups, survivor=survivor, keys=keys, stats=stats, possible=possible)


def _dedup_frame(sf_account: pd.DataFrame, linked_ids: Collection[str] | pd.Series) -> pd.DataFrame:
    """Live, distinct Accounts with their ACC-6 keys, modification time and whether linked."""
    ids = as_text(column(sf_account, "Id"))
    keep = (alive(sf_account) & ids.notna() & ~ids.duplicated(keep="last")).to_numpy()
    acc = pd.DataFrame(
        {
            "sf_id": ids,
            "modified": first_present(
                as_timestamp(column(sf_account, "LastModifiedDate")),
                as_timestamp(column(sf_account, "SystemModstamp")),
            ),
            "website": column(sf_account, "Website"),
            "name": column(sf_account, "Name"),
        }
    )[keep].reset_index(drop=True)
    acc["domain_key"] = domain_keys(acc.pop("website"))
    acc["name_key"] = company_name_keys(acc.pop("name"))
    acc["token_key"] = token_keys(acc["name_key"])
    linked_set = set(as_text(pd.Series(list(linked_ids), dtype=object)).dropna())
    acc["linked"] = acc["sf_id"].isin(linked_set)
    return acc


def _key_edges(acc: pd.DataFrame) -> tuple[IntArray, IntArray]:
    """Edges between Accounts sharing a domain key or a token key (star-shaped per key)."""
    edges_u: list[IntArray] = []
    edges_v: list[IntArray] = []
    for key in ("domain_key", "token_key"):
        codes = pd.factorize(acc[key], use_na_sentinel=True)[0].astype(np.int64)
        u, v = _star_edges(codes)
        edges_u.append(u)
        edges_v.append(v)
    return np.concatenate(edges_u), np.concatenate(edges_v)


def _similar_names(
    acc: pd.DataFrame, threshold: float, window: int, min_length: int
) -> tuple[tuple[IntArray, IntArray], int]:
    """Pairs of Accounts (row positions) with near-identical names, and the comparisons made."""
    name_codes, name_uniques = pd.factorize(acc["name_key"], use_na_sentinel=True)
    none: tuple[IntArray, IntArray] = (np.empty(0, np.int64), np.empty(0, np.int64))
    if threshold > 100 or len(name_uniques) <= 1:
        return none, 0
    fi, fj, comparisons = similar_name_pairs(
        pd.Series(name_uniques, dtype="str"), threshold=threshold, window=window, min_length=min_length
    )
    if not len(fi):
        return none, comparisons
    rep = np.full(len(name_uniques), -1, dtype=np.int64)
    valid = np.flatnonzero(name_codes >= 0)
    rep[name_codes[valid][::-1]] = valid[::-1]  # first node holding each distinct name
    return (rep[fi], rep[fj]), comparisons


def _groups(acc: pd.DataFrame, labels: IntArray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accounts of groups larger than one with their survivor (linked, newest, oldest Id), and the
    published group table (:data:`DEDUP_GROUP_COLUMNS`)."""
    acc["label"] = labels
    sizes = acc.groupby("label")["sf_id"].transform("size")
    acc["size"] = sizes.astype(np.int64)
    grouped = acc[acc["size"] > 1].copy()
    grouped = grouped.sort_values(
        ["label", "linked", "modified", "sf_id"], ascending=[True, False, False, True], na_position="last"
    )
    grouped["survivor_id"] = grouped.groupby("label")["sf_id"].transform("first")
    grouped["group_id"] = grouped.groupby("label")["sf_id"].transform("min")
    grouped["is_survivor"] = grouped["sf_id"] == grouped["survivor_id"]
    grouped["key"] = _member_keys(grouped)
    groups = grouped.sort_values(["group_id", "is_survivor", "sf_id"], ascending=[True, False, True])
    return grouped, groups[list(DEDUP_GROUP_COLUMNS)].reset_index(drop=True)


def _survivor_maps(acc: pd.DataFrame, grouped: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame]:
    """Each Account's survivor (itself when alone), and its keys with its group id."""
    survivor = pd.Series(acc["sf_id"].to_numpy(), index=pd.Index(acc["sf_id"], name="sf_id"), dtype="str")
    survivor.loc[grouped["sf_id"].to_numpy()] = grouped["survivor_id"].to_numpy()
    keys = acc.set_index("sf_id")[["domain_key", "name_key", "token_key"]]
    keys["group_id"] = keys.index.to_series()
    keys.loc[grouped["sf_id"].to_numpy(), "group_id"] = grouped["group_id"].to_numpy()
    return survivor, keys


def _possible_duplicates(acc: pd.DataFrame, labels: IntArray, u: IntArray, v: IntArray) -> pd.DataFrame:
    """ACC-6: Accounts with near-identical names that no ACC-6 key put in one group."""
    apart = labels[u] != labels[v]
    u, v = u[apart], v[apart]
    return pd.DataFrame(
        {
            "sf_id": acc["sf_id"].to_numpy(dtype=object)[u],
            "similar_id": acc["sf_id"].to_numpy(dtype=object)[v],
            "name_key": acc["name_key"].to_numpy(dtype=object)[u],
            "similar_name": acc["name_key"].to_numpy(dtype=object)[v],
        },
        columns=list(POSSIBLE_DUPLICATE_COLUMNS),
    ).astype("str")


def _member_keys(grouped: pd.DataFrame) -> pd.Series:
    """Human-readable reason each member is in its group (shared domain and/or name)."""
    shared_domain = grouped.groupby(["label", "domain_key"])["sf_id"].transform("size") > 1
    shared_name = grouped.groupby(["label", "token_key"])["sf_id"].transform("size") > 1
    domain_part = ("domain " + grouped["domain_key"]).where(shared_domain.fillna(False).astype(bool))
    name_part = ("name " + grouped["name_key"]).where(shared_name.fillna(False).astype(bool))
    both = domain_part + "; " + name_part
    key = both.fillna(domain_part).fillna(name_part)
    return key.fillna("name " + grouped["name_key"].fillna("")).astype("str")


# ============================================================================ frames


def _account_frame(inputs: RuleInputs, enabled_at: pd.Timestamp | None) -> pd.DataFrame:
    """Live Accounts with ACC-1/ACC-2 eligibility inputs (positional ``row`` into sf_account).

    ``new``: created at or after ``enabled_at`` (ACC-1); ``touched``: modified at or after it,
    or imported (ACC-2); the same boundary as DEAL-9. Without ``enabled_at`` both are False.
    """
    sf_account = inputs.sf_account
    ids = as_text(column(sf_account, "Id"))
    created = as_timestamp(column(sf_account, "CreatedDate"))
    modified = first_present(
        as_timestamp(column(sf_account, "LastModifiedDate")),
        as_timestamp(column(sf_account, "SystemModstamp")),
    )
    imported = inputs.imported
    imported_ids = set(
        as_text(column(imported, "sf_id"))[as_text(column(imported, "object")) == "Account"].dropna()
    )
    if enabled_at is None:
        new = pd.Series(False, index=sf_account.index)
        touched = pd.Series(False, index=sf_account.index)
    else:
        new = pd.Series(since_enabled(created, enabled_at), index=sf_account.index)
        touched = pd.Series(since_enabled(modified, enabled_at), index=sf_account.index) | ids.isin(
            imported_ids
        )
    frame = pd.DataFrame(
        {
            "sf_id": ids,
            "owner": as_text(column(sf_account, "OwnerId")),
            "hs_ref": as_text(column(sf_account, "HubSpot_Id__c")),
            "new": new,
            "touched": touched,
            "alive": alive(sf_account),
            "row": np.arange(len(sf_account)),
        }
    )
    frame = frame[frame["sf_id"].notna()].drop_duplicates("sf_id", keep="last")
    return frame[frame["alive"]].drop(columns="alive").reset_index(drop=True)


def _company_frame(hs_company: pd.DataFrame) -> pd.DataFrame:
    """Live HubSpot companies with their matching keys (positional ``row`` into hs_company)."""
    frame = pd.DataFrame(
        {
            "hs_id": as_text(column(hs_company, "id")),
            "sf_ref": salesforce_ids18(column(hs_company, "salesforceaccountid")),
            "domain_key": domain_keys(
                first_present(as_text(column(hs_company, "domain")), as_text(column(hs_company, "website")))
            ),
            "name_key": company_name_keys(column(hs_company, "name")),
            "owner": as_text(column(hs_company, "hubspot_owner_id")),
            "created": as_timestamp(column(hs_company, "createdate")),
            "modified": as_timestamp(column(hs_company, "hs_lastmodifieddate")),
            "manual": as_bool(column(hs_company, "crm_sync_manual_sync")),
            "auto_created": as_text(column(hs_company, "hs_object_source")) == AUTO_CREATED_SOURCE,
            "alive": alive(hs_company),
            "row": np.arange(len(hs_company)),
        }
    )
    frame["auto_created"] = frame["auto_created"].fillna(False).astype(bool)
    frame = frame[frame["hs_id"].notna()].drop_duplicates("hs_id", keep="last")
    return frame[frame["alive"]].drop(columns="alive").reset_index(drop=True)


@dataclass
class AccountClaims:
    """Account/company pairs decided so far in this plan (ACC-3, ACC-6); each side pairs once.

    ``sf``/``hs`` hold every Account/company id already taken (including companies that hold a
    non-survivor's Id, which are never re-used); :meth:`pairs` gives :data:`ACCOUNT_PAIR_COLUMNS`.
    """

    sf: set[str] = field(default_factory=set)
    hs: set[str] = field(default_factory=set)
    parts: list[pd.DataFrame] = field(default_factory=list)
    #: ACC-6 non-survivors: their pairs stay claimed (the company is theirs) but do not sync.
    suspended: set[str] = field(default_factory=set)

    def take(self, candidates: pd.DataFrame, how: str) -> pd.DataFrame:
        """Keep the first candidate per Account, then per company, among unclaimed ones."""
        c = candidates[~candidates["sf_id"].isin(self.sf) & ~candidates["hs_id"].isin(self.hs)]
        c = c.drop_duplicates("sf_id").drop_duplicates("hs_id")
        self.sf.update(values_of(c["sf_id"]))
        self.hs.update(values_of(c["hs_id"]))
        chosen = c[["sf_id", "hs_id"]].assign(how=how)
        self.parts.append(chosen)
        return chosen

    def match(self, candidates: pd.DataFrame, score: str, how: str) -> pd.DataFrame:
        """ACC-3: the best one-to-one pairs among unclaimed candidates, decided together
        (:func:`~crm_sync.rules.matching.best_matching`), then claimed like :meth:`take`."""
        free = candidates[~candidates["sf_id"].isin(self.sf) & ~candidates["hs_id"].isin(self.hs)]
        return self.take(best_matching(free, score), how)

    def pairs(self) -> pd.DataFrame:
        """The pairs that sync after this plan (suspended ACC-6 pairs left out)."""
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype="str") for c in ACCOUNT_PAIR_COLUMNS})
        pairs = pd.concat(self.parts, ignore_index=True)[list(ACCOUNT_PAIR_COLUMNS)]
        return pairs[~pairs["sf_id"].isin(self.suspended)].reset_index(drop=True)


# ============================================================================ SF -> HS


@dataclass(frozen=True)
class AccountsResult:
    """What :func:`plan_accounts` decided.

    ``plan``: plan rows (``PLAN_COLUMNS``). ``pairs``: every Account/company pair that syncs
    after this plan (:data:`ACCOUNT_PAIR_COLUMNS`). ``dedup``: the ACC-6 groups;
    ``dedup.non_survivors`` are Accounts the field merge must leave alone.
    """

    plan: pd.DataFrame
    pairs: pd.DataFrame
    dedup: DedupResult


@dataclass(frozen=True)
class AccountFrames:
    """Live Accounts and companies with their matching keys, normalized once per plan.

    Domain and name normalization is the expensive part of the account rules (a Python call
    per distinct value), so :func:`plan_accounts` builds this once and hands it to every step.
    """

    accounts: pd.DataFrame
    companies: pd.DataFrame
    links: pd.DataFrame
    #: HubSpot contact -> company associations: ``contact``, ``hs_id`` (company).
    contact_companies: pd.DataFrame


def account_frames(inputs: RuleInputs, config: SyncConfig | None = None) -> AccountFrames:
    """Build :class:`AccountFrames` (ACC-1/ACC-2 flags need ``config``; without it they are False)."""
    enabled = pd.Timestamp(config.enabled_at("accounts")) if config is not None else None
    return AccountFrames(
        accounts=_account_frame(inputs, enabled),
        companies=_company_frame(inputs.hs_company),
        links=link_pairs(inputs.links, ("Account",)),
        contact_companies=_contact_companies(inputs),
    )


def _contact_companies(inputs: RuleInputs) -> pd.DataFrame:
    return associations(inputs.hs_association, "contacts", "companies").rename(
        columns={"from_id": "contact", "to_id": "hs_id"}
    )


def linked_account_ids(inputs: RuleInputs, frames: AccountFrames | None = None) -> set[str]:
    """Account Ids already linked: link table (both sides live), a live company holding the Id
    (``salesforceaccountid``), or the Account's ``HubSpot_Id__c`` naming a live company.
    ACC-6 ranks them first and ACC-1/ACC-2 treat them as syncing."""
    frames = frames or account_frames(inputs)
    acc, co, links = frames.accounts, frames.companies, frames.links
    linked = set(values_of(links.loc[links["hs_id"].isin(co["hs_id"]), "sf_id"]))
    linked |= set(values_of(co["sf_ref"].dropna()))
    linked |= set(values_of(acc.loc[acc["hs_ref"].isin(co["hs_id"]), "sf_id"]))
    return linked & set(values_of(acc["sf_id"]))


def _claim_known_companies(
    acc: pd.DataFrame, co: pd.DataFrame, frames: AccountFrames, claims: AccountClaims
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ACC-3 step 1: companies already linked or naming an Account by Id are its own.

    Marks ``acc["linked"]`` and ``acc["syncs"]`` (ACC-1/ACC-2, survivors only). Returns the new
    links of survivors by Id, and every Account's own company (a non-survivor keeps its company,
    which is never re-used).
    """
    # Existing links (both sides live) stay; companies holding a live Account's Id are taken
    # by that Account even when it does not sync (a non-survivor keeps its company).
    links = frames.links
    links = links[links["sf_id"].isin(acc["sf_id"]) & links["hs_id"].isin(co["hs_id"])]
    claims.take(links[["sf_id", "hs_id"]], "linked")
    by_property = co.loc[co["sf_ref"].isin(acc["sf_id"]), ["sf_ref", "hs_id", "modified"]]
    by_property = by_property.rename(columns={"sf_ref": "sf_id"}).sort_values(
        ["modified", "hs_id"], ascending=[False, True], na_position="last"
    )
    by_external = acc.loc[acc["hs_ref"].isin(co["hs_id"]), ["sf_id", "hs_ref"]].rename(
        columns={"hs_ref": "hs_id"}
    )
    linked_any = set(claims.sf) | set(values_of(by_property["sf_id"])) | set(values_of(by_external["sf_id"]))
    acc["linked"] = acc["sf_id"].isin(linked_any)
    acc["syncs"] = acc["is_survivor"] & (acc["new"] | acc["touched"] | acc["linked"])

    survivors = acc[acc["is_survivor"]]
    id_links = pd.concat(
        [
            claims.take(by_property[by_property["sf_id"].isin(survivors["sf_id"])], "hubspot_id"),
            claims.take(by_external[by_external["sf_id"].isin(survivors["sf_id"])], "salesforce_id"),
        ]
    )
    # Companies that hold a non-survivor's Id are that Account's; never re-used.
    claims.hs.update(values_of(by_property["hs_id"]))
    claims.hs.update(values_of(by_external["hs_id"]))

    own_company = pd.concat([links, by_property, by_external])[["sf_id", "hs_id"]].drop_duplicates("sf_id")
    return id_links, own_company


def accounts_to_hubspot(
    inputs: RuleInputs,
    config: SyncConfig,
    owners: OwnerMap,
    contact_pairs: pd.DataFrame,
    *,
    dedup: DedupResult,
    frames: AccountFrames | None = None,
) -> tuple[pd.DataFrame, AccountClaims]:
    """ACC-1/ACC-2/ACC-3/ACC-6 (+OWN-4): Accounts that sync link to or create HubSpot companies.

    An Account syncs when it is live, an ACC-6 survivor, and created after
    ``sync_enabled_at.accounts`` (ACC-1), imported (``inputs.imported``) or modified after it
    (ACC-2), or already linked. It links, in order (ACC-3), to: the company holding its Id in
    ``salesforceaccountid`` (or named by its ``HubSpot_Id__c``); the company sharing the most
    of its contacts (SF Contacts with this ``AccountId`` whose HubSpot contact, per
    ``contact_pairs``, is associated with the company; ties: most recently modified company);
    the oldest company with the same registrable domain as the Account, or as another member of
    its ACC-6 group. Otherwise it creates a company. A company is claimed at most once, and
    each step matches all open Accounts together (:meth:`AccountClaims.match`): an Account whose
    best company another one takes falls back to its next-best candidate.
    Non-survivors get ``skip`` rows (``["ACC-6"]``) naming the survivor.

    Returns the plan rows and the claims (pairs so far) that :func:`companies_to_salesforce`
    continues from.
    """
    frames = frames or account_frames(inputs, config)
    acc, co = frames.accounts.copy(), frames.companies
    claims = AccountClaims()
    plans: list[pd.DataFrame] = []
    survivor = dedup.survivor
    acc["survivor_id"] = acc["sf_id"].map(survivor).fillna(acc["sf_id"])
    acc["is_survivor"] = acc["survivor_id"] == acc["sf_id"]

    id_links, own_company = _claim_known_companies(acc, co, frames, claims)

    open_acc = acc[acc["syncs"] & ~acc["sf_id"].isin(claims.sf)]
    free_co = co[~co["hs_id"].isin(claims.hs)]

    # ACC-3 step 2: shared contacts.
    contact_links = _shared_contact_candidates(
        inputs, contact_pairs, open_acc, free_co, frames.contact_companies
    )
    by_contacts = claims.match(contact_links, "size", "contacts")

    # ACC-3 step 3: same normalized domain (the survivor's own first, then its group's).
    open_acc = open_acc[~open_acc["sf_id"].isin(claims.sf)]
    free_co = free_co[~free_co["hs_id"].isin(claims.hs)]
    by_domain = claims.match(_domain_candidates(open_acc, free_co, dedup), "score", "domain")

    new_links = pd.concat([id_links, by_contacts, by_domain], ignore_index=True)
    plans.append(_account_link_rows(new_links, acc, co, owners))

    # Otherwise: create (ACC-1/ACC-2 via ACC-3's last clause).
    creators = acc[acc["syncs"] & ~acc["sf_id"].isin(claims.sf)].reset_index(drop=True)
    plans.append(_company_create_rows(creators, inputs, config, owners))
    claims.parts.append(
        pd.DataFrame(
            {
                "sf_id": creators["sf_id"],
                "hs_id": created_refs("companies", creators["sf_id"]),
                "how": "create_in_hubspot",
            }
        )
    )
    claims.sf.update(values_of(creators["sf_id"]))

    plans.append(_suspended_rows(acc[~acc["is_survivor"]], own_company, dedup, claims))
    return concat_plans(plans), claims


def _suspended_rows(
    losers: pd.DataFrame, own_company: pd.DataFrame, dedup: DedupResult, claims: AccountClaims
) -> pd.DataFrame:
    """ACC-6: non-survivors do not sync while their group stands, linked or not.

    A non-survivor already linked keeps its company (never re-used, nothing is deleted), but
    its pair is suspended: no field merges, no DEAL-7 associations or rollups through it
    (:meth:`AccountClaims.pairs` leaves it out). Its ``skip`` row names the survivor.
    """
    losers = losers.reset_index(drop=True)
    claims.suspended.update(values_of(losers["sf_id"]))
    group_key = losers["sf_id"].map(dedup.groups.set_index("sf_id")["key"]).fillna("same group")
    company = losers["sf_id"].map(own_company.set_index("sf_id")["hs_id"]).astype("str")
    why = "ACC-6: probable duplicate of Account " + losers["survivor_id"] + " (" + group_key + ")"
    linked = ("; its link to company " + company + " is suspended").fillna("")
    return plan_rows(
        count=len(losers),
        target=Target.HUBSPOT,
        object="companies",
        action=Action.SKIP,
        rules=["ACC-6"],
        source_id=losers["sf_id"],
        target_id=company,
        reason=why + linked + "; only the survivor syncs while the group stands",
    )


def _contact_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """Contact pairs as text columns, also when read back from a staging table (NaN, objects)."""
    return pd.DataFrame(
        {c: as_text(column(pairs, c)) for c in ("hs_id", "sf_object", "sf_id", "sf_account_id")},
        index=pairs.index,
    )


def _shared_contact_candidates(
    inputs: RuleInputs,
    contact_pairs: pd.DataFrame,
    open_acc: pd.DataFrame,
    free_co: pd.DataFrame,
    contact_companies: pd.DataFrame,
) -> pd.DataFrame:
    """ACC-3 step 2: (sf_id, hs_id, size) candidates ranked by shared contacts, best first."""
    cols = ["sf_id", "hs_id", "size"]
    if open_acc.empty or free_co.empty or contact_pairs.empty:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in cols})
    sf_contact = inputs.sf_contact
    contacts = pd.DataFrame(
        {
            "contact_id": as_text(column(sf_contact, "Id")),
            "sf_id": as_text(column(sf_contact, "AccountId")),
        }
    )[alive(sf_contact).to_numpy()]
    contacts = contacts[contacts["sf_id"].isin(open_acc["sf_id"])]
    pairs = _contact_pairs(contact_pairs)
    placeholder = pairs["hs_id"].str.startswith("@").fillna(True).astype(bool)
    synced = pairs[(pairs["sf_object"] == "Contact") & ~placeholder]
    contacts = contacts.merge(
        synced[["sf_id", "hs_id"]].rename(columns={"sf_id": "contact_id", "hs_id": "hs_contact"}),
        on="contact_id",
    )
    assoc = contact_companies.rename(columns={"contact": "hs_contact"})
    cand = contacts.merge(assoc, on="hs_contact")
    cand = cand[cand["hs_id"].isin(free_co["hs_id"])]
    if cand.empty:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in cols})
    scored = cand.groupby(["sf_id", "hs_id"], as_index=False).size()
    scored["modified"] = scored["hs_id"].map(free_co.set_index("hs_id")["modified"])
    scored = scored.sort_values(
        ["size", "modified", "hs_id", "sf_id"], ascending=[False, False, True, True], na_position="last"
    )
    return scored[cols]


def _domain_candidates(open_acc: pd.DataFrame, free_co: pd.DataFrame, dedup: DedupResult) -> pd.DataFrame:
    """ACC-3 step 3: (sf_id, hs_id, score) candidates by registrable domain, best first: the
    Account's own domain (score 1) before another group member's (0), then the oldest company."""
    cols = ["sf_id", "hs_id", "score"]
    if open_acc.empty or free_co.empty:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in cols})
    keys = dedup.keys
    own = pd.DataFrame({"sf_id": open_acc["sf_id"], "domain_key": open_acc["sf_id"].map(keys["domain_key"])})
    own["priority"] = 0
    group = pd.DataFrame({"group_id": open_acc["sf_id"].map(keys["group_id"]), "sf_id": open_acc["sf_id"]})
    members = keys.reset_index()[["sf_id", "group_id", "domain_key"]].rename(columns={"sf_id": "member"})
    group = group.merge(members, on="group_id")
    group = group[group["member"] != group["sf_id"]][["sf_id", "domain_key"]].assign(priority=1)
    wanted = pd.concat([own, group], ignore_index=True).dropna(subset=["domain_key"])
    cand = wanted.merge(
        free_co[["hs_id", "domain_key", "created"]].dropna(subset=["domain_key"]), on="domain_key"
    )
    cand = cand.sort_values(["priority", "created", "hs_id", "sf_id"], na_position="last")
    return cand.assign(score=1 - cand["priority"])[cols]


def _eligibility_rule(acc: pd.DataFrame) -> pd.Series:
    """Which of ACC-1 (new) / ACC-2 (pre-existing, imported or modified) lets an Account sync."""
    rule = pd.Series("", index=acc.index, dtype=object)
    rule[acc["touched"] & ~acc["new"]] = "ACC-2"
    rule[acc["new"]] = "ACC-1"
    return rule


def _account_link_rows(
    new_links: pd.DataFrame,
    acc: pd.DataFrame,
    co: pd.DataFrame,
    owners: OwnerMap,
    *,
    rules_first: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Two ``link`` rows per new Account/company pair, owners per OWN-4.

    Rules are ACC-1/ACC-2 (why the Account syncs) and ACC-3, or ``rules_first`` when given;
    ``OWN-4`` is added to rows that write an owner. Link ids are written only where missing.
    """
    if new_links.empty:
        return concat_plans([])
    pairs = new_links.reset_index(drop=True)
    a = acc.set_index("sf_id")
    c = co.set_index("hs_id")
    eligibility = pairs["sf_id"].map(_eligibility_rule(acc).set_axis(acc["sf_id"]))
    pairs = pairs.assign(
        sf_object="Account",
        owner=pairs["sf_id"].map(a["owner"]),
        hs_ref=pairs["sf_id"].map(a["hs_ref"]),
        hs_owner=pairs["hs_id"].map(c["owner"]),
        sf_ref=pairs["hs_id"].map(c["sf_ref"]),
    )
    return first_link_rows(
        pairs,
        owners,
        hs_object="companies",
        link_properties={"Account": "salesforceaccountid"},
        base_rules=[[r for r in (rules_first or (e, "ACC-3")) if r] for e in eligibility.fillna("")],
    )


def _company_create_rows(
    creators: pd.DataFrame, inputs: RuleInputs, config: SyncConfig, owners: OwnerMap
) -> pd.DataFrame:
    """ACC-1/ACC-2: HubSpot companies created from Accounts (mapped fields, link, owner)."""
    return hubspot_create_rows(
        creators,
        inputs.sf_account,
        owners,
        sf_object="Account",
        hs_object="companies",
        mappings=config.mappings("accounts"),
        options=inputs.picklist_options,
        link_property="salesforceaccountid",
        base_rules=[[e, "ACC-3"] for e in _eligibility_rule(creators)],
    )


# ============================================================================ HS -> SF


def company_contact_status(
    inputs: RuleInputs,
    contacts: ContactsResult,
    config: SyncConfig,
    company_ids: pd.Series,
    *,
    contact_companies: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per HubSpot company: what its associated contacts do (inputs of ACC-4/ACC-5).

    Returns a frame indexed by company id (every id in ``company_ids``) with int columns
    ``contacts`` (live associated contacts), ``syncing`` (of those, how many sync per
    ``contacts.pairs``), ``to_leads`` (sync to an SF Lead, matched or created as one),
    ``private`` (sync to an SF Contact without Account: existing private Contacts and Contacts
    CON-2 creates, which start without one) and ``qualifying`` (qualify for the inclusion list).
    ``contact_companies`` (``contact``, ``hs_id``) may pass associations already read from
    ``inputs.hs_association`` (:attr:`AccountFrames.contact_companies`).
    """
    del config
    index = pd.Index(as_text(company_ids).dropna().unique(), name="hs_id")
    if contact_companies is None:
        contact_companies = _contact_companies(inputs)
    assoc = contact_companies[
        contact_companies["hs_id"].isin(index) & contact_companies["contact"].isin(contacts.qualifies.index)
    ].copy()
    pairs = _contact_pairs(contacts.pairs).dropna(subset=["hs_id"]).drop_duplicates("hs_id")
    pairs = pairs.set_index("hs_id")
    assoc["syncing"] = assoc["contact"].isin(pairs.index)
    kind = assoc["contact"].map(pairs["sf_object"])
    assoc["to_leads"] = (kind == "Lead").fillna(False).astype(bool)
    account = assoc["contact"].map(pairs["sf_account_id"])
    assoc["private"] = ((kind == "Contact") & account.isna()).fillna(False).astype(bool)
    assoc["qualifying"] = assoc["contact"].map(contacts.qualifies).fillna(False).astype(bool)
    assoc["contacts"] = 1
    stats = assoc.groupby("hs_id")[["contacts", "syncing", "to_leads", "private", "qualifying"]].sum()
    return stats.reindex(index, fill_value=0).astype(np.int64)


def _acc4_acc5(
    candidates: pd.DataFrame, st: pd.DataFrame, config: SyncConfig
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ACC-4 allows, ACC-5 forbids (the manual flag overrides ACC-5): the ``skip`` rows of the
    companies that do not create an Account, and the candidates that do, with ``why``."""
    default_contact = config.contacts_default_object == "Contact"
    c1 = candidates["auto_created"] & default_contact
    c2 = st["private"] > 0
    c3 = st["qualifying"] > 0
    manual = candidates["manual"]
    no_contacts = st["contacts"] == 0
    # ACC-5 counts every associated contact: one that does not sync at all is not a Lead.
    all_leads = (st["contacts"] > 0) & (st["to_leads"] == st["contacts"])
    none_qualify = st["qualifying"] == 0
    blocked = no_contacts | all_leads | none_qualify
    create = manual | ((c1 | c2 | c3) & ~blocked)

    reason = pd.Series(pd.NA, index=candidates.index, dtype=object)
    reason[none_qualify] = "ACC-5: none of its associated contacts qualifies for the inclusion list"
    reason[all_leads] = "ACC-5: all its associated contacts sync to Salesforce Leads"
    reason[no_contacts] = "ACC-5: it has no associated contact"
    reason[~blocked & ~create] = "ACC-4: no ACC-4 condition holds"
    skipped = ~create
    skips = plan_rows(
        count=int(skipped.sum()),
        target=Target.SALESFORCE,
        object="Account",
        action=Action.SKIP,
        rules=pd.Series(
            [["ACC-5"] if str(r).startswith("ACC-5") else ["ACC-4"] for r in reason[skipped]],
            dtype=object,
        ),
        source_id=candidates.loc[skipped, "hs_id"],
        reason=reason[skipped] + " (set crm_sync_manual_sync to sync it anyway)",
    )
    which = pd.Series("", index=candidates.index, dtype=object)
    which[c3] = "qualifying contact"
    which[c2] = "private contact"
    which[c1] = "auto-created"
    which[manual] = "manual"
    return skips, candidates[create].assign(why=which[create])


def companies_to_salesforce(
    inputs: RuleInputs,
    config: SyncConfig,
    owners: OwnerMap,
    contacts: ContactsResult,
    *,
    dedup: DedupResult,
    claims: AccountClaims,
    frames: AccountFrames | None = None,
) -> pd.DataFrame:
    """ACC-4/ACC-5/ACC-6 (+OWN-1..3): which unlinked HubSpot companies create SF Accounts.

    Candidates: live companies not paired by :func:`accounts_to_hubspot` (``claims``). Per
    :func:`company_contact_status`, ACC-4 allows a create when the company was auto-created
    from an email domain (``hs_object_source`` = :data:`AUTO_CREATED_SOURCE`) and the default
    object is Contact, or a contact syncs to a private SF Contact, or a contact qualifies, or
    ``crm_sync_manual_sync`` is true. ACC-5 forbids it when the company has no associated
    contact, when every associated contact syncs to a Lead, or when no contact qualifies; ACC-5
    wins over all ACC-4 clauses but the manual flag. Forbidden companies get ``skip`` rows
    with the ACC-5 reason. A company allowed to create that matches an existing Account group
    (same domain key, else same normalized name) links to the group's survivor instead
    (``["ACC-4", "ACC-6"]``), unless the survivor already syncs with another company (then a
    ``skip``). The rest create an Account (mapped fields, ``HubSpot_Id__c``, owner per OWN-1..3;
    ``quarantine`` when the integration user is needed but unknown). A company whose linked
    Account was deleted is not re-created (``skip``).
    """
    frames = frames or account_frames(inputs, config)
    co, links = frames.companies, frames.links
    plans: list[pd.DataFrame] = []
    candidates = co[~co["hs_id"].isin(claims.hs)]
    broken = candidates["hs_id"].isin(links["hs_id"])
    plans.append(
        plan_rows(
            count=int(broken.sum()),
            target=Target.SALESFORCE,
            object="Account",
            action=Action.SKIP,
            rules=["ACC-4"],
            source_id=candidates.loc[broken, "hs_id"],
            reason="ACC-4: the Account this company was linked to is deleted; it is not re-created",
        )
    )
    candidates = candidates[~broken].reset_index(drop=True)
    if candidates.empty:
        return concat_plans(plans)
    status = company_contact_status(
        inputs, contacts, config, candidates["hs_id"], contact_companies=frames.contact_companies
    )
    skips, creating = _acc4_acc5(
        candidates, status.reindex(candidates["hs_id"]).reset_index(drop=True), config
    )
    plans.append(skips)

    # ACC-6: a company matching an existing Account group links to its survivor.
    matched = _group_matches(creating, dedup, claims, frames, owners)
    plans.append(matched.plan)
    creating = creating[~creating["hs_id"].isin(matched.handled)].reset_index(drop=True)
    plans.append(_account_create_rows(creating, inputs, config, owners))
    return concat_plans(plans)


@dataclass(frozen=True)
class _GroupMatches:
    plan: pd.DataFrame
    handled: set[str]


def _group_matches(
    creating: pd.DataFrame, dedup: DedupResult, claims: AccountClaims, frames: AccountFrames, owners: OwnerMap
) -> _GroupMatches:
    """ACC-6 for HubSpot companies: link to the survivor of a matching Account group (OWN-4)."""
    if creating.empty or dedup.keys.empty:
        return _GroupMatches(concat_plans([]), set())
    keys = dedup.keys.reset_index()
    survivor = dedup.survivor
    by_domain = creating[["hs_id", "domain_key", "created", "owner"]].merge(
        keys[["sf_id", "domain_key"]].dropna(), on="domain_key"
    )
    by_domain["priority"] = 0
    by_name = (
        creating[["hs_id", "created", "owner"]]
        .assign(token_key=token_keys(creating["name_key"]))
        .merge(keys[["sf_id", "token_key"]].dropna(), on="token_key")
    )
    by_name["priority"] = 1
    cand = pd.concat([by_domain, by_name], ignore_index=True)
    if cand.empty:
        return _GroupMatches(concat_plans([]), set())
    cand["survivor_id"] = cand["sf_id"].map(survivor)
    cand = cand.sort_values(["hs_id", "priority", "survivor_id"]).drop_duplicates("hs_id")
    cand = cand.sort_values(["priority", "created", "hs_id"], na_position="last")
    taken_by = claims.pairs().drop_duplicates("sf_id").set_index("sf_id")["hs_id"]
    free = ~cand["survivor_id"].isin(claims.sf)
    first = free & ~cand["survivor_id"].duplicated()
    linking = cand[first].rename(columns={"survivor_id": "target"}).reset_index(drop=True)
    claims.take(linking[["target", "hs_id"]].rename(columns={"target": "sf_id"}), "group")
    blocked = cand[~first].reset_index(drop=True)
    blocked_by = (
        blocked["survivor_id"]
        .map(taken_by)
        .fillna(blocked["survivor_id"].map(linking.set_index("target")["hs_id"]))
    )
    plans = [
        _account_link_rows(
            linking[["target", "hs_id"]].rename(columns={"target": "sf_id"}),
            frames.accounts,
            frames.companies,
            owners,
            rules_first=("ACC-4", "ACC-6"),
        ),
        plan_rows(
            count=len(blocked),
            target=Target.SALESFORCE,
            object="Account",
            action=Action.SKIP,
            rules=["ACC-6"],
            source_id=blocked["hs_id"],
            target_id=blocked["survivor_id"],
            reason="ACC-6: matches Account "
            + blocked["survivor_id"]
            + ", which already syncs with company "
            + blocked_by.fillna("?")
            + "; no second Account is created",
        ),
    ]
    return _GroupMatches(concat_plans(plans), set(cand["hs_id"]))


def _account_create_rows(
    creating: pd.DataFrame, inputs: RuleInputs, config: SyncConfig, owners: OwnerMap
) -> pd.DataFrame:
    """ACC-4: SF Accounts created from HubSpot companies, owners per OWN-1..OWN-3."""
    plan, _ = salesforce_create_rows(
        creating,
        inputs.hs_company,
        owners,
        sf_object="Account",
        hs_object="companies",
        mappings=config.mappings("accounts"),
        options=inputs.picklist_options,
        rule="ACC-4",
    )
    return plan


# ============================================================================ composition


def plan_accounts(
    inputs: RuleInputs,
    config: SyncConfig,
    owners: OwnerMap,
    contacts: ContactsResult,
    dedup: DedupResult | None = None,
) -> AccountsResult:
    """ACC-1..ACC-6: the whole Account/company plan (dedup, SF -> HS, then HS -> SF).

    ``contacts`` is :func:`~crm_sync.rules.contacts.match_contacts`' result (its pairs and
    inclusion-list flags drive ACC-3's contact step and ACC-4/ACC-5). ``dedup`` may be passed
    when the ``dedup_accounts`` task already computed it; otherwise it is computed here. With
    ``companies.sync`` off, no Account or company rows are planned (the groups still are).
    """
    frames = account_frames(inputs, config)
    if dedup is None:
        dedup = dedup_accounts(inputs.sf_account, linked_account_ids(inputs, frames))
    if not config.companies_sync:
        return AccountsResult(concat_plans([]), AccountClaims().pairs(), dedup)
    to_hs, claims = accounts_to_hubspot(inputs, config, owners, contacts.pairs, dedup=dedup, frames=frames)
    to_sf = companies_to_salesforce(
        inputs, config, owners, contacts, dedup=dedup, claims=claims, frames=frames
    )
    pairs = claims.pairs()
    created = to_sf[(to_sf["action"] == "create") & (to_sf["object"] == "Account")]
    if not created.empty:
        pairs = pd.concat(
            [
                pairs,
                pd.DataFrame(
                    {
                        "sf_id": created_refs("Account", created["source_id"]),
                        "hs_id": created["source_id"],
                        "how": "create_in_salesforce",
                    }
                ),
            ],
            ignore_index=True,
        )
    pairs = pairs.astype("str").reset_index(drop=True)
    moved = _converted_contact_companies(contacts.pairs, pairs, frames.contact_companies)
    return AccountsResult(plan=concat_plans([to_hs, to_sf, moved]), pairs=pairs, dedup=dedup)


#: HubSpot's unlabeled contact -> company association: adds a company without replacing the
#: contact's primary one.
ASSOC_CONTACT_TO_COMPANY = 279


def _converted_contact_companies(
    contact_pairs: pd.DataFrame, account_pairs: pd.DataFrame, contact_companies: pd.DataFrame
) -> pd.DataFrame:
    """CON-1: a converted Lead's HubSpot contact follows it to the converted Account's company.

    The Contact a Lead was converted to carries the converted Account (``AccountId``); the
    contact pair moved to it (``how == "converted"``) is associated with that Account's company
    (its id, or the created ref) unless it already is.
    """
    pairs = _contact_pairs(contact_pairs).assign(how=as_text(column(contact_pairs, "how")))
    moved = pairs[(pairs["how"] == "converted") & pairs["sf_account_id"].notna()]
    if moved.empty or account_pairs.empty:
        return concat_plans([])
    company = moved["sf_account_id"].map(account_pairs.drop_duplicates("sf_id").set_index("sf_id")["hs_id"])
    wanted = pd.DataFrame({"contact": moved["hs_id"], "company": company, "sf_id": moved["sf_id"]}).dropna()
    have = contact_companies.rename(columns={"hs_id": "company"})
    if not have.empty:
        hit = wanted.merge(have.assign(_hit=True), on=["contact", "company"], how="left")["_hit"].notna()
        wanted = wanted[~hit.to_numpy(dtype=bool)]
    n = len(wanted)
    values = pd.DataFrame(
        {
            "from_type": ["contacts"] * n,
            "from_id": wanted["contact"].to_numpy(dtype=object),
            "to_type": ["companies"] * n,
            "to_id": wanted["company"].to_numpy(dtype=object),
            "type_id": [ASSOC_CONTACT_TO_COMPANY] * n,
        }
    )
    return plan_rows(
        target=Target.HUBSPOT,
        object="associations",
        action=Action.ASSOCIATE,
        values=values,
        source_id=wanted["sf_id"],
        rules=["CON-1"],
        keep_empty=True,
    )


# ============================================================================ ACC-8


@dataclass(frozen=True)
class ResyncChunk:
    """ACC-8: one slice ``[start, stop)`` of a resync of ``total`` companies (ids sorted)."""

    index: int
    start: int
    stop: int
    total: int

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def progress(self) -> float:
        """Fraction of the resync done once this chunk has completed."""
        return self.stop / self.total if self.total else 1.0


def resync_chunks(
    total: int, *, chunk_size: int = MAX_RESYNC_CHUNK, resume_from: int = 0
) -> list[ResyncChunk]:
    """ACC-8 (**beyond**): split a resync of ``total`` companies into chunks of <= 200,000.

    ``resume_from`` is the offset of the first company not yet resynced (the ``stop`` of the
    last completed chunk); chunks start there, so a resync that failed after chunk *k*
    resumes with chunk *k + 1* and never repeats or skips a company, provided the ids are
    ordered the same way each time (:func:`resync_batches` sorts them). ``index`` counts
    chunks from the start of the whole resync. Raises ValueError for a chunk size above
    HubSpot's cap or offsets out of range.
    """
    if total < 0:
        raise ValueError(f"ACC-8: total must be >= 0 (got {total})")
    if not 0 < chunk_size <= MAX_RESYNC_CHUNK:
        raise ValueError(f"ACC-8: chunk_size must be between 1 and {MAX_RESYNC_CHUNK} (got {chunk_size})")
    if not 0 <= resume_from <= total:
        raise ValueError(f"ACC-8: resume_from must be between 0 and {total} (got {resume_from})")
    first_index = -(-resume_from // chunk_size)
    return [
        ResyncChunk(index=first_index + k, start=start, stop=min(start + chunk_size, total), total=total)
        for k, start in enumerate(range(resume_from, total, chunk_size))
    ]


def resync_batches(
    company_ids: pd.Series, *, chunk_size: int = MAX_RESYNC_CHUNK, resume_from: int = 0
) -> Iterator[tuple[ResyncChunk, pd.Series]]:
    """ACC-8: the distinct company ids, sorted, yielded chunk by chunk with their :class:`ResyncChunk`."""
    ids = pd.Series(sorted(set(as_text(company_ids).dropna())), dtype="str")
    for chunk in resync_chunks(len(ids), chunk_size=chunk_size, resume_from=resume_from):
        yield chunk, ids.iloc[chunk.start : chunk.stop].reset_index(drop=True)
