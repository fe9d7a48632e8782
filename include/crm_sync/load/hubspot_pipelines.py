"""Deal pipelines and stages (DEAL-2): created once, found again by label, never duplicated.

HubSpot has no upsert for pipelines and creating one is a plain POST, so a lost answer must not
lead to a blind second POST (HubSpot would refuse a duplicate label anyway, with a 409). Every
create therefore looks the pipeline up by label first (one read of all deal pipelines per
group), and after an ambiguous failure (timeout, 5xx) looks again before trying once more.

Plan rows (see ``crm_sync.rules.pipelines``):

- ``create`` with ``stages``: a pipeline with its stages. An existing pipeline of that label is
  adopted and given the stages it lacks (by label). Outcome: ``target_id`` = pipeline id,
  ``children`` = (stage label, stage id) pairs.
- ``create`` with ``pipelineId``: one stage in an existing pipeline (found by label first).
  Outcome: ``target_id`` = stage id.
- ``update``: rename (``label``) and add the ``stages`` it lacks. ``link``: nothing to write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from crm_sync.load.hubspot_retry import AmbiguousWriteError, Reply, Transport
from crm_sync.load.writer import BatchFailedError, LoadItem, WriteOutcome

log = logging.getLogger(__name__)

OBJECT_TYPE = "deals"
#: POSTs of one pipeline or stage, each after a look-up showed the earlier one did not land.
CREATE_ATTEMPTS = 3


def stage_input(raw: Mapping[str, Any], index: int) -> dict[str, Any]:
    """A ``PipelineStageInput``: label, display order and metadata as strings (HubSpot's form)."""
    metadata = {str(k): _text(v) for k, v in (raw.get("metadata") or {}).items()}
    metadata.setdefault("probability", "0.0")
    return {
        "label": str(raw["label"]),
        "displayOrder": int(raw.get("displayOrder", index)),
        "metadata": metadata,
    }


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _stage_pairs(pipeline: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(
        (str(s.get("label")), str(s.get("id"))) for s in pipeline.get("stages") or [] if not s.get("archived")
    )


def _error(item: LoadItem, reply: Reply, what: str) -> WriteOutcome:
    body = reply.body if isinstance(reply.body, Mapping) else {}
    category = str(body.get("category") or f"HTTP_{reply.status}")
    return WriteOutcome(
        seq=item.seq,
        target_id=item.target_id,
        error_code=category,
        message=f"{what}: {str(body.get('message') or reply.body)[:1000]}",
        retryable=reply.status >= 500,
    )


class PipelineWriter:
    """Writes the ``pipelines`` groups of a plan (see module docstring)."""

    def __init__(self, transport: Transport, pipelines_api: Any, stages_api: Any) -> None:
        self.transport = transport
        self.pipelines_api = pipelines_api
        self.stages_api = stages_api

    def write(self, action: str, items: Sequence[LoadItem]) -> list[WriteOutcome]:
        if action == "link":
            return [WriteOutcome(seq=i.seq, target_id=i.target_id) for i in items]
        if action not in ("create", "update"):
            return [
                WriteOutcome(
                    seq=i.seq,
                    target_id=i.target_id,
                    error_code="UNSUPPORTED",
                    message=f"crm-sync does not {action} HubSpot pipelines",
                    retryable=False,
                )
                for i in items
            ]
        pipelines = self._all()
        outcomes = []
        for item in items:
            if action == "update":
                outcomes.append(self._update(item, pipelines))
            elif "pipelineId" in item.fields:
                outcomes.append(self._create_stage(item, pipelines))
            else:
                outcomes.append(self._create_pipeline(item, pipelines))
        return outcomes

    def stage_ids(self, pipeline_id: str) -> dict[str, str]:
        """Stage label -> stage id of one deal pipeline."""
        reply = self.transport.call(
            f"read of pipeline {pipeline_id}",
            self.pipelines_api.get_by_id,
            OBJECT_TYPE,
            pipeline_id,
            idempotent=True,
        )
        if not reply.ok:
            return {}
        return dict(_stage_pairs(reply.body or {}))

    # -- reads ---------------------------------------------------------------------------------------
    def _all(self) -> dict[str, dict[str, Any]]:
        """Live deal pipelines by id."""
        reply = self.transport.call(
            "read of deal pipelines", self.pipelines_api.get_all, OBJECT_TYPE, idempotent=True
        )
        body = reply.body if reply.ok and isinstance(reply.body, Mapping) else {}
        return {str(p["id"]): dict(p) for p in body.get("results") or [] if not p.get("archived")}

    @staticmethod
    def _by_label(pipelines: Mapping[str, Mapping[str, Any]], label: str) -> dict[str, Any] | None:
        return next((dict(p) for p in pipelines.values() if p.get("label") == label), None)

    # -- writes --------------------------------------------------------------------------------------
    def _checked_create(
        self, what: str, post: Callable[[], Reply], find: Callable[[], Any]
    ) -> tuple[Reply | None, Any]:
        """POST; after an ambiguous failure, look the object up, and POST again only if absent
        (at most :data:`CREATE_ATTEMPTS` times, then the batch fails and a re-run continues)."""
        for _ in range(CREATE_ATTEMPTS):
            try:
                return post(), None
            except AmbiguousWriteError as exc:
                log.warning("hubspot %s: %s; checking whether it exists before trying again", what, exc)
                found = find()
                if found is not None:
                    return None, found
        raise BatchFailedError(
            f"HubSpot {what} failed {CREATE_ATTEMPTS} times without an answer, and the object does not "
            "exist; re-running the task tries again (it looks the object up first)"
        )

    def _create_pipeline(self, item: LoadItem, pipelines: dict[str, dict[str, Any]]) -> WriteOutcome:
        label = str(item.fields.get("label") or "")
        stages = [stage_input(s, i) for i, s in enumerate(item.fields.get("stages") or [])]
        existing = self._by_label(pipelines, label)
        if existing is None:
            body = {"label": label, "displayOrder": int(item.fields.get("displayOrder", 0)), "stages": stages}
            reply, existing = self._checked_create(
                f"creation of pipeline {label!r}",
                lambda: self.transport.call(
                    f"creation of pipeline {label!r}",
                    self.pipelines_api.create,
                    OBJECT_TYPE,
                    body,
                    idempotent=False,
                ),
                lambda: self._by_label(self._all(), label),
            )
            if reply is not None and reply.status == 409:
                existing = self._by_label(self._all(), label)
            elif reply is not None and not reply.ok:
                return _error(item, reply, f"creating pipeline {label!r}")
            elif reply is not None:
                existing = dict(reply.body or {})
        if existing is None:
            return WriteOutcome(seq=item.seq, error_code="NOT_FOUND", message=f"pipeline {label!r} vanished")
        pipelines[str(existing["id"])] = existing
        return self._with_stages(item, existing, stages)

    def _with_stages(
        self, item: LoadItem, pipeline: dict[str, Any], wanted: list[dict[str, Any]]
    ) -> WriteOutcome:
        """Add the stages ``pipeline`` lacks (by label); the outcome lists all its stages."""
        pipeline_id = str(pipeline["id"])
        have = dict(_stage_pairs(pipeline))
        for stage in wanted:
            if stage["label"] in have:
                continue
            created = self._stage(pipeline_id, stage)
            if isinstance(created, Reply):
                return _error(item, created, f"adding stage {stage['label']!r} to pipeline {pipeline_id}")
            have[stage["label"]] = created
            pipeline.setdefault("stages", []).append({"label": stage["label"], "id": created})
        return WriteOutcome(seq=item.seq, target_id=pipeline_id, children=tuple(have.items()))

    def _stage(self, pipeline_id: str, stage: dict[str, Any]) -> str | Reply:
        """Create one stage (checked, not blind); its id, or the refusing reply."""
        label = stage["label"]
        what = f"creation of stage {label!r} in pipeline {pipeline_id}"
        reply, found = self._checked_create(
            what,
            lambda: self.transport.call(
                what, self.stages_api.create, OBJECT_TYPE, pipeline_id, stage, idempotent=False
            ),
            lambda: self.stage_ids(pipeline_id).get(label),
        )
        if found is not None:
            return str(found)
        assert reply is not None
        if reply.status == 409:
            existing = self.stage_ids(pipeline_id).get(label)
            if existing is not None:
                return existing
        if not reply.ok:
            return reply
        return str((reply.body or {}).get("id"))

    def _create_stage(self, item: LoadItem, pipelines: dict[str, dict[str, Any]]) -> WriteOutcome:
        pipeline_id = str(item.fields["pipelineId"])
        stage = stage_input(item.fields, 0)
        pipeline = pipelines.get(pipeline_id)
        if pipeline is None:
            return WriteOutcome(
                seq=item.seq,
                error_code="OBJECT_NOT_FOUND",
                message=f"deal pipeline {pipeline_id} does not exist",
                retryable=False,
            )
        have = dict(_stage_pairs(pipeline))
        if stage["label"] in have:
            return WriteOutcome(seq=item.seq, target_id=have[stage["label"]])
        created = self._stage(pipeline_id, stage)
        if isinstance(created, Reply):
            return _error(item, created, f"adding stage {stage['label']!r} to pipeline {pipeline_id}")
        pipeline.setdefault("stages", []).append({"label": stage["label"], "id": created})
        return WriteOutcome(seq=item.seq, target_id=created)

    def _update(self, item: LoadItem, pipelines: dict[str, dict[str, Any]]) -> WriteOutcome:
        pipeline_id = str(item.target_id or "")
        pipeline = pipelines.get(pipeline_id)
        if pipeline is None:
            return WriteOutcome(
                seq=item.seq,
                target_id=item.target_id,
                error_code="OBJECT_NOT_FOUND",
                message=f"deal pipeline {pipeline_id} does not exist",
                retryable=False,
            )
        label = item.fields.get("label")
        if label is not None and label != pipeline.get("label"):
            reply = self.transport.call(
                f"rename of pipeline {pipeline_id}",
                self.pipelines_api.update,
                OBJECT_TYPE,
                pipeline_id,
                {"label": str(label)},
                idempotent=True,
            )
            if not reply.ok:
                return _error(item, reply, f"renaming pipeline {pipeline_id} to {label!r}")
            pipeline["label"] = str(label)
        stages = [stage_input(s, i) for i, s in enumerate(item.fields.get("stages") or [])]
        return self._with_stages(item, pipeline, stages)
