"""Owner rules OWN-1..OWN-5: who owns a record on each side, mapped by email.

HubSpot owners and Salesforce users are different people-directories; the only key both share
is the email address. :func:`build_owner_map` reads both directories once and answers every
owner question the rules ask:

* OWN-1: a HubSpot record creating a Salesforce record keeps its owner only if that owner's
  name AND email match one *active* Salesforce user (:func:`owner_for_new_sf_record`).
* OWN-2/OWN-3: otherwise new Leads go to Salesforce's lead assignment rules, new Accounts,
  Contacts and Opportunities to the integration user.
* OWN-4: linking to an existing Salesforce record keeps its active owner and writes it back to
  HubSpot when it maps (:func:`owner_at_first_link`).
* OWN-5: after the first sync the owner is a two-way field: :meth:`OwnerMap.to_salesforce`,
  :meth:`OwnerMap.to_hubspot` and the email accessors let the SYNC-3 merge compare and
  translate it; :func:`unmapped_owner_skips` reports owners that cannot be translated.

Ambiguity is bad input, not a coin toss: an email held by two active Salesforce users (or two
HubSpot owners) maps to nobody and produces a ``quarantine`` plan row naming the rule, so a
person fixes the directory instead of records silently landing on the wrong owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

from crm_sync.plan import Action, Target, plan_rows
from crm_sync.rules.normalize import as_bool, as_text, column, normalize_emails
from crm_sync.rules.staged import alive

NewRecordObject = Literal["Lead", "Contact", "Account", "Opportunity"]

#: Field a plan row carries to ask the Salesforce loader for the lead assignment-rule header.
#: ``True``: send ``Sforce-Auto-Assign: TRUE`` (REST) / the job's ``assignmentRuleId`` (Bulk 2.0);
#: ``False``: send ``Sforce-Auto-Assign: FALSE``. Fields starting with ``_`` are instructions to
#: the loader, never written to Salesforce.
ASSIGNMENT_RULE_FIELD = "_use_assignment_rule"

#: Columns of :func:`owner_for_new_sf_record`'s result.
NEW_OWNER_COLUMNS: tuple[str, ...] = ("OwnerId", "use_assignment_rule", "owner_rule", "quarantine_reason")
#: Columns of :func:`owner_at_first_link`'s result.
LINK_OWNER_COLUMNS: tuple[str, ...] = ("hubspot_owner_id", "OwnerId", "owner_rule", "skip_reason")


def _ids(values: pd.Series) -> pd.Series:
    """Ids as text; a ``str`` Series (already normalized by the rules) is used as it is."""
    return values if values.dtype == "str" else as_text(values)


def _name_key(*parts: pd.Series) -> pd.Series:
    """Case- and whitespace-insensitive person name (OWN-1): casefolded, all whitespace removed."""
    joined = parts[0].fillna("").astype("str")
    for part in parts[1:]:
        joined = joined + " " + part.fillna("").astype("str")
    key = joined.str.casefold().str.replace(r"\s+", "", regex=True)
    return key.where(key != "")


@dataclass(frozen=True)
class OwnerMap:
    """HubSpot owners <-> Salesforce users, matched by email (case/whitespace-insensitive).

    ``hs_owners`` (index ``hs_owner_id``; every HubSpot owner, archived ones included because
    records may still point at them): ``email``, ``archived`` (bool), ``sf_user_id`` (the one
    active SF user with that email, else NA), ``name_matches`` (bool: that user's name equals
    the owner's), ``eligible_own1`` (bool: email and name match an active user, OWN-1),
    ``problem`` (why it maps to no active user, else NA).

    ``sf_users`` (index ``sf_user_id``; non-deleted users): ``email``, ``active`` (bool),
    ``hs_owner_id`` (the one non-archived HubSpot owner with that email, else NA), ``problem``.

    ``integration_user_id``: the active SF user whose email is the configured
    ``integration_user_email`` (OWN-2/OWN-3), or None with ``integration_problem`` saying why.

    ``quarantine``: plan rows (target ``salesforce``, object ``User``, action ``quarantine``)
    for ambiguous emails, rules ``["OWN-1", "OWN-5"]``.
    """

    hs_owners: pd.DataFrame
    sf_users: pd.DataFrame
    integration_user_id: str | None
    integration_user_email: str
    integration_problem: str | None
    quarantine: pd.DataFrame

    # -- lookups (all vectorized; input index preserved; unknown/NA ids give NA) ---------------
    def to_salesforce(self, hs_owner_ids: pd.Series) -> pd.Series:
        """OWN-5 HS -> SF: the active SF user id for each ``hubspot_owner_id``, else NA."""
        return self._lookup(self.hs_owners, hs_owner_ids, "sf_user_id")

    def to_hubspot(self, sf_user_ids: pd.Series) -> pd.Series:
        """OWN-4/OWN-5 SF -> HS: the HubSpot owner id for each SF ``OwnerId``, else NA."""
        return self._lookup(self.sf_users, sf_user_ids, "hs_owner_id")

    def own1_owner(self, hs_owner_ids: pd.Series) -> pd.Series:
        """OWN-1: the SF user id when the HS owner matches an active user by name AND email."""
        sf_ids = self.to_salesforce(hs_owner_ids)
        eligible = self._lookup(self.hs_owners, hs_owner_ids, "eligible_own1")
        return sf_ids.where(eligible.fillna(False).astype(bool))

    def hubspot_email(self, hs_owner_ids: pd.Series) -> pd.Series:
        """Normalized email of each HubSpot owner id (NA if unknown): the owner's identity for
        comparing an HS owner with an SF owner in SYNC-3 (OWN-5)."""
        return self._lookup(self.hs_owners, hs_owner_ids, "email")

    def salesforce_email(self, sf_user_ids: pd.Series) -> pd.Series:
        """Normalized email of each SF user id (NA if unknown), see :meth:`hubspot_email`."""
        return self._lookup(self.sf_users, sf_user_ids, "email")

    def is_active(self, sf_user_ids: pd.Series) -> pd.Series:
        """Whether each SF user id is a known, non-deleted, active user (bool, NA -> False)."""
        return self._lookup(self.sf_users, sf_user_ids, "active").fillna(False).astype(bool)

    def why_not_to_salesforce(self, hs_owner_ids: pd.Series) -> pd.Series:
        """Reason text why each HubSpot owner maps to no active SF user (NA when it maps or is NA)."""
        return self._why_not(self.hs_owners, hs_owner_ids, "HubSpot owner", "owner")

    def why_not_to_hubspot(self, sf_user_ids: pd.Series) -> pd.Series:
        """Reason text why each SF user maps to no HubSpot owner (NA when it maps or is NA)."""
        return self._why_not(self.sf_users, sf_user_ids, "Salesforce user", "user")

    @classmethod
    def _why_not(cls, table: pd.DataFrame, keys: pd.Series, who: str, kind: str) -> pd.Series:
        """The ``problem`` of each id in ``table`` (OWN-5 skip reasons), or that it is unknown there."""
        ids = _ids(keys)
        problem = cls._lookup(table, ids, "problem")
        unknown = ids.notna() & ~ids.isin(table.index)
        problem = problem.where(~unknown, f"{who} " + ids.fillna("") + f" is not a known {kind}")
        return problem.where(ids.notna())

    @staticmethod
    def _lookup(table: pd.DataFrame, keys: pd.Series, name: str) -> pd.Series:
        ids = _ids(keys)
        if table.empty:
            return pd.Series([pd.NA] * len(ids), index=ids.index, dtype=object)
        return ids.map(table[name])


def _users_frame(sf_user: pd.DataFrame) -> pd.DataFrame:
    keep = alive(sf_user)
    frame = pd.DataFrame(
        {
            "sf_user_id": as_text(column(sf_user, "Id")),
            "email": normalize_emails(column(sf_user, "Email")),
            "name": _name_key(column(sf_user, "FirstName"), column(sf_user, "LastName")),
            "full_name": _name_key(column(sf_user, "Name")),
            "active": as_bool(column(sf_user, "IsActive")),
        }
    )
    frame = frame[keep & frame["sf_user_id"].notna()].drop_duplicates("sf_user_id")
    frame["name"] = frame["name"].fillna(frame["full_name"])
    return frame.drop(columns="full_name").reset_index(drop=True)


def _owners_frame(hs_owner: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "hs_owner_id": as_text(column(hs_owner, "id")),
            "email": normalize_emails(column(hs_owner, "email")),
            "name": _name_key(column(hs_owner, "firstName"), column(hs_owner, "lastName")),
            "archived": ~alive(hs_owner),
        }
    )
    return frame[frame["hs_owner_id"].notna()].drop_duplicates("hs_owner_id").reset_index(drop=True)


def build_owner_map(sf_user: pd.DataFrame, hs_owner: pd.DataFrame, integration_user_email: str) -> OwnerMap:
    """OWN-1..OWN-5: match HubSpot owners (``hs_owner``) and Salesforce users (``sf_user``) by email.

    Inputs are the staged frames (catalog columns: SF ``Id, FirstName, LastName, Name, Email,
    IsActive``; HS ``id, email, firstName, lastName, archived``; plus ``_deleted``). Deleted
    users do not exist. HS -> SF maps to the one *active* user with the owner's email: an
    inactive user cannot own records, so an inactive namesake (a re-hired person's old user)
    does not make the email ambiguous, while two active users do (quarantine). SF -> HS maps a
    user (active or not: OWN-5 copies whoever owns the record) to the one non-archived HubSpot
    owner with that email; two such owners are ambiguous (quarantine).
    """
    users = _users_frame(sf_user)
    owners = _owners_frame(hs_owner)

    # HS -> SF: active users per email.
    active = users[users["active"] & users["email"].notna()]
    active_count = active.groupby("email").size()
    inactive_emails = set(users.loc[~users["active"] & users["email"].notna(), "email"])
    unique_active = active[active["email"].map(active_count) == 1].set_index("email")
    owners["sf_user_id"] = owners["email"].map(unique_active["sf_user_id"])
    owners["sf_name"] = owners["email"].map(unique_active["name"])
    owners["name_matches"] = (owners["name"].notna() & (owners["name"] == owners["sf_name"])).astype(bool)
    owners["eligible_own1"] = owners["sf_user_id"].notna() & owners["name_matches"]
    n_active = owners["email"].map(active_count).fillna(0).astype(int)
    owners["problem"] = _email_problems(
        owners["email"],
        n_active,
        who="HubSpot owner",
        other="Salesforce user",
        many="active Salesforce users",
    )
    inactive = owners["email"].notna() & (n_active == 0) & owners["email"].isin(inactive_emails)
    owners.loc[inactive, "problem"] = (
        "the Salesforce user with email " + owners.loc[inactive, "email"] + (" is inactive")
    )
    ambiguous_sf = n_active > 1

    # SF -> HS: non-archived owners per email.
    live_owners = owners[~owners["archived"] & owners["email"].notna()]
    owner_count = live_owners.groupby("email").size()
    unique_owner = live_owners[live_owners["email"].map(owner_count) == 1].set_index("email")
    users["hs_owner_id"] = users["email"].map(unique_owner["hs_owner_id"])
    n_owners = users["email"].map(owner_count).fillna(0).astype(int)
    users["problem"] = _email_problems(
        users["email"], n_owners, who="Salesforce user", other="HubSpot owner", many="HubSpot owners"
    )
    ambiguous_hs = n_owners > 1

    quarantine = _ambiguity_rows(
        owners=owners,
        active=active,
        ambiguous_sf=ambiguous_sf,
        users=users,
        live_owners=live_owners,
        ambiguous_hs=ambiguous_hs,
    )

    integration_email = integration_user_email.strip().lower()
    integration = active[active["email"] == integration_email]
    integration_id: str | None = None
    integration_problem: str | None = None
    if len(integration) == 1:
        integration_id = str(integration["sf_user_id"].iloc[0])
    elif integration.empty:
        integration_problem = f"integration_user_email {integration_email} is not an active Salesforce user"
    else:
        integration_problem = (
            f"integration_user_email {integration_email} matches {len(integration)} active Salesforce users"
        )

    return OwnerMap(
        hs_owners=owners.set_index("hs_owner_id")[
            ["email", "archived", "sf_user_id", "name_matches", "eligible_own1", "problem"]
        ],
        sf_users=users.set_index("sf_user_id")[["email", "active", "hs_owner_id", "problem"]],
        integration_user_id=integration_id,
        integration_user_email=integration_email,
        integration_problem=integration_problem,
        quarantine=quarantine,
    )


def _email_problems(emails: pd.Series, matches: pd.Series, *, who: str, other: str, many: str) -> pd.Series:
    """Why each record maps to no record on the other side by email (OWN-1/OWN-5), else NA:
    it has no valid email, no ``other`` has it, or ``matches`` (per record) says several do."""
    problem = pd.Series(pd.NA, index=emails.index, dtype=object)
    problem.loc[emails.isna()] = f"{who} has no valid email"
    unmatched = emails.notna() & (matches == 0)
    problem.loc[unmatched] = f"no {other} has email " + emails.loc[unmatched]
    ambiguous = matches > 1
    problem.loc[ambiguous] = (
        "email " + emails.loc[ambiguous] + " matches " + matches[ambiguous].astype("str") + f" {many}"
    )
    return problem


def _ambiguity_rows(
    *,
    owners: pd.DataFrame,
    active: pd.DataFrame,
    ambiguous_sf: pd.Series,
    users: pd.DataFrame,
    live_owners: pd.DataFrame,
    ambiguous_hs: pd.Series,
) -> pd.DataFrame:
    """Quarantine rows for emails that map to several records on the other side (OWN-1/OWN-5)."""
    candidates_sf = active.groupby("email")["sf_user_id"].agg(sorted)
    bad_owners = owners[ambiguous_sf]
    rows_sf = plan_rows(
        count=len(bad_owners),
        target=Target.SALESFORCE,
        object="User",
        action=Action.QUARANTINE,
        rules=["OWN-1", "OWN-5"],
        source_id=bad_owners["hs_owner_id"],
        fields=[{"Email": e, "candidate_user_ids": list(candidates_sf[e])} for e in bad_owners["email"]],
        reason=(
            "OWN-1: HubSpot owner "
            + bad_owners["hs_owner_id"]
            + " email "
            + bad_owners["email"]
            + " matches several active Salesforce users ("
            + bad_owners["email"].map(lambda e: ", ".join(candidates_sf[e]))
            + "); owner not mapped until only one remains"
        ),
    )
    candidates_hs = live_owners.groupby("email")["hs_owner_id"].agg(sorted)
    bad_users = users[ambiguous_hs]
    rows_hs = plan_rows(
        count=len(bad_users),
        target=Target.SALESFORCE,
        object="User",
        action=Action.QUARANTINE,
        rules=["OWN-5"],
        target_id=bad_users["sf_user_id"],
        fields=[{"Email": e, "candidate_owner_ids": list(candidates_hs[e])} for e in bad_users["email"]],
        reason=(
            "OWN-5: Salesforce user "
            + bad_users["sf_user_id"]
            + " email "
            + bad_users["email"]
            + " matches several HubSpot owners ("
            + bad_users["email"].map(lambda e: ", ".join(candidates_hs[e]))
            + "); owner not mapped until only one remains"
        ),
    )
    return pd.concat([rows_sf, rows_hs], ignore_index=True)


def owner_for_new_sf_record(
    hubspot_owner_ids: pd.Series, sf_object: NewRecordObject, owners: OwnerMap
) -> pd.DataFrame:
    """OWN-1/OWN-2/OWN-3: the owner of SF records about to be created from HubSpot records.

    ``hubspot_owner_ids``: the HubSpot records' ``hubspot_owner_id`` (NA = unassigned), one
    entry per record to create; ``sf_object``: what is created (contact -> ``Lead`` or
    ``Contact``, company -> ``Account``, deal -> ``Opportunity``).

    Returns a frame with the input's index and :data:`NEW_OWNER_COLUMNS`:

    * ``OwnerId`` (str or NA): write it as the new record's ``OwnerId`` when present.
    * ``use_assignment_rule`` (bool): Lead only. True = let SF's active lead assignment rule
      decide (OWN-2/OWN-3): the row carries ``_use_assignment_rule: True`` and, when the
      integration user is known, ``OwnerId`` = integration user, which the rule overrides when
      one is active and which SF keeps otherwise (OWN-3's "assignment rules first"). False =
      the owner is fixed (OWN-1); the loader must send ``Sforce-Auto-Assign: FALSE`` because
      Salesforce REST applies the active rule by default.
    * ``owner_rule``: ``OWN-1`` (mapped owner), ``OWN-2`` (owner that does not qualify) or
      ``OWN-3`` (no owner).
    * ``quarantine_reason`` (str or NA): Account/Contact/Opportunity needing the integration
      user when ``integration_user_email`` is not exactly one active SF user; quarantine the
      record with this reason instead of creating it.
    """
    ids = _ids(hubspot_owner_ids)
    mapped = owners.own1_owner(ids)
    is_mapped = mapped.notna()
    rule = pd.Series("OWN-3", index=ids.index, dtype=object)
    rule[ids.notna()] = "OWN-2"
    rule[is_mapped] = "OWN-1"
    integration = owners.integration_user_id
    result = pd.DataFrame(index=ids.index)
    if integration is not None:
        result["OwnerId"] = mapped.fillna(integration).astype(object)
    else:
        result["OwnerId"] = mapped.astype(object)
    result["use_assignment_rule"] = (~is_mapped) if sf_object == "Lead" else False
    result["use_assignment_rule"] = result["use_assignment_rule"].astype(bool)
    result["owner_rule"] = rule
    reason = pd.Series(pd.NA, index=ids.index, dtype=object)
    if integration is None and sf_object != "Lead":
        fallback = ~is_mapped
        reason[fallback] = (
            rule[fallback]
            + f": a new {sf_object} needs an owner and falls back to the integration user, but "
            + str(owners.integration_problem)
        )
    result["quarantine_reason"] = reason
    result["OwnerId"] = result["OwnerId"].where(result["OwnerId"].notna(), None)
    return result[list(NEW_OWNER_COLUMNS)]


def new_record_owner_fields(decisions: pd.DataFrame, sf_object: NewRecordObject) -> dict[str, pd.Series]:
    """Field columns to merge into create rows from :func:`owner_for_new_sf_record`'s result:
    ``OwnerId`` always, ``_use_assignment_rule`` for Leads (see :data:`ASSIGNMENT_RULE_FIELD`)."""
    out = {"OwnerId": decisions["OwnerId"]}
    if sf_object == "Lead":
        out[ASSIGNMENT_RULE_FIELD] = decisions["use_assignment_rule"].astype(object)
    return out


def owner_at_first_link(sf_owner_ids: pd.Series, hs_owner_ids: pd.Series, owners: OwnerMap) -> pd.DataFrame:
    """OWN-4: owners when a HubSpot record first links to an *existing* SF record.

    Inputs are aligned Series for the pairs being linked: the SF record's ``OwnerId`` and the
    HubSpot record's current ``hubspot_owner_id``. Returns :data:`LINK_OWNER_COLUMNS`, same index:

    * SF owner active: it is kept (nothing written to SF; no assignment rule runs), and
      ``hubspot_owner_id`` is the HubSpot owner it maps to by email when that differs from the
      current one; when it maps to no HubSpot owner, ``skip_reason`` says so (HubSpot's owner
      is left unchanged and the run reports it).
    * SF owner inactive or missing (OWN-4 does not protect it): if the HubSpot owner maps to an
      active SF user, ``OwnerId`` is that user, so the pair does not start out owned by
      someone who cannot own records; otherwise nothing is written.
    * ``owner_rule`` is ``OWN-4`` on every row.
    """
    sf_ids = _ids(sf_owner_ids)
    hs_ids = _ids(hs_owner_ids).reindex(sf_ids.index)
    active = owners.is_active(sf_ids)
    to_hs = owners.to_hubspot(sf_ids)
    result = pd.DataFrame(index=sf_ids.index)
    write_hs = active & to_hs.notna() & (to_hs != hs_ids).fillna(True).astype(bool)
    result["hubspot_owner_id"] = to_hs.where(write_hs).astype(object)
    to_sf = owners.to_salesforce(hs_ids)
    write_sf = ~active & to_sf.notna() & (to_sf != sf_ids).fillna(True).astype(bool)
    result["OwnerId"] = to_sf.where(write_sf).astype(object)
    result["owner_rule"] = "OWN-4"
    why = owners.why_not_to_hubspot(sf_ids)
    unmapped = active & to_hs.isna()
    result["skip_reason"] = (
        (
            "OWN-4: Salesforce owner "
            + sf_ids
            + " is kept, but "
            + why.fillna("")
            + "; HubSpot owner not written"
        )
        .where(unmapped)
        .astype(object)
    )
    for name in ("hubspot_owner_id", "OwnerId", "skip_reason"):
        result[name] = result[name].where(result[name].notna(), None)
    return result[list(LINK_OWNER_COLUMNS)]


def unmapped_owner_skips(
    *,
    target: Target,
    object: str,
    target_ids: pd.Series,
    source_ids: pd.Series,
    owner_values: pd.Series,
    owners: OwnerMap,
    rule: str = "OWN-5",
) -> pd.DataFrame:
    """OWN-5: ``skip`` plan rows for owner values that cannot be written to ``target``.

    ``owner_values`` are the *source* side's owner ids (HubSpot owner ids when ``target`` is
    ``salesforce``, SF user ids when ``target`` is ``hubspot``), aligned with ``target_ids`` (the
    record on the target) and ``source_ids`` (the record they come from). Rows are produced only
    for values that are present and do not translate; each says which owner and why, under
    ``rules = [rule]``. Use it with :meth:`OwnerMap.to_salesforce` / :meth:`OwnerMap.to_hubspot`:
    translated values are written like any two-way field, untranslatable ones are reported here.
    """
    values = _ids(owner_values)
    if target == "salesforce":
        why = owners.why_not_to_salesforce(values)
        side = "HubSpot owner"
    else:
        why = owners.why_not_to_hubspot(values)
        side = "Salesforce owner"
    bad = values.notna() & why.notna()
    reason = f"{rule}: {side} " + values[bad] + " not written: " + why[bad]
    return plan_rows(
        count=int(bad.sum()),
        target=target,
        object=object,
        action=Action.SKIP,
        rules=[rule],
        source_id=as_text(source_ids)[bad],
        target_id=as_text(target_ids)[bad],
        reason=reason,
    )
