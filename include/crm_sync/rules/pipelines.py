"""DEAL-2: Opportunity record types <-> HubSpot deal pipelines, and their stages.

Each Opportunity record type syncs to a HubSpot deal pipeline labelled ``Salesforce - <record
type name>``; an org with a single record type or none gets one pipeline labelled ``Salesforce -
Standard pipeline``. Every pipeline gets the stages of the Salesforce stage picklist
(``OpportunityStage``: order, probability, closed, won).

The stable key (the brief asks to decide and document it). A pipeline is identified by its
**pipeline key**: the record type ``Id`` (multi-record-type org) or :data:`STANDARD_KEY`
(single/no record type, and Opportunities without a record type in a multi-record-type org).
The key <-> HubSpot pipeline id pair lives in the staging link table like every other link:
``links.object == "RecordType"`` (:data:`PIPELINE_LINK_OBJECT`), ``sf_id`` = key, ``hs_id`` =
pipeline id. So a record type rename finds its pipeline by key and renames it (an ``update`` of
its label), rather than creating a second pipeline. A key without a link adopts an existing,
unlinked pipeline with the desired label (a ``link`` row: pipelines created by an earlier run
whose link was lost, or made by hand) before anything is created; the loader stores the link
for ``link`` and ``create`` rows of object ``pipelines`` whose ``source_id`` is a key.

Stages are identified within their pipeline by label (case- and whitespace-insensitive): the
Salesforce ``MasterLabel`` (``ApiName`` when blank). A deal's ``dealstage`` maps to the
Salesforce ``StageName`` (the stage ``ApiName``) through that label.

Records created in the same plan are referenced with :func:`~crm_sync.rules.merge.created_ref`:
``@pipelines:<key>`` is the pipeline created from key ``<key>``; ``@pipelines:<key>/<ApiName>``
its stage for ``ApiName`` (the stage labelled ``stage_label`` in :data:`STAGE_COLUMNS`).

Plan rows (target ``hubspot``, object ``pipelines``, rules ``["DEAL-2"]``):

* ``create`` a pipeline: ``source_id`` = key, ``fields`` = ``{"label", "displayOrder", "stages":
  [{"label", "displayOrder", "metadata": {"probability", "isClosed"}}]}`` (HubSpot's
  ``PipelineInput``: a pipeline is created with its stages);
* ``create`` a missing stage of an existing pipeline: ``source_id`` = ``<key>/<ApiName>``,
  ``fields`` = ``{"pipelineId", "label", "displayOrder", "metadata"}`` (``PipelineStageInput`` +
  the pipeline to add it to);
* ``update`` a pipeline's label (record type rename): ``target_id`` = pipeline id, ``fields`` =
  ``{"label"}``;
* ``link`` an existing pipeline to a key: ``source_id`` = key, ``target_id`` = pipeline id.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crm_sync.plan import Action, Target, concat_plans, created_ref, created_refs, empty_plan, plan_rows
from crm_sync.rules.inputs import RuleInputs
from crm_sync.rules.normalize import as_bool, as_text, column
from crm_sync.rules.staged import alive, link_pairs

STANDARD_KEY = "__standard__"
STANDARD_LABEL = "Salesforce - Standard pipeline"
LABEL_PREFIX = "Salesforce - "
PIPELINE_LINK_OBJECT = "RecordType"
RULES: tuple[str, ...] = ("DEAL-2",)

#: The pipeline map (one row per synced pipeline); persisted as ``rule_pipelines``.
PIPELINE_COLUMNS: tuple[str, ...] = (
    "pipeline_key",  # record type Id, or STANDARD_KEY
    "record_type_id",  # the record type Id (None for the standard pipeline)
    "label",  # desired HubSpot label
    "hs_pipeline_id",  # existing pipeline id, or "@pipelines:<key>" when created by this plan
    "status",  # linked | inherited (a retired key's pipeline) | adopted (by label) | created
)
#: The stage map (one row per synced pipeline and Salesforce stage); persisted as
#: ``rule_pipeline_stages``.
STAGE_COLUMNS: tuple[str, ...] = (
    "pipeline_key",
    "hs_pipeline_id",
    "stage_api_name",  # Salesforce StageName value
    "stage_label",
    "hs_stage_id",  # existing stage id, or "@pipelines:<key>/<ApiName>"
    "display_order",
    "probability",  # 0..1 as HubSpot stores it
    "is_closed",
    "is_won",
)


@dataclass
class PipelinesResult:
    """Output of :func:`name_pipelines`: the pipeline map, the stage map and the plan rows."""

    pipelines: pd.DataFrame
    stages: pd.DataFrame
    plan: pd.DataFrame


def _label_key(values: pd.Series) -> pd.Series:
    return as_text(values).str.casefold().str.replace(r"\s+", " ", regex=True)


def opportunity_record_types(sf_record_type: pd.DataFrame, sf_opportunity: pd.DataFrame) -> pd.DataFrame:
    """DEAL-2: the Opportunity record types that get a pipeline: ``record_type_id, name``.

    Active Opportunity record types, plus inactive ones still used by a live Opportunity (its
    deal needs a pipeline). Sorted by name, then Id, so display order is stable.
    """
    rt = sf_record_type
    if rt.empty:
        return pd.DataFrame({"record_type_id": pd.Series(dtype="str"), "name": pd.Series(dtype="str")})
    sobject = as_text(column(rt, "SobjectType"))
    is_opp = sobject.isna() | (sobject == "Opportunity")
    active_col = column(rt, "IsActive")
    active = as_bool(active_col) | active_col.isna()
    ids = as_text(column(rt, "Id"))
    used = ids.isin(set(as_text(column(sf_opportunity, "RecordTypeId"))[alive(sf_opportunity)].dropna()))
    keep = alive(rt) & is_opp & (active | used) & ids.notna()
    frame = pd.DataFrame({"record_type_id": ids[keep], "name": as_text(column(rt, "Name"))[keep]})
    frame["name"] = frame["name"].fillna(frame["record_type_id"])
    return frame.sort_values(["name", "record_type_id"], kind="stable").reset_index(drop=True)


def pipeline_keys(opportunities: pd.DataFrame, pipelines: pd.DataFrame) -> pd.Series:
    """DEAL-2: each Opportunity's pipeline key (aligned with ``opportunities``).

    With one pipeline per record type, an Opportunity goes to its record type's pipeline; with
    the single standard pipeline (or a record type without one) to :data:`STANDARD_KEY`.
    """
    rt = as_text(column(opportunities, "RecordTypeId"))
    keyed = set(as_text(pipelines["record_type_id"]).dropna()) if not pipelines.empty else set()
    out = rt.where(rt.isin(keyed), STANDARD_KEY)
    return out.astype(object)


def _stages(sf_opportunity_stage: pd.DataFrame) -> pd.DataFrame:
    """Active Salesforce stages in picklist order with HubSpot metadata (DEAL-2)."""
    st = sf_opportunity_stage
    cols = ["stage_api_name", "stage_label", "display_order", "probability", "is_closed", "is_won"]
    if st.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    active_col = column(st, "IsActive")
    keep = alive(st) & (as_bool(active_col) | active_col.isna()) & as_text(column(st, "ApiName")).notna()
    st = st[keep]
    api = as_text(column(st, "ApiName"))
    label = as_text(column(st, "MasterLabel")).fillna(api)
    order = pd.to_numeric(column(st, "SortOrder"), errors="coerce")
    is_closed = as_bool(column(st, "IsClosed"))
    is_won = as_bool(column(st, "IsWon")) & is_closed
    prob = pd.to_numeric(column(st, "DefaultProbability"), errors="coerce").fillna(0.0) / 100.0
    # HubSpot's convention: closed won is probability 1, closed lost 0 (its own won test).
    prob = prob.where(~is_closed, is_won.astype(float))
    frame = pd.DataFrame(
        {
            "stage_api_name": api,
            "stage_label": label,
            "sort": order.fillna(np.inf),
            "probability": prob.clip(0.0, 1.0).round(4),
            "is_closed": is_closed,
            "is_won": is_won,
        }
    ).drop_duplicates("stage_api_name")
    frame = frame.sort_values(["sort", "stage_api_name"], kind="stable").reset_index(drop=True)
    frame["display_order"] = np.arange(len(frame), dtype=np.int64)
    return frame[cols]


def _metadata(probability: float, is_closed: bool) -> dict[str, str]:
    return {
        "probability": f"{probability:g}" if probability not in (0.0, 1.0) else f"{probability:.1f}",
        "isClosed": "true" if is_closed else "false",
    }


def name_pipelines(inputs: RuleInputs) -> PipelinesResult:
    """DEAL-2: the synced pipelines and stages, and the plan rows that create/rename/link them.

    See the module docstring for the stable key. Pipelines: a key's linked pipeline (when it
    still exists, i.e. is not archived) is kept and renamed if its label differs; otherwise it
    inherits the pipeline of a key no longer wanted that it stood for (:func:`_heirs`: the
    standard pipeline <-> the record type, when record types are added or removed), renamed,
    with a ``link`` row so the loader stores the new key; otherwise an unlinked pipeline with
    the desired label is adopted; otherwise one is created with all stages.
    Stages: every active Salesforce stage missing (by label) from an existing synced
    pipeline is created. Nothing is deleted: pipelines and stages of retired record types and
    stages stay in HubSpot, only unsynced.
    """
    sf_opportunity = inputs.sf_opportunity
    hs_pipeline = inputs.hs_pipeline
    record_types = opportunity_record_types(inputs.sf_record_type, sf_opportunity)
    opps = sf_opportunity[alive(sf_opportunity)] if not sf_opportunity.empty else sf_opportunity
    if len(record_types) <= 1:
        desired = pd.DataFrame(
            {"pipeline_key": [STANDARD_KEY], "record_type_id": [None], "label": [STANDARD_LABEL]}
        )
    else:
        desired = pd.DataFrame(
            {
                "pipeline_key": record_types["record_type_id"].astype(object),
                "record_type_id": record_types["record_type_id"].astype(object),
                "label": (LABEL_PREFIX + record_types["name"]).astype(object),
            }
        )
        known = set(record_types["record_type_id"])
        rt_of_opps = as_text(column(opps, "RecordTypeId"))
        if bool((~rt_of_opps.isin(known)).any()):
            standard = pd.DataFrame(
                {"pipeline_key": [STANDARD_KEY], "record_type_id": [None], "label": [STANDARD_LABEL]}
            )
            desired = pd.concat([desired, standard], ignore_index=True)

    existing = pd.DataFrame(
        {
            "hs_pipeline_id": as_text(column(hs_pipeline, "id")),
            "hs_label": as_text(column(hs_pipeline, "label")),
            "displayOrder": pd.to_numeric(column(hs_pipeline, "displayOrder"), errors="coerce"),
        }
    )
    existing = existing[alive(hs_pipeline).to_numpy() & existing["hs_pipeline_id"].notna().to_numpy()]
    live_ids = set(existing["hs_pipeline_id"])
    linked = link_pairs(inputs.links, [PIPELINE_LINK_OBJECT])
    linked = linked[linked["hs_id"].isin(live_ids)].drop_duplicates("sf_id").drop_duplicates("hs_id")
    key_to_id = dict(zip(linked["sf_id"], linked["hs_id"], strict=True))
    taken = set(linked["hs_id"])
    label_to_id: dict[str, str] = {}
    for pid, lab in zip(existing["hs_pipeline_id"], _label_key(existing["hs_label"]), strict=True):
        if isinstance(lab, str) and pid not in taken:
            label_to_id.setdefault(lab, pid)
    current_label = dict(zip(existing["hs_pipeline_id"], existing["hs_label"], strict=True))

    # One entry per desired pipeline (a handful): plain Python is clearer than frames here.
    heirs = _heirs(desired, key_to_id, opps)
    ids: list[str] = []
    status: list[str] = []
    desired_keys = _label_key(desired["label"]).tolist()
    for key, lab in zip(desired["pipeline_key"], desired_keys, strict=True):
        if key in key_to_id:
            ids.append(key_to_id[key])
            status.append("linked")
        elif key in heirs:
            ids.append(heirs[key])
            status.append("inherited")
        elif lab in label_to_id:
            ids.append(label_to_id.pop(lab))
            status.append("adopted")
        else:
            ids.append(created_ref("pipelines", key))
            status.append("created")
    desired["hs_pipeline_id"] = ids
    desired["status"] = status
    pipelines = desired[list(PIPELINE_COLUMNS)].reset_index(drop=True)

    stages = _stages(inputs.sf_opportunity_stage)
    stage_map = _stage_map(pipelines, stages, inputs.hs_pipeline_stage)
    plan = _plan(pipelines, stage_map, current_label, existing)
    return PipelinesResult(pipelines=pipelines, stages=stage_map, plan=plan)


def _heirs(desired: pd.DataFrame, key_to_id: dict[str, str], opps: pd.DataFrame) -> dict[str, str]:
    """DEAL-2: pipelines whose key is no longer desired, handed to the key they stood for.

    Going from one record type to two, ``Salesforce - Standard pipeline`` stood for the record
    type its Opportunities carry (the most common one; ties and no Opportunities: the lowest
    record type Id, the oldest): that record type inherits it, renamed, and its deals stay.
    Going back to one record type (or none), the standard pipeline inherits the pipeline of the
    record type most live Opportunities carry (ties: the lowest Id). Returns
    desired key -> inherited pipeline id, for desired keys without a pipeline of their own.
    """
    wanted = list(desired["pipeline_key"])
    orphans = [k for k in wanted if k not in key_to_id]
    stale = {k: pid for k, pid in key_to_id.items() if k not in set(wanted)}
    if not orphans or not stale:
        return {}
    counts = as_text(column(opps, "RecordTypeId")).value_counts()
    heirs: dict[str, str] = {}
    if STANDARD_KEY in stale:
        rts = [k for k in orphans if k != STANDARD_KEY]
        if rts:
            best = sorted(rts, key=lambda k: (-int(counts.get(k, 0)), k))[0]
            heirs[best] = stale.pop(STANDARD_KEY)
    if STANDARD_KEY in orphans and stale:
        best = sorted(stale, key=lambda k: (-int(counts.get(k, 0)), k))[0]
        heirs[STANDARD_KEY] = stale.pop(best)
    return heirs


def _stage_map(
    pipelines: pd.DataFrame, stages: pd.DataFrame, hs_pipeline_stage: pd.DataFrame
) -> pd.DataFrame:
    if stages.empty or pipelines.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in STAGE_COLUMNS})
    grid = pipelines[["pipeline_key", "hs_pipeline_id"]].merge(stages, how="cross")
    hs = pd.DataFrame(
        {
            "hs_pipeline_id": as_text(column(hs_pipeline_stage, "pipeline_id")),
            "hs_stage_id": as_text(column(hs_pipeline_stage, "id")),
            "label_key": _label_key(column(hs_pipeline_stage, "label")),
        }
    )
    hs = hs[alive(hs_pipeline_stage).to_numpy() & hs["hs_stage_id"].notna().to_numpy()]
    hs = hs.drop_duplicates(["hs_pipeline_id", "label_key"])
    grid["label_key"] = _label_key(grid["stage_label"])
    grid = grid.merge(hs, on=["hs_pipeline_id", "label_key"], how="left")
    missing = grid["hs_stage_id"].isna()
    refs = created_refs(
        "pipelines", grid["pipeline_key"].astype("str") + "/" + grid["stage_api_name"].astype("str")
    )
    grid["hs_stage_id"] = grid["hs_stage_id"].astype(object).where(~missing, refs)
    return grid[list(STAGE_COLUMNS)].reset_index(drop=True)


def _plan(
    pipelines: pd.DataFrame,
    stage_map: pd.DataFrame,
    current_label: dict[str, str],
    existing: pd.DataFrame,
) -> pd.DataFrame:
    """DEAL-2's pipeline rows: create the missing pipelines (with their stages), link the ones
    adopted or inherited, rename the ones whose label changed, and add stages they lack."""
    next_order = int(existing["displayOrder"].max()) + 1 if existing["displayOrder"].notna().any() else 0
    present = pipelines[pipelines["status"] != "created"].reset_index(drop=True)
    candidates = [
        _create_rows(
            pipelines[pipelines["status"] == "created"].reset_index(drop=True), stage_map, next_order
        ),
        _link_rows(pipelines[pipelines["status"].isin(["adopted", "inherited"])].reset_index(drop=True)),
        _rename_rows(present, current_label),
        _missing_stage_rows(present, stage_map),
    ]
    parts = [p for p in candidates if p is not None]
    return concat_plans(parts) if parts else empty_plan()


def _stage_values(stages: pd.DataFrame) -> list[dict[str, Any]]:
    """A pipeline's stages as HubSpot's pipeline create takes them."""
    return [
        {"label": lab, "displayOrder": int(order), "metadata": _metadata(float(prob), bool(closed))}
        for lab, order, prob, closed in zip(
            stages["stage_label"],
            stages["display_order"],
            stages["probability"],
            stages["is_closed"],
            strict=True,
        )
    ]


def _create_rows(created: pd.DataFrame, stage_map: pd.DataFrame, next_order: int) -> pd.DataFrame | None:
    if created.empty:
        return None
    stage_dicts = {key: _stage_values(grp) for key, grp in stage_map.groupby("pipeline_key", sort=False)}
    values = pd.DataFrame(
        {
            "label": created["label"],
            "displayOrder": np.arange(next_order, next_order + len(created)),
            "stages": pd.Series([stage_dicts.get(k, []) for k in created["pipeline_key"]], dtype=object),
        }
    )
    return plan_rows(
        target=Target.HUBSPOT,
        object="pipelines",
        action=Action.CREATE,
        values=values,
        source_id=created["pipeline_key"],
        rules=RULES,
        keep_empty=True,
    )


def _link_rows(adopted: pd.DataFrame) -> pd.DataFrame | None:
    if adopted.empty:
        return None
    return plan_rows(
        target=Target.HUBSPOT,
        object="pipelines",
        action=Action.LINK,
        values=pd.DataFrame(index=adopted.index),
        source_id=adopted["pipeline_key"],
        target_id=adopted["hs_pipeline_id"],
        rules=RULES,
        keep_empty=True,
    )


def _rename_rows(present: pd.DataFrame, current_label: dict[str, str]) -> pd.DataFrame | None:
    if present.empty:
        return None
    now_label = present["hs_pipeline_id"].map(current_label)
    renamed = (now_label != present["label"]).to_numpy(dtype=bool, na_value=True)
    if not renamed.any():
        return None
    sub = present[renamed].reset_index(drop=True)
    return plan_rows(
        target=Target.HUBSPOT,
        object="pipelines",
        action=Action.UPDATE,
        values=pd.DataFrame({"label": sub["label"]}),
        source_id=sub["pipeline_key"],
        target_id=sub["hs_pipeline_id"],
        rules=RULES,
    )


def _missing_stage_rows(present: pd.DataFrame, stage_map: pd.DataFrame) -> pd.DataFrame | None:
    """Stages an existing pipeline lacks (their map entry is still a reference to create)."""
    if present.empty:
        return None
    in_present = stage_map["pipeline_key"].isin(set(present["pipeline_key"]))
    missing = stage_map[in_present & stage_map["hs_stage_id"].astype("str").str.startswith("@")]
    missing = missing.reset_index(drop=True)
    if missing.empty:
        return None
    values = pd.DataFrame(
        {
            "pipelineId": missing["hs_pipeline_id"],
            "label": missing["stage_label"],
            "displayOrder": missing["display_order"].astype("int64"),
            "metadata": pd.Series(
                [
                    _metadata(float(p), bool(c))
                    for p, c in zip(missing["probability"], missing["is_closed"], strict=True)
                ],
                dtype=object,
            ),
        }
    )
    return plan_rows(
        target=Target.HUBSPOT,
        object="pipelines",
        action=Action.CREATE,
        values=values,
        source_id=missing["pipeline_key"].astype("str") + "/" + missing["stage_api_name"].astype("str"),
        rules=RULES,
        keep_empty=True,
    )


def stage_lookup(
    stage_map: pd.DataFrame, hs_pipeline_stage: pd.DataFrame, retired: Collection[str] = ()
) -> pd.DataFrame:
    """Every known HubSpot stage id with its pipeline and outcome: ``hs_stage_id, hs_pipeline_id,
    stage_api_name (NA outside synced pipelines), is_closed, is_won``.

    Synced stages come from the stage map (created ones by reference); stages of other pipelines
    from HubSpot's metadata, where won means closed with probability 1 (HubSpot's own test).
    Stages of ``retired`` pipelines (crm-sync pipelines of a record type no longer synced) keep
    their ``stage_api_name`` by label, as crm-sync created them, so a deal moving out of one
    to its record type's pipeline (DEAL-2) keeps its stage.
    Used to read a deal's outcome (ROLL-3..5, ROLL-7) and to map ``dealstage`` to ``StageName``.
    """
    synced = pd.DataFrame(
        {
            "hs_stage_id": as_text(stage_map["hs_stage_id"])
            if not stage_map.empty
            else pd.Series(dtype="str"),
            "hs_pipeline_id": as_text(stage_map["hs_pipeline_id"])
            if not stage_map.empty
            else pd.Series(dtype="str"),
            "stage_api_name": stage_map["stage_api_name"].astype(object) if not stage_map.empty else None,
            "is_closed": stage_map["is_closed"].astype(bool)
            if not stage_map.empty
            else pd.Series(dtype=bool),
            "is_won": stage_map["is_won"].astype(bool) if not stage_map.empty else pd.Series(dtype=bool),
        }
    )
    st = hs_pipeline_stage
    closed = as_bool(column(st, "isClosed"))
    prob = pd.to_numeric(column(st, "probability"), errors="coerce")
    other = pd.DataFrame(
        {
            "hs_stage_id": as_text(column(st, "id")),
            "hs_pipeline_id": as_text(column(st, "pipeline_id")),
            "stage_api_name": pd.Series([None] * len(st), index=st.index, dtype=object),
            "is_closed": closed,
            "is_won": closed & (prob >= 1.0).fillna(False).astype(bool),
        }
    )
    other = other[alive(st).to_numpy() & other["hs_stage_id"].notna().to_numpy()]
    if retired and not stage_map.empty:
        by_label = stage_map.assign(_label=_label_key(stage_map["stage_label"])).drop_duplicates("_label")
        api = (
            _label_key(column(st, "label"))
            .loc[other.index]
            .map(by_label.set_index("_label")["stage_api_name"])
        )
        keep = other["hs_pipeline_id"].isin(set(retired)).to_numpy(dtype=bool)
        other["stage_api_name"] = api.where(keep, None).astype(object)
    other = other[
        ~other.set_index(["hs_pipeline_id", "hs_stage_id"]).index.isin(
            synced.set_index(["hs_pipeline_id", "hs_stage_id"]).index
        )
    ]
    return pd.concat([synced, other], ignore_index=True)


__all__ = [
    "LABEL_PREFIX",
    "PIPELINE_COLUMNS",
    "PIPELINE_LINK_OBJECT",
    "STAGE_COLUMNS",
    "STANDARD_KEY",
    "STANDARD_LABEL",
    "PipelinesResult",
    "name_pipelines",
    "opportunity_record_types",
    "pipeline_keys",
    "stage_lookup",
]
