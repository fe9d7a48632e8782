"""The expectation suites of the staged objects, in code: what a record must satisfy to sync.

One suite per synced object of each CRM (SF Account, Contact, Lead, Opportunity; HS companies,
contacts, deals). Each suite is built from the catalog and from reference data staged in the
same run (users, owners, stage picklist, pipelines), so it checks exactly what staging holds:

* ``ids_not_null`` / ``ids_unique``: the source key identifies one record;
* ``email_valid``: an email address has one ``@`` and a dotted domain (CON-1 matches on it);
* ``date_parses:<field>`` / ``amount_numeric:<field>``: a business date reads as a date between
  1900 and 2200, a number as a finite number (DEAL-1 copies both);
* ``stage_in_pipeline``: an Opportunity's ``StageName`` is an active stage of the picklist; a
  deal's ``dealstage`` is a stage of its own ``pipeline`` (DEAL-2);
* ``owner_resolves``: ``OwnerId`` / ``hubspot_owner_id`` names a known user / owner (OWN-*).

:func:`prepare` turns a staged frame into the frame the suite reads (derived columns named by
each :class:`~crm_sync.quality.checks.Check`), vectorised so a million rows take seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm_sync.catalog import Stream, System, stream
from crm_sync.quality.checks import Check, flag, in_set, passes
from crm_sync.rules.normalize import as_bool, as_text, as_timestamp, column
from crm_sync.rules.staged import alive

#: An email address as CON-1 accepts it (the same shape :func:`normalize_emails` requires).
EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
#: Dates outside these years are typos or epoch accidents (1970-01-01 is inside and allowed).
EARLIEST_YEAR = 1900
LATEST_YEAR = 2200
#: Fields HubSpot calculates itself (ROLL-1..6): reported on, never a reason to hold a record back.
_CALCULATED = frozenset(
    {
        "num_associated_deals",
        "first_deal_created_date",
        "recent_deal_close_date",
        "recent_deal_amount",
        "total_revenue",
    }
)
#: Audit and cursor fields: extraction already refuses records whose cursor does not parse.
_AUDIT = frozenset(
    {
        "CreatedDate",
        "LastModifiedDate",
        "SystemModstamp",
        "createdate",
        "hs_lastmodifieddate",
        "lastmodifieddate",
    }
)


@dataclass(frozen=True)
class ObjectSpec:
    """Which staged object a suite validates and which of its fields the checks read."""

    system: System
    name: str
    email: str | None = None
    owner: str | None = None
    stage: str | None = None
    pipeline: str | None = None

    @property
    def stream(self) -> Stream:
        return stream(self.system, self.name)

    @property
    def dates(self) -> tuple[str, ...]:
        return self._typed("date", "datetime")

    @property
    def numbers(self) -> tuple[str, ...]:
        return self._typed("number")

    def _typed(self, *types: str) -> tuple[str, ...]:
        return tuple(
            f.name
            for f in self.stream.fields
            if f.type in types and f.name not in _CALCULATED and f.name not in _AUDIT
        )


#: The staged objects validated before every load, in plan order.
OBJECTS: tuple[ObjectSpec, ...] = (
    ObjectSpec("salesforce", "Account", owner="OwnerId"),
    ObjectSpec("salesforce", "Contact", email="Email", owner="OwnerId"),
    ObjectSpec("salesforce", "Lead", email="Email", owner="OwnerId"),
    ObjectSpec("salesforce", "Opportunity", owner="OwnerId", stage="StageName"),
    ObjectSpec("hubspot", "companies", owner="hubspot_owner_id"),
    ObjectSpec("hubspot", "contacts", email="email", owner="hubspot_owner_id"),
    ObjectSpec("hubspot", "deals", owner="hubspot_owner_id", stage="dealstage", pipeline="pipeline"),
)


@dataclass(frozen=True)
class References:
    """Reference data the suites check against, read from staging in the same run."""

    sf_user_ids: frozenset[str] = field(default_factory=frozenset)
    hs_owner_ids: frozenset[str] = field(default_factory=frozenset)
    sf_stage_names: frozenset[str] = field(default_factory=frozenset)
    hs_stage_keys: frozenset[str] = field(default_factory=frozenset)


def references(frames: Mapping[str, pd.DataFrame]) -> References:
    """:class:`References` from the staged ``sf_user``, ``hs_owner``, ``sf_opportunity_stage``
    and ``hs_pipeline_stage`` frames (deleted users still own records: they count)."""
    users = frames.get("sf_user", pd.DataFrame())
    owners = frames.get("hs_owner", pd.DataFrame())
    stages = frames.get("sf_opportunity_stage", pd.DataFrame())
    hs_stages = frames.get("hs_pipeline_stage", pd.DataFrame())
    active = (
        alive(stages) & as_bool(column(stages, "IsActive")) if not stages.empty else pd.Series(dtype=bool)
    )
    hs_live = alive(hs_stages) if not hs_stages.empty else pd.Series(dtype=bool)
    return References(
        sf_user_ids=_ids(column(users, "Id")),
        hs_owner_ids=_ids(column(owners, "id")),
        sf_stage_names=_ids(column(stages, "ApiName")[active]) if not stages.empty else frozenset(),
        hs_stage_keys=_ids(
            stage_keys(column(hs_stages, "pipeline_id"), column(hs_stages, "id"))[hs_live]
            if not hs_stages.empty
            else pd.Series(dtype=object)
        ),
    )


def _ids(values: pd.Series) -> frozenset[str]:
    return frozenset(as_text(values).dropna().tolist())


def stage_keys(pipeline: pd.Series, stage: pd.Series) -> pd.Series:
    """``<pipeline id>/<stage id>`` (missing when either is): a deal stage within its pipeline."""
    p = as_text(pipeline).reset_index(drop=True)
    s = as_text(stage).reset_index(drop=True)
    return (p + "/" + s).where(p.notna() & s.notna())


def suite(spec: ObjectSpec, refs: References) -> tuple[Check, ...]:
    """The checks of one staged object's suite (see the module docstring)."""
    checks = [
        Check("ids_not_null", "expect_column_values_to_not_be_null", "record_id", "the record has no id"),
        Check(
            "ids_unique", "expect_column_values_to_be_unique", "record_id", "two staged records share an id"
        ),
    ]
    if spec.email:
        checks.append(
            Check(
                "email_valid",
                "expect_column_values_to_match_regex",
                "email",
                f"{spec.email} is not a valid email address",
                regex=EMAIL_REGEX,
            )
        )
    checks += [
        passes(
            f"date_parses:{name}",
            f"date__{name}",
            f"{name} is not a date between {EARLIEST_YEAR} and {LATEST_YEAR}",
        )
        for name in spec.dates
    ]
    checks += [
        passes(f"amount_numeric:{name}", f"number__{name}", f"{name} is not a number")
        for name in spec.numbers
    ]
    if spec.stage and spec.pipeline:
        checks.append(
            in_set(
                "stage_in_pipeline",
                "stage_key",
                refs.hs_stage_keys,
                f"{spec.stage} is not a stage of the deal's {spec.pipeline} (DEAL-2)",
            )
        )
    elif spec.stage:
        checks.append(
            in_set(
                "stage_in_pipeline",
                "stage_key",
                refs.sf_stage_names,
                f"{spec.stage} is not an active stage of the Salesforce stage picklist (DEAL-2)",
            )
        )
    if spec.owner:
        known = refs.sf_user_ids if spec.system == "salesforce" else refs.hs_owner_ids
        who = "Salesforce user" if spec.system == "salesforce" else "HubSpot owner"
        checks.append(in_set("owner_resolves", "owner", known, f"{spec.owner} names no known {who}"))
    return tuple(checks)


def prepare(spec: ObjectSpec, live: pd.DataFrame) -> pd.DataFrame:
    """The frame :func:`suite` reads, one row per row of ``live`` (the staged records not deleted:
    deleted ones never sync), in the same order.

    ``record_id``, ``email``, ``owner`` and ``stage_key`` hold stripped text; ``date__*`` and
    ``number__*`` are nullable booleans (missing where the field is blank: nothing to check).
    """
    live = live.reset_index(drop=True)
    out = pd.DataFrame({"record_id": as_text(column(live, spec.stream.key)).reset_index(drop=True)})
    if spec.email:
        out["email"] = as_text(column(live, spec.email)).reset_index(drop=True)
    for name in spec.dates:
        raw = column(live, name)
        stamps = as_timestamp(raw)
        years = stamps.dt.year
        ok = stamps.notna() & (years >= EARLIEST_YEAR) & (years <= LATEST_YEAR)
        out[f"date__{name}"] = flag(ok.to_numpy(dtype=bool, na_value=False), raw.notna().to_numpy())
    for name in spec.numbers:
        raw = column(live, name)
        numbers = pd.to_numeric(raw, errors="coerce").astype("float64")
        ok = np.isfinite(numbers.to_numpy(dtype="float64", na_value=np.nan))
        out[f"number__{name}"] = flag(ok, raw.notna().to_numpy())
    if spec.stage and spec.pipeline:
        out["stage_key"] = stage_keys(column(live, spec.pipeline), column(live, spec.stage))
    elif spec.stage:
        out["stage_key"] = as_text(column(live, spec.stage)).reset_index(drop=True)
    if spec.owner:
        out["owner"] = as_text(column(live, spec.owner)).reset_index(drop=True)
    return out


def source_columns(spec: ObjectSpec, check: Check) -> tuple[str, ...]:
    """The staged fields a check reads, for the quarantine payload and the log's sample."""
    by_column = {
        "record_id": (spec.stream.key,),
        "email": (spec.email,) if spec.email else (),
        "owner": (spec.owner,) if spec.owner else (),
        "stage_key": tuple(f for f in (spec.pipeline, spec.stage) if f),
    }
    if check.column.startswith(("date__", "number__")):
        return (check.column.split("__", 1)[1],)
    return by_column.get(check.column, ())
