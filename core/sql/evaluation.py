"""Evaluation sets: named lists of cases (a query and the memories it should return) per store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, text

from core.evaluation import EvalCase, EvalRun, EvalSet, ModeReport


def insert_set(conn: Connection, tenant_id: UUID, store_id: UUID, name: str) -> tuple[UUID, Any] | None:
    """(id, created_at) of a new set; None when the store has a set of that name."""
    row = conn.execute(
        text("INSERT INTO evaluation_sets (tenant_id, store_id, name) VALUES (:t, :s, :n) ON CONFLICT DO NOTHING RETURNING id, created_at"),
        {"t": tenant_id, "s": store_id, "n": name},
    ).one_or_none()
    return (row.id, row.created_at) if row else None


def set_exists(conn: Connection, set_id: UUID) -> bool:
    return bool(conn.scalar(text("SELECT 1 FROM evaluation_sets WHERE id = :id"), {"id": set_id}))


def append_cases(conn: Connection, tenant_id: UUID, set_id: UUID, cases: Sequence[EvalCase]) -> None:
    """Append cases to a set, in order (the set row is locked so two writers number them apart)."""
    if not cases:
        return
    conn.execute(text("SELECT 1 FROM evaluation_sets WHERE id = :s FOR UPDATE"), {"s": set_id})
    start = conn.scalar(text("SELECT coalesce(max(position), 0) FROM evaluation_cases WHERE set_id = :s"), {"s": set_id})
    conn.execute(
        text("INSERT INTO evaluation_cases (tenant_id, set_id, position, query, expected_ids, kind) VALUES (:t, :s, :p, :q, :e, :k)"),
        [
            {"t": tenant_id, "s": set_id, "p": start + n, "q": c.query, "e": list(c.expected_ids), "k": c.kind}
            for n, c in enumerate(cases, start=1)
        ],
    )


def load_sets(conn: Connection, *, store_id: UUID | None = None, set_id: UUID | None = None) -> list[EvalSet]:
    """The sets of a store (or the one set), with their cases in order: two queries in all."""
    where, params = ("store_id = :s", {"s": store_id}) if set_id is None else ("id = :s", {"s": set_id})
    heads = conn.execute(text(f"SELECT id, store_id, name, created_at FROM evaluation_sets WHERE {where} ORDER BY name"), params).all()
    cases: dict[UUID, list[EvalCase]] = {h.id: [] for h in heads}
    rows = conn.execute(
        text("SELECT set_id, query, expected_ids, kind FROM evaluation_cases WHERE set_id = ANY(:ids) ORDER BY set_id, position"),
        {"ids": list(cases)},
    )
    for r in rows:
        cases[r.set_id].append(EvalCase(r.query, tuple(r.expected_ids), r.kind))
    return [EvalSet(h.id, h.store_id, h.name, h.created_at, cases[h.id]) for h in heads]


def delete_set(conn: Connection, set_id: UUID) -> bool:
    return conn.execute(text("DELETE FROM evaluation_sets WHERE id = :id"), {"id": set_id}).rowcount > 0


def insert_runs(
    conn: Connection, tenant_id: UUID, set_id: UUID, actor: str, model: str, reports: Sequence[ModeReport], at: datetime | None = None
) -> None:
    """Keep each configuration's metrics of one run of a set (at `at`, default now)."""
    conn.execute(
        text(
            "INSERT INTO evaluation_runs (tenant_id, set_id, at, actor, config, metrics, by_kind, model, cases)"
            " VALUES (:t, :s, coalesce(:at, clock_timestamp()), :actor, CAST(:config AS jsonb), CAST(:metrics AS jsonb), CAST(:by_kind AS jsonb), :model, :cases)"
        ),
        [
            {
                "t": tenant_id,
                "s": set_id,
                "at": at,
                "actor": actor,
                "config": json.dumps(asdict(r.config)),
                "metrics": json.dumps(r.metrics),
                "by_kind": json.dumps(r.by_kind()),
                "model": model,
                "cases": int(r.metrics["n"]),
            }
            for r in reports
        ],
    )


def runs(conn: Connection, set_id: UUID) -> list[EvalRun]:
    rows = conn.execute(
        text("SELECT id, set_id, at, actor, config, metrics, by_kind, model, cases FROM evaluation_runs WHERE set_id = :s ORDER BY at, id"),
        {"s": set_id},
    )
    return [EvalRun(**r._mapping) for r in rows]
