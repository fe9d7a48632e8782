"""A backfill chunk's neighbourhood plans exactly what the whole of staging plans for it.

The chunk plans only the records around its window's Opportunities (crm_sync.backfill.focus);
that is right only if, for every record in the neighbourhood, the rules decide the same as they
do over everything, and the chunk plans nothing the full plan does not.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from crm_sync.backfill.focus import (
    KEY_VIEW,
    WHOLE_ORG_STAGES,
    focus_inputs,
    neighbourhood,
    whole_org_inputs,
)
from crm_sync.plan import PLAN_COLUMNS
from crm_sync.rules.inputs import RuleInputs
from crm_sync.rules.normalize import as_text
from crm_sync.rules.pipeline import STAGES, build_plan, run_stage

from tests.unit.rules.deal_world import config, world


def _lines(plan: pd.DataFrame) -> set[str]:
    cols = [c for c in PLAN_COLUMNS if c != "run_id"]
    return {json.dumps({c: r[c] for c in cols}, sort_keys=True, default=str) for r in plan.to_dict("records")}


@pytest.fixture(scope="module")
def full() -> tuple[RuleInputs, set[str]]:
    inputs = world()
    return inputs, _lines(build_plan(inputs, config(), "run-1").plan)


def _chunk_plan(whole: RuleInputs, opportunities: list[str]) -> pd.DataFrame:
    """The stages as a chunk runs them: the whole-org ones on everything, the rest focused."""
    focused, _ = focus_inputs(whole, {"sf_opportunity": opportunities})
    whole = whole_org_inputs(whole)
    tables: dict[str, pd.DataFrame] = {}
    for stage in STAGES:
        tables.update(
            run_stage(stage, whole if stage in WHOLE_ORG_STAGES else focused, config(), tables, "run-1")
        )
    return tables["rule_plan"]


def _opportunities(inputs: RuleInputs) -> list[str]:
    return sorted(as_text(inputs.sf_opportunity["Id"]).dropna())


def test_every_opportunity_s_neighbourhood_plans_a_subset_of_the_full_plan(
    full: tuple[RuleInputs, set[str]],
) -> None:
    inputs, whole = full
    for opp in _opportunities(inputs):
        extra = _lines(_chunk_plan(inputs, [opp])) - whole
        assert not extra, f"the neighbourhood of {opp} plans rows the full plan has not: {sorted(extra)[:3]}"


def test_each_neighbourhood_plans_every_row_the_full_plan_has_for_its_records(
    full: tuple[RuleInputs, set[str]],
) -> None:
    inputs, whole = full
    for opp in _opportunities(inputs):
        ids = set().union(*neighbourhood(inputs, {"sf_opportunity": [opp]}).ids.values())
        mine = {
            line for line in whole if {json.loads(line)["source_id"], json.loads(line)["target_id"]} & ids
        }
        missing = mine - _lines(_chunk_plan(inputs, [opp]))
        assert not missing, f"the neighbourhood of {opp} misses rows of the full plan: {sorted(missing)[:3]}"


def test_the_closure_follows_accounts_contacts_links_and_deals() -> None:
    inputs = world()
    opps = inputs.sf_opportunity.dropna(subset=["AccountId"])
    opp = str(opps["Id"].iloc[0])
    account = str(opps["AccountId"].iloc[0])
    found = neighbourhood(inputs, {"sf_opportunity": [opp]})
    assert account in found.ids["sf_account"]
    links = inputs.links
    for row in links[links["sf_id"].isin(found.ids["sf_opportunity"])].itertuples():
        assert row.hs_id in found.ids["hs_deal"]
    assert found.rounds >= 2
    far = neighbourhood(inputs, {"sf_opportunity": []})
    assert not any(far.ids.values()), "no seed, no neighbourhood"


def _key_view(inputs: RuleInputs) -> RuleInputs:
    """What a chunk reads of staging to find its neighbourhood (focus.KEY_VIEW), in memory."""
    view = RuleInputs(now=inputs.now)
    for attribute in vars(inputs):
        frame = getattr(inputs, attribute)
        if attribute == "now" or attribute in KEY_VIEW.skip:
            continue
        columns = KEY_VIEW.columns.get(attribute)
        setattr(view, attribute, frame if columns is None else frame[[c for c in columns if c in frame]])
    return view


def test_the_key_columns_alone_find_the_same_neighbourhood_and_whole_org_inputs(
    full: tuple[RuleInputs, set[str]],
) -> None:
    """A chunk finds its neighbourhood in staging's key columns only; a column the closure reads
    but KEY_VIEW leaves out would shrink a neighbourhood here."""
    inputs, _ = full
    keys = _key_view(inputs)
    for opp in _opportunities(inputs):
        seeds = {"sf_opportunity": [opp]}
        assert neighbourhood(keys, seeds).ids == neighbourhood(inputs, seeds).ids, opp
    from_keys = run_stage("name_pipelines", whole_org_inputs(keys), config(), {}, "run-1")
    from_all = run_stage("name_pipelines", whole_org_inputs(inputs), config(), {}, "run-1")
    assert from_keys.keys() == from_all.keys()
    for name, frame in from_all.items():
        pd.testing.assert_frame_equal(from_keys[name], frame, obj=name)
