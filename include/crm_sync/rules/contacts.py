"""Contact rules CON-1..CON-3: which HubSpot contact is which Salesforce Contact or Lead.

:func:`match_contacts` pairs the two sides and decides what is created where:

1. Pairs already known stay as they are: the staging link table first, then a HubSpot contact
   holding a live SF id (``salesforcecontactid`` / ``salesforceleadid``), then an SF record
   holding a live HubSpot id (``HubSpot_Id__c``). Ids written by an earlier run (or by
   HubSpot's own integration) win over email, so a changed email never re-pairs a contact, and
   a create whose link was not yet recorded is not created twice (SYNC-4).
2. CON-1: the rest match by email, case-insensitively; a Contact is preferred over a Lead, then
   the most recently modified (``LastModifiedDate``, else ``SystemModstamp``), then the lowest
   Id, so the choice is deterministic. Deleted and converted Leads never match; a converted
   Lead's link (link table, ``salesforceleadid`` or its ``HubSpot_Id__c``) moves to the
   Contact it was converted to (``ConvertedContactId``), and the Lead gets no more writes.
3. CON-2: an unmatched HubSpot contact creates the configured default object only if it
   qualifies for the inclusion list (:func:`inclusion_list_failures`); otherwise a ``skip``.
4. CON-3: an unmatched Salesforce Contact or Lead creates a HubSpot contact; when several share
   an email, the preferred one (same order as CON-1) creates it and the others are ``skip``
   rows, because HubSpot allows one contact per email.

Records that cannot be matched at all (no valid email) are quarantined (SYNC-5). The resulting
pairs (:data:`CONTACT_PAIR_COLUMNS`) feed ACC-3/4/5, DEAL-6 and the rollups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crm_sync.plan import Action, Target, concat_plans, created_refs, plan_rows
from crm_sync.rules.inputs import RuleInputs
from crm_sync.rules.new_records import first_link_rows, hubspot_create_rows, salesforce_create_rows
from crm_sync.rules.normalize import (
    as_bool,
    as_text,
    as_timestamp,
    column,
    first_present,
    normalize_emails,
    salesforce_ids18,
    values_of,
)
from crm_sync.rules.owners import ASSIGNMENT_RULE_FIELD, OwnerMap
from crm_sync.rules.screening import Side, screen
from crm_sync.rules.staged import alive, link_pairs
from crm_sync.settings import InclusionCondition, SyncConfig

#: Columns of :attr:`ContactsResult.pairs`.
#:
#: * ``hs_id``: HubSpot contact id; for a contact this plan creates (CON-3) the placeholder
#:   ``created_ref("contacts", sf_id)`` = ``"@contacts:<sf_id>"`` (see
#:   :func:`crm_sync.plan.created_ref`), which the loader resolves.
#: * ``sf_object``: ``Contact`` or ``Lead``.
#: * ``sf_id``: SF record id; for a record this plan creates (CON-2) the placeholder
#:   ``"@Lead:<hs_id>"`` / ``"@Contact:<hs_id>"``.
#: * ``how``: ``linked`` (staging link table), ``converted`` (the link of a converted Lead,
#:   moved to its Contact), ``hubspot_id`` (HS link property),
#:   ``salesforce_id`` (SF ``HubSpot_Id__c``), ``email`` (CON-1), ``create_in_salesforce``
#:   (CON-2), ``create_in_hubspot`` (CON-3).
#: * ``sf_account_id``: the SF Contact's ``AccountId`` (NA for Leads, private Contacts and
#:   records still to be created; a Contact created by CON-2 starts private).
#: * ``email``: the normalized email the pair shares (NA if unknown).
CONTACT_PAIR_COLUMNS: tuple[str, ...] = ("hs_id", "sf_object", "sf_id", "how", "sf_account_id", "email")

_SF_LINK_PROPERTY = {"Contact": "salesforcecontactid", "Lead": "salesforceleadid"}
_MAPPING_GROUP = {"Contact": "contacts", "Lead": "leads"}
_OBJECT_RANK = {"Contact": 0, "Lead": 1}


@dataclass(frozen=True)
class ContactsResult:
    """What :func:`match_contacts` decided.

    ``plan``: plan rows (``PLAN_COLUMNS``): ``link`` (two per new pair: target ``hubspot``
    object ``contacts`` writing the SF id property, and target ``salesforce`` object
    ``Contact``/``Lead`` writing ``HubSpot_Id__c``; OWN-4 owner fields ride along), ``create``,
    ``skip`` and ``quarantine``.
    ``pairs``: every contact that syncs after this plan (:data:`CONTACT_PAIR_COLUMNS`).
    ``qualifies``: bool Series indexed by HubSpot contact id (every live contact): whether it
    qualifies for the inclusion list (used by ACC-4/ACC-5).
    """

    plan: pd.DataFrame
    pairs: pd.DataFrame
    qualifies: pd.Series


# ------------------------------------------------------------------------------ inclusion list


def _comparable(values: pd.Series) -> pd.Series:
    """Property values as casefolded text for inclusion-list comparisons (NA = unknown)."""
    return as_text(values).str.casefold()


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().casefold()


def _describe(condition: InclusionCondition) -> str:
    prop, op, value = condition.property, condition.operator, condition.value
    if op == "known":
        return f"{prop} must be known"
    if op == "not_known":
        return f"{prop} must be unknown"
    if op == "eq":
        return f"{prop} must equal {value!r}"
    if op == "neq":
        return f"{prop} must not equal {value!r}"
    return f"{prop} must be one of {', '.join(str(v) for v in value)}"


def _condition_holds(frame: pd.DataFrame, condition: InclusionCondition) -> pd.Series:
    values = _comparable(column(frame, condition.property))
    op = condition.operator
    if op == "known":
        return values.notna()
    if op == "not_known":
        return values.isna()
    if op == "in":
        wanted = {_value_text(v) for v in condition.value}
        return values.isin(wanted).astype(bool)
    equal = (values == _value_text(condition.value)).fillna(False).astype(bool)
    if isinstance(condition.value, int | float) and not isinstance(condition.value, bool):
        numbers = pd.to_numeric(values, errors="coerce")
        equal = equal | (numbers == float(condition.value)).fillna(False).astype(bool)
    return equal if op == "eq" else ~equal


def inclusion_list_failures(hs_contact: pd.DataFrame, conditions: Sequence[InclusionCondition]) -> pd.Series:
    """CON-2 inclusion list: why each HubSpot contact does NOT qualify, or NA when it does.

    ``hs_contact``: staged HubSpot contacts (any columns; a property the frame lacks is unknown
    for everyone). ``conditions`` are ANDed. Values compare as casefolded, stripped text (so
    ``Customer`` equals ``customer``; a boolean condition value equals ``"true"``/``"false"``),
    numeric condition values also compare numerically. ``neq`` holds for unknown values;
    ``known`` means present and not blank. An empty list admits everyone. The reason names the
    first failing condition and the contact's value, e.g. ``lifecyclestage must be one of
    salesqualifiedlead, customer (is lead)``. Returns a Series aligned with ``hs_contact``.
    """
    reasons = pd.Series(pd.NA, index=hs_contact.index, dtype=object)
    for condition in conditions:
        failing = ~_condition_holds(hs_contact, condition) & reasons.isna()
        if not failing.any():
            continue
        actual = as_text(column(hs_contact, condition.property)).loc[failing].fillna("unknown")
        reasons.loc[failing] = _describe(condition) + " (is " + actual + ")"
    return reasons


def inclusion_list_mask(hs_contact: pd.DataFrame, conditions: Sequence[InclusionCondition]) -> pd.Series:
    """CON-2/ACC-4/ACC-5: bool Series, True where the contact qualifies for the inclusion list."""
    return inclusion_list_failures(hs_contact, conditions).isna()


# ------------------------------------------------------------------------------ staged frames


def _hs_frame(hs_contact: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "hs_id": as_text(column(hs_contact, "id")),
            "email": normalize_emails(column(hs_contact, "email")),
            "sf_contact_ref": salesforce_ids18(column(hs_contact, "salesforcecontactid")),
            "sf_lead_ref": salesforce_ids18(column(hs_contact, "salesforceleadid")),
            "owner": as_text(column(hs_contact, "hubspot_owner_id")),
            "alive": alive(hs_contact),
            "row": np.arange(len(hs_contact)),
        },
        index=hs_contact.index,
    )
    return frame[frame["hs_id"].notna()]


def _sf_frame(records: pd.DataFrame, sf_object: str) -> pd.DataFrame:
    modified = first_present(
        as_timestamp(column(records, "LastModifiedDate")), as_timestamp(column(records, "SystemModstamp"))
    )
    converted = as_bool(column(records, "IsConverted")) if sf_object == "Lead" else False
    frame = pd.DataFrame(
        {
            "sf_object": sf_object,
            "sf_id": as_text(column(records, "Id")),
            "email": normalize_emails(column(records, "Email")),
            "sf_account_id": as_text(column(records, "AccountId")) if sf_object == "Contact" else None,
            "owner": as_text(column(records, "OwnerId")),
            "hs_ref": as_text(column(records, "HubSpot_Id__c")),
            "modified": modified,
            "converted": converted,
            "converted_to": as_text(column(records, "ConvertedContactId")) if sf_object == "Lead" else None,
            "alive": alive(records),
            "row": np.arange(len(records)),
        },
        index=records.index,
    )
    frame["sf_account_id"] = frame["sf_account_id"].astype("str")
    frame["converted"] = frame["converted"].astype(bool)
    frame["converted_to"] = frame["converted_to"].astype("str")
    return frame[frame["sf_id"].notna()]


def _prefer(candidates: pd.DataFrame, first: str) -> pd.DataFrame:
    """CON-1 order: per ``first`` key, Contact before Lead, most recently modified, lowest Id."""
    ranked = candidates.assign(_rank=candidates["sf_object"].map(_OBJECT_RANK))
    ranked = ranked.sort_values(
        [first, "_rank", "modified", "sf_id"],
        ascending=[True, True, False, True],
        na_position="last",
        kind="stable",
    )
    return ranked.drop(columns="_rank")


def _one_to_one(candidates: pd.DataFrame) -> pd.DataFrame:
    """Keep the best SF record per HubSpot contact, then each SF record at most once."""
    best = _prefer(candidates, "hs_id").drop_duplicates("hs_id")
    return best.drop_duplicates(["sf_object", "sf_id"])


# ------------------------------------------------------------------------------ the rule


def match_contacts(inputs: RuleInputs, config: SyncConfig, owners: OwnerMap) -> ContactsResult:
    """CON-1/CON-2/CON-3 (with OWN-1..OWN-4 for the owners of what they create or link).

    Reads ``inputs.hs_contact``, ``inputs.sf_contact``, ``inputs.sf_lead`` and ``inputs.links``
    (rows with ``object`` Contact/Lead); ``config.contacts_default_object``,
    ``config.inclusion_list`` and the ``contacts``/``leads`` field mappings (for the fields of
    created records); ``owners`` from :func:`~crm_sync.rules.owners.build_owner_map`.

    Plan rows produced (all with ``rules`` naming the deciding ids):

    * ``link`` pairs by id property, external id or email (CON-1), two rows per pair (see
      :class:`ContactsResult`); HubSpot side fields ``salesforcecontactid``/``salesforceleadid``
      (only if different) and ``hubspot_owner_id`` (OWN-4); SF side ``HubSpot_Id__c`` (only if
      different), ``OwnerId`` (OWN-4, inactive SF owner replaced) and, for Leads,
      ``_use_assignment_rule: False``.
    * ``create`` on salesforce ``Lead``/``Contact`` (CON-2; fields from the mappings, ``Email``,
      ``HubSpot_Id__c``, ``OwnerId`` / ``_use_assignment_rule`` per OWN-1..3) and on hubspot
      ``contacts`` (CON-3; mapped fields, ``email``, the SF id property, ``hubspot_owner_id``
      when the SF owner maps by email).
    * ``skip``: CON-2 non-qualifying contacts; SF records whose email already belongs to a
      synced HubSpot contact or to a preferred SF record (CON-1/CON-3); converted Leads; records
      whose linked counterpart was deleted (not re-created); OWN-4 owners that do not map.
    * ``quarantine``: qualifying HubSpot contacts and SF records without a valid email;
      creates whose owner cannot be resolved (OWN-2, integration user missing).

    Already-linked pairs produce no rows here (field updates are the SYNC-2/3 merge's job).
    """
    hs_all = _hs_frame(inputs.hs_contact)
    failures = inclusion_list_failures(inputs.hs_contact, config.inclusion_list).to_numpy()[hs_all["row"]]
    hs_all["failure"] = failures
    hs_all["qualifies"] = hs_all["failure"].isna()
    hs = hs_all[hs_all["alive"]].drop_duplicates("hs_id")
    sf_all = pd.concat(
        [_sf_frame(inputs.sf_contact, "Contact"), _sf_frame(inputs.sf_lead, "Lead")], ignore_index=True
    )
    sf = sf_all[sf_all["alive"]].drop_duplicates(["sf_object", "sf_id"]).reset_index(drop=True)
    sf["key"] = sf["sf_object"] + ":" + sf["sf_id"]

    pairing = _Pairing()
    broken_hs, broken_sf = _pair_known_records(pairing, inputs, hs, sf)
    pairs = pairing.pairs()
    hs_idx = hs.set_index("hs_id")
    pairs["hs_owner"] = pairs["hs_id"].map(hs_idx["owner"])
    plans = [_link_rows(pairs[pairs["how"] != "linked"], hs_idx, owners)]
    creators = _salesforce_leftovers(
        plans,
        inputs,
        config,
        owners,
        rest_sf=sf[~sf["key"].isin(pairing.sf)],
        taken=_taken_emails(hs, pairs),
        broken=broken_sf,
    )
    rest_hs = hs[~hs["hs_id"].isin(pairing.hs)]
    created_ok = _hubspot_leftovers(plans, inputs, config, owners, rest_hs=rest_hs, broken=broken_hs)
    all_pairs = pd.concat(
        [
            pairs[list(CONTACT_PAIR_COLUMNS)],
            _created_pairs(created_ok, creators, config.contacts_default_object),
        ],
        ignore_index=True,
    )
    all_pairs = all_pairs.astype(dict.fromkeys(CONTACT_PAIR_COLUMNS, "str")).reset_index(drop=True)
    qualifies = pd.Series(hs["qualifies"].to_numpy(dtype=bool), index=pd.Index(hs["hs_id"], name="hs_id"))
    return ContactsResult(plan=concat_plans(plans), pairs=all_pairs, qualifies=qualifies)


#: The SF columns a pair carries.
_SF_COLS = ["sf_object", "sf_id", "key", "email", "sf_account_id", "owner", "hs_ref", "modified"]


@dataclass
class _Pairing:
    """Contact pairs found so far (each HubSpot contact and SF record pairs once, first wins)."""

    hs: set[str] = field(default_factory=set)
    sf: set[str] = field(default_factory=set)
    parts: list[pd.DataFrame] = field(default_factory=list)

    def claim(self, chosen: pd.DataFrame, how: str) -> None:
        chosen = chosen[~chosen["hs_id"].isin(self.hs) & ~chosen["key"].isin(self.sf)]
        chosen = _one_to_one(chosen)
        self.hs.update(values_of(chosen["hs_id"]))
        self.sf.update(values_of(chosen["key"]))
        self.parts.append(chosen.assign(how=how))

    def pairs(self) -> pd.DataFrame:
        pairs = pd.concat(self.parts, ignore_index=True)
        return pairs.astype(
            dict.fromkeys(("hs_id", "sf_object", "sf_id", "email", "sf_account_id", "owner"), "str")
        )


def _pair_known_records(
    pairing: _Pairing, inputs: RuleInputs, hs: pd.DataFrame, sf: pd.DataFrame
) -> tuple[set[str], set[str]]:
    """CON-1 in order: the link table (a converted Lead's link moving to its Contact), HubSpot
    link properties, SF external ids, then email. Returns the HubSpot contact ids and SF keys
    whose linked counterpart is deleted (they are not re-created)."""
    moved = _conversions(sf)
    links = link_pairs(inputs.links, ("Contact", "Lead"))
    links = links.rename(columns={"object": "sf_object"})
    links["key"] = links["sf_object"] + ":" + links["sf_id"]
    pairable = sf[~sf["key"].isin(moved.index)]
    live_links = links.merge(pairable[_SF_COLS].drop(columns=["sf_object", "sf_id"]), on="key").merge(
        hs[["hs_id"]], on="hs_id"
    )
    pairing.claim(live_links, "linked")
    pairing.claim(_converted_candidates(moved, links, hs, sf, _SF_COLS), "converted")
    broken = links[~links["hs_id"].isin(pairing.hs) & ~links["key"].isin(pairing.sf)]
    broken_hs = set(values_of(broken.loc[~broken["key"].isin(sf["key"]), "hs_id"])) & set(
        values_of(hs["hs_id"])
    )
    broken_sf = set(values_of(broken.loc[~broken["hs_id"].isin(hs["hs_id"]), "key"])) & set(
        values_of(sf["key"])
    )

    by_property = pd.concat(
        [
            hs[["hs_id", "sf_contact_ref"]]
            .rename(columns={"sf_contact_ref": "sf_id"})
            .assign(sf_object="Contact"),
            hs[["hs_id", "sf_lead_ref"]].rename(columns={"sf_lead_ref": "sf_id"}).assign(sf_object="Lead"),
        ],
        ignore_index=True,
    ).dropna(subset=["sf_id"])
    by_property["key"] = by_property["sf_object"] + ":" + by_property["sf_id"]
    pairing.claim(by_property[["hs_id", "key"]].merge(pairable[_SF_COLS], on="key"), "hubspot_id")
    by_external = pairable[pairable["hs_ref"].notna()].rename(columns={"hs_ref": "hs_id"})
    by_external = by_external[by_external["hs_id"].isin(hs["hs_id"])]
    pairing.claim(by_external.assign(hs_ref=by_external["hs_id"])[["hs_id", *_SF_COLS]], "salesforce_id")

    # Email, among records not yet paired. Converted Leads never match.
    open_hs = hs[~hs["hs_id"].isin(pairing.hs) & ~hs["hs_id"].isin(broken_hs) & hs["email"].notna()]
    matchable = sf[~sf["key"].isin(pairing.sf) & ~sf["converted"] & sf["email"].notna()]
    pairing.claim(open_hs[["hs_id", "email"]].merge(matchable[_SF_COLS], on="email"), "email")
    return broken_hs, broken_sf


def _taken_emails(hs: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Emails a live HubSpot contact already holds, with the SF record it syncs with (if any):
    HubSpot allows one contact per email, so an SF record with one of them creates nothing."""
    pair_by_hs = pairs.dropna(subset=["hs_id"]).drop_duplicates("hs_id").set_index("hs_id")
    taken = pd.concat(
        [
            hs.loc[hs["email"].notna(), ["email", "hs_id"]],
            pairs.loc[pairs["email"].notna(), ["email", "hs_id"]],
        ],
        ignore_index=True,
    ).drop_duplicates("email")
    taken["by_object"] = taken["hs_id"].map(pair_by_hs["sf_object"]).astype("str")
    taken["by_id"] = taken["hs_id"].map(pair_by_hs["sf_id"]).astype("str")
    return taken


def _salesforce_leftovers(
    plans: list[pd.DataFrame],
    inputs: RuleInputs,
    config: SyncConfig,
    owners: OwnerMap,
    *,
    rest_sf: pd.DataFrame,
    taken: pd.DataFrame,
    broken: set[str],
) -> pd.DataFrame:
    """CON-3 for the SF records left unpaired: skips (deleted counterpart, converted Lead, email
    already in HubSpot, a preferred record with the same email), quarantine (no email), creates.
    Returns the records that create a HubSpot contact."""
    to_hs = Side(Target.HUBSPOT, "contacts", rest_sf["sf_id"])
    # Their rows name the HubSpot contact that already holds the email.
    holder = Side(
        Target.HUBSPOT, "contacts", rest_sf["sf_id"], rest_sf["email"].map(taken.set_index("email")["hs_id"])
    )
    sf_open = screen(
        plans,
        to_hs.skip(
            ["CON-3"],
            rest_sf["key"].isin(broken),
            lambda hit: (
                "CON-3: the HubSpot contact this "
                + rest_sf["sf_object"][hit]
                + " was linked to is deleted; it is not re-created"
            ),
        ),
        to_hs.skip(
            ["CON-1"],
            rest_sf["converted"],
            "CON-1: converted Lead; the Contact it was converted to syncs instead",
        ),
        holder.skip(
            ["CON-1"],
            rest_sf["email"].isin(taken["email"]),
            lambda hit: _shadowed_reason(rest_sf[hit], taken),
        ),
        to_hs.quarantine(
            ["CON-3"],
            rest_sf["email"].isna(),
            lambda hit: (
                "CON-3: Salesforce "
                + rest_sf["sf_object"][hit]
                + " has no valid email; HubSpot contacts are matched and created by email"
            ),
        ),
    )
    ordered = _prefer(rest_sf[sf_open], "email")
    creators = ordered.drop_duplicates("email")
    duplicates = ordered[~ordered["key"].isin(creators["key"])].merge(
        creators[["email", "sf_object", "sf_id"]].rename(
            columns={"sf_object": "by_object", "sf_id": "by_id"}
        ),
        on="email",
    )
    plans.append(
        plan_rows(
            count=len(duplicates),
            target=Target.HUBSPOT,
            object="contacts",
            action=Action.SKIP,
            rules=["CON-3"],
            source_id=duplicates["sf_id"],
            reason="CON-3: "
            + duplicates["by_object"]
            + " "
            + duplicates["by_id"]
            + " has the same email and creates the HubSpot contact (a Contact is preferred over a Lead,"
            " then the most recently modified)",
        )
    )
    plans.append(_hubspot_create_rows(creators, inputs, config, owners))
    return creators


def _hubspot_leftovers(
    plans: list[pd.DataFrame],
    inputs: RuleInputs,
    config: SyncConfig,
    owners: OwnerMap,
    *,
    rest_hs: pd.DataFrame,
    broken: set[str],
) -> pd.DataFrame:
    """CON-2 for the HubSpot contacts left unpaired: skips (deleted counterpart, not on the
    inclusion list), quarantine (no email), creates. Returns the created records."""
    to_sf = Side(Target.SALESFORCE, config.contacts_default_object, rest_hs["hs_id"])
    hs_open = screen(
        plans,
        to_sf.skip(
            ["CON-2"],
            rest_hs["hs_id"].isin(broken),
            "CON-2: the Salesforce record this contact was linked to is deleted; it is not re-created",
        ),
        to_sf.skip(
            ["CON-2"],
            ~rest_hs["qualifies"],
            lambda hit: (
                "CON-2: does not qualify for the inclusion list: " + rest_hs["failure"][hit].astype("str")
            ),
        ),
        to_sf.quarantine(
            ["CON-1", "CON-2"],
            rest_hs["email"].isna(),
            "CON-1: HubSpot contact qualifies for the inclusion list but has no valid email; "
            "contacts are matched by email",
        ),
    )
    sf_creates, created_ok = _salesforce_create_rows(rest_hs[hs_open], inputs, config, owners)
    plans.append(sf_creates)
    return created_ok


def _created_pairs(created_ok: pd.DataFrame, creators: pd.DataFrame, default_object: str) -> pd.DataFrame:
    """Pairs of records this plan creates, on either side, named by created refs."""
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "hs_id": created_ok["hs_id"],
                    "sf_object": default_object,
                    "sf_id": created_refs(default_object, created_ok["hs_id"]),
                    "how": "create_in_salesforce",
                    "sf_account_id": None,
                    "email": created_ok["email"],
                }
            ),
            pd.DataFrame(
                {
                    "hs_id": created_refs("contacts", creators["sf_id"]),
                    "sf_object": creators["sf_object"],
                    "sf_id": creators["sf_id"],
                    "how": "create_in_hubspot",
                    "sf_account_id": creators["sf_account_id"],
                    "email": creators["email"],
                }
            ),
        ],
        ignore_index=True,
    )


def _conversions(sf: pd.DataFrame) -> pd.Series:
    """CON-1: converted Leads whose Contact is live, as Lead key -> the Contact's key.

    Only these Leads hand their link over: a converted Lead without a live Contact keeps
    nothing to sync to (it is skipped as converted).
    """
    leads = sf[sf["converted"] & sf["converted_to"].notna()]
    target = "Contact:" + leads["converted_to"]
    live = target.isin(sf["key"]).to_numpy(dtype=bool)
    return pd.Series(target[live].to_numpy(dtype=object), index=pd.Index(leads["key"][live]), dtype=object)


def _converted_candidates(
    moved: pd.Series, links: pd.DataFrame, hs: pd.DataFrame, sf: pd.DataFrame, sf_cols: list[str]
) -> pd.DataFrame:
    """CON-1: the HubSpot contacts linked to a converted Lead (link table, ``salesforceleadid``
    or the Lead's ``HubSpot_Id__c``), paired with the Contact the Lead was converted to."""
    lead_ids = pd.concat(
        [
            links.loc[links["key"].isin(moved.index), ["key", "hs_id"]],
            pd.DataFrame({"key": "Lead:" + hs["sf_lead_ref"], "hs_id": hs["hs_id"]}).dropna(),
            sf.loc[sf["key"].isin(moved.index), ["key", "hs_ref"]]
            .rename(columns={"hs_ref": "hs_id"})
            .dropna(),
        ],
        ignore_index=True,
    )
    lead_ids = lead_ids[lead_ids["key"].isin(moved.index) & lead_ids["hs_id"].isin(hs["hs_id"])]
    lead_ids["key"] = lead_ids["key"].map(moved)
    return lead_ids.drop_duplicates().merge(sf[sf_cols], on="key")


def _shadowed_reason(shadowed: pd.DataFrame, taken: pd.DataFrame) -> pd.Series:
    """CON-1: which HubSpot contact already has the email of these SF records (and what it syncs with)."""
    shadowed = shadowed.merge(taken, on="email", how="left")
    synced_with = (" and syncs with " + shadowed["by_object"] + " " + shadowed["by_id"]).fillna("")
    return (
        "CON-1: HubSpot contact "
        + shadowed["hs_id"]
        + " already has this email"
        + synced_with
        + " (a Contact is preferred over a Lead, then the most recently modified)"
    )


def _link_rows(new_links: pd.DataFrame, hs_idx: pd.DataFrame, owners: OwnerMap) -> pd.DataFrame:
    """CON-1: two ``link`` rows per newly found pair, with OWN-4 owner fields and skips (Leads
    also carry ``_use_assignment_rule: False``: an existing Lead is not reassigned)."""
    if new_links.empty:
        return concat_plans([])
    new_links = new_links.reset_index(drop=True)
    current_prop = pd.Series(
        np.where(
            new_links["sf_object"] == "Contact",
            new_links["hs_id"].map(hs_idx["sf_contact_ref"]),
            new_links["hs_id"].map(hs_idx["sf_lead_ref"]),
        ),
        index=new_links.index,
    )
    return first_link_rows(
        new_links.assign(sf_ref=current_prop),
        owners,
        hs_object="contacts",
        link_properties=_SF_LINK_PROPERTY,
        base_rules=[["CON-1"]] * len(new_links),
        sf_extra={
            ASSIGNMENT_RULE_FIELD: pd.Series(
                [False if o == "Lead" else None for o in new_links["sf_object"]],
                index=new_links.index,
                dtype=object,
            )
        },
    )


def _hubspot_create_rows(
    creators: pd.DataFrame, inputs: RuleInputs, config: SyncConfig, owners: OwnerMap
) -> pd.DataFrame:
    """CON-3: HubSpot contacts created from SF Contacts and Leads (mapped fields + link + owner)."""
    plans = []
    for sf_object, source in (("Contact", inputs.sf_contact), ("Lead", inputs.sf_lead)):
        chosen = creators[creators["sf_object"] == sf_object]
        plans.append(
            hubspot_create_rows(
                chosen,
                source,
                owners,
                sf_object=sf_object,
                hs_object="contacts",
                mappings=config.mappings(_MAPPING_GROUP[sf_object]),
                options=inputs.picklist_options,
                link_property=_SF_LINK_PROPERTY[sf_object],
                base_rules=[["CON-3"]] * len(chosen),
                defaults={"email": "Email"},
            )
        )
    return concat_plans(plans)


def _salesforce_create_rows(
    qualified: pd.DataFrame, inputs: RuleInputs, config: SyncConfig, owners: OwnerMap
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CON-2 creates of the default object with OWN-1..3 owners; returns (plan, created rows)."""
    sf_object = config.contacts_default_object
    return salesforce_create_rows(
        qualified,
        inputs.hs_contact,
        owners,
        sf_object=sf_object,
        hs_object="contacts",
        mappings=config.mappings(_MAPPING_GROUP[sf_object]),
        options=inputs.picklist_options,
        rule="CON-2",
        defaults={"Email": "email"},
    )
