"""The rule stages, the tables each writes and reads: the one declaration the DAG is wired from.

Kept free of pandas and of the rules themselves, so DAG files can import it at parse time:
``crm_sync``'s rule tasks run after the stages whose tables they read (:func:`upstream`), and
the rule tasks read exactly :data:`STAGE_NEEDS` of their stage.
"""

from __future__ import annotations

STAGES: tuple[str, ...] = (
    "match_contacts",
    "assign_owners",
    "dedup_accounts",
    "name_pipelines",
    "plan_deals",
    "compute_rollups",
    "build_plan",
)

#: Tables each stage returns (persisted under these names, replacing the run's own rows).
STAGE_OUTPUTS: dict[str, tuple[str, ...]] = {
    "match_contacts": ("rule_contact_pairs", "rule_contact_qualifies", "rule_plan_contacts"),
    "assign_owners": ("rule_owner_hs", "rule_owner_sf", "rule_owner_meta", "rule_plan_owners"),
    "dedup_accounts": (
        "rule_account_groups",
        "rule_possible_duplicates",
        "rule_account_pairs",
        "rule_plan_accounts",
    ),
    "name_pipelines": ("rule_pipelines", "rule_pipeline_stages", "rule_plan_pipelines"),
    "plan_deals": (
        "rule_deal_state",
        "rule_deal_contacts",
        "rule_cleared_links",
        "rule_currency",
        "rule_deal_snapshot",
        "rule_deal_conflicts",
        "rule_association_snapshot",  # deal_contacts.PLANNED_ASSOCIATION_SNAPSHOT_TABLE
        "rule_plan_deals",
    ),
    "compute_rollups": (
        "rule_rollups",
        "rule_rollup_differences",
        "rule_currency_flags",
        "rule_lifecycle",
        "rule_plan_rollups",
    ),
    "build_plan": ("rule_snapshot", "rule_conflicts", "rule_plan"),
}
#: Tables of earlier stages each stage reads.
STAGE_NEEDS: dict[str, tuple[str, ...]] = {
    "match_contacts": (),
    "assign_owners": (),
    "dedup_accounts": ("rule_contact_pairs", "rule_contact_qualifies", *STAGE_OUTPUTS["assign_owners"]),
    "name_pipelines": (),
    "plan_deals": (
        *STAGE_OUTPUTS["assign_owners"],
        "rule_contact_pairs",
        "rule_account_pairs",
        "rule_pipelines",
        "rule_pipeline_stages",
    ),
    "compute_rollups": ("rule_deal_state", "rule_deal_contacts", "rule_contact_pairs", "rule_account_pairs"),
    # Everything: the rows of every stage, the pairs to merge, and the side tables it reports.
    "build_plan": tuple(t for s in STAGES[:-1] for t in STAGE_OUTPUTS[s]),
}


def upstream(stage: str) -> tuple[str, ...]:
    """The stages whose tables ``stage`` reads (an empty tuple: it reads only staged records)."""
    needs = set(STAGE_NEEDS[stage])
    return tuple(s for s in STAGES if s != stage and needs & set(STAGE_OUTPUTS[s]))
