"""Retrieval evaluation: running cases through search configurations, and the saved sets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from core import validation
from core.errors import Conflict, InvalidInput, NotFound
from core.evaluation import (
    DEFAULT_KS,
    CaseResult,
    EvalCase,
    EvalRun,
    EvalSet,
    ModeConfig,
    ModeReport,
    average,
    case_metrics,
    config_params,
    evaluation_depth,
)
from core.models import Progress
from core.retrieval import model_of
from core.service.base import TenantBound, embed_texts, writes
from core.service.search import run_search
from core.sql import evaluation as sql
from core.sql import stores

EMBED_BATCH = 256


class EvaluationOps(TenantBound):
    def evaluate(
        self,
        store_id: UUID | str,
        cases: Sequence[EvalCase],
        configs: Sequence[ModeConfig],
        ks: Sequence[int] = DEFAULT_KS,
        progress: Progress | None = None,
        *,
        keep_as: UUID | str | None = None,
        kept_at: datetime | str | None = None,
    ) -> list[ModeReport]:
        """Run every case through every configuration in one transaction, the queries embedded in
        batches first; access statistics are left untouched, nothing goes into the retrieval log.
        `keep_as`: the id of the evaluation set the cases come from, to keep each
        configuration's metrics as a run of it (the Evaluate page charts them over time), dated
        `kept_at` when given (runs carried over from elsewhere, the demo's), else now."""
        if not cases:
            raise InvalidInput("no evaluation case to run")
        ks = sorted({validation.limit(k, "k") for k in ks})
        when = validation.timestamp(kept_at, "kept_at")
        depth = evaluation_depth(ks)
        store = self._store(store_id)
        vectors = [
            v
            for start in range(0, len(cases), EMBED_BATCH)
            for v in embed_texts(store, [c.query for c in cases[start : start + EMBED_BATCH]])
        ]
        reports = []
        total, done = len(cases) * len(configs), 0
        with self.transaction() as conn:
            current = stores.same_model(conn, store)
            for config in configs:
                params = config_params(config, depth).checked()
                results = []
                for case, vector in zip(cases, vectors):
                    returned = run_search(conn, current, case.query, vector, params, record_access=False).results
                    results.append(CaseResult(case, returned, case_metrics([r.memory.id for r in returned], case.expected_ids, ks)))
                    done += 1
                    if progress and done % 25 == 0:
                        progress(done, total)
                reports.append(ModeReport(config.name, config, average(results), results))
            if keep_as is not None:
                set_id = validation.uuid(keep_as, "evaluation set id")
                if not sql.set_exists(conn, set_id):
                    raise NotFound(f"evaluation set {set_id} not found in this tenant")
                sql.insert_runs(conn, self.tenant_id, set_id, self.actor, model_of(current), reports, when)
        if progress:
            progress(total, total)
        return reports

    @writes
    def save_eval_set(self, store_id: UUID | str, name: str, cases: Sequence[EvalCase]) -> EvalSet:
        """A new named set of cases for the store."""
        name = validation.label(name, "evaluation set name", 100)
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            stores.fetch(conn, store_id)
            made = sql.insert_set(conn, self.tenant_id, store_id, name)
            if made is None:
                raise Conflict(f"this store already has an evaluation set named {name!r}")
            sql.append_cases(conn, self.tenant_id, made[0], cases)
        return EvalSet(made[0], store_id, name, made[1], list(cases))

    @writes
    def add_eval_case(self, set_id: UUID | str, case: EvalCase) -> None:
        set_id = validation.uuid(set_id, "evaluation set id")
        with self.transaction() as conn:
            if not sql.set_exists(conn, set_id):
                raise NotFound(f"evaluation set {set_id} not found in this tenant")
            sql.append_cases(conn, self.tenant_id, set_id, [case])

    def list_eval_sets(self, store_id: UUID | str) -> list[EvalSet]:
        """The store's sets, with their cases."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            return sql.load_sets(conn, store_id=store_id)

    def get_eval_set(self, set_id: UUID | str) -> EvalSet:
        set_id = validation.uuid(set_id, "evaluation set id")
        with self.transaction() as conn:
            found = sql.load_sets(conn, set_id=set_id)
        if not found:
            raise NotFound(f"evaluation set {set_id} not found in this tenant")
        return found[0]

    def eval_runs(self, set_id: UUID | str) -> list[EvalRun]:
        """The kept runs of a set, oldest first: one per configuration run."""
        set_id = validation.uuid(set_id, "evaluation set id")
        with self.transaction() as conn:
            return sql.runs(conn, set_id)

    def delete_eval_set(self, set_id: UUID | str) -> None:
        set_id = validation.uuid(set_id, "evaluation set id")
        with self.transaction() as conn:
            if not sql.delete_set(conn, set_id):
                raise NotFound(f"evaluation set {set_id} not found in this tenant")
