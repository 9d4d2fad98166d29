"""Publishing pushed rows: the next `fs run` makes them part of a commit of their feature group, through the gate.

`fs run` calls two functions (fs_cli/pipeline.py):
- `merge_pushed_rows`, after dbt built the candidates and before the gate: per built feature group, the push log
  (fs_cli/online/push_log.py) is loaded into the warehouse table `fs_push.<group>` (idempotent: a row id already
  there is skipped), each new row is checked again against the group's per-row rules (a row failing them now is
  kept with status `rejected` and the reason), a row with the same key and event time as an earlier push replaces
  it (`superseded`, the latest push wins), and every accepted pushed row -- pending or published by an earlier run --
  replaces the candidate row with the same key and event time or is added to the candidate. The gate (Soda contract,
  drift, ...) then audits the candidate with the pushed rows in it, like any other row.
- `finish_pushed_rows`, after the snapshot: for a published group, its pending rows become `published` (with the
  commit id) and the log is consumed up to where this run read it; rows pushed meanwhile stay in the log.

Why pushed rows are merged into every later candidate, not only the next one: a candidate is rebuilt in full from
its sources by dbt, and the snapshot (`hard_deletes: new_record`) would record a pushed row missing from the next
candidate as deleted. `fs_push.<group>` is the source of truth of pushed rows, as the seeds are of batch rows.
(Plain `dbt snapshot` without `fs run` does not merge them: it would record them as deleted.)

Crash safety: the log is consumed only after the commit; a crash before leaves the rows in the log (their ids make
the next load skip them) and in `fs_push` as pending (merged again: the snapshot sees the same rows, so nothing is
published twice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from .commits import list_commits
from .declarations.model import Catalog, FeatureGroup
from .errors import FeatureStoreError
from .online.push import PushSpec, check_row, push_spec_of
from .online.push_log import PushLog, push_dir_for
from .project import Project
from .timeutil import utcnow
from .warehouse import Warehouse
from .warehouse.base import values_marks

PUSH_SCHEMA = "fs_push"
ACCEPTED = ("pending", "published")
_LOGICAL = {"int": "bigint", "float": "double", "str": "text", "bool": "boolean", "timestamp": "timestamp"}
_CHUNK = 500  # rows per statement (bound parameters: Postgres allows 65,535 per statement)
_META_COLUMNS = [("fs_push_id", "text"), ("fs_pushed_at", "timestamp"), ("fs_status", "text"), ("fs_reason", "text"),
                 ("fs_commit_id", "bigint")]


@dataclass
class PushedBatch:
    """What one run took from a group's push log."""

    feature_group: str
    log_end: int  # the log is consumed up to this byte offset once the group is published
    loaded: int = 0
    rejected: list[str] = field(default_factory=list)
    merged: int = 0


def push_table(wh: Warehouse, fg: FeatureGroup) -> str:
    return wh.relation(PUSH_SCHEMA, fg.name)


def _ensure_table(wh: Warehouse, fg: FeatureGroup, ps: PushSpec) -> str:
    rel = push_table(wh, fg)
    if wh.relation_exists(PUSH_SCHEMA, fg.name):
        return rel
    wh.ensure_schema(PUSH_SCHEMA)
    cols = [f"{wh.quote(n)} {wh.type(t)}" for n, t in _META_COLUMNS]
    cols += [f"{wh.quote(c)} {wh.type(_LOGICAL.get(ps.rules[c].kind, 'text'))}" for c in ps.columns]
    wh.execute(f"create table {rel} ({', '.join(cols)})")
    return rel


def _identity(ps: PushSpec) -> list[str]:
    """The columns that name one pushed row: keys, event time (and created time). A later push with the same values
    supersedes an earlier one, and replaces the candidate's row."""
    return [*ps.spec.keys, ps.spec.event_time, *([ps.spec.created_time] if ps.spec.created_time else [])]


def _param(value: Any, kind: str) -> Any:
    return datetime.fromisoformat(value) if kind == "timestamp" and isinstance(value, str) else value


def _load(wh: Warehouse, fg: FeatureGroup, ps: PushSpec, records: list[dict[str, Any]], now: datetime,
          batch: PushedBatch) -> None:
    """New log records into fs_push.<group>: checked again (rejected ones kept with the reason), earlier pushes of
    the same key and event time superseded (the latest push wins).

    In a fixed number of statements, not one per record (on Spark each statement is a Delta commit): the records'
    outcome is decided here, in log order, as if they were loaded one by one (a pending row is superseded by the
    next accepted push of its key, in the log or in this batch), then one UPDATE of the earlier rows and one
    multi-row INSERT per chunk. tests/test_push_load.py checks this against the one-by-one semantics."""
    rel = push_table(wh, fg)
    q = wh.quote
    known = {r[0] for r in wh.fetchall(f"select {q('fs_push_id')} from {rel}")}
    fresh, seen = [], set(known)
    for r in records:  # a record logged twice (a retried append) is loaded once
        if r.get("id") not in seen:
            seen.add(r.get("id"))
            fresh.append(r)
    if not fresh:
        return
    cols = ps.columns
    same = _identity(ps)
    rows: list[list[Any]] = []  # fs_push_id, fs_pushed_at, fs_status, fs_reason, fs_commit_id, *cols
    for rec in fresh:
        raw = rec.get("row") or {}
        status, reason = "pending", None
        try:
            row = check_row(ps, raw, 0, now)
        except FeatureStoreError as e:
            # kept as sent (JSON in the reason: its values may not even fit the column types), columns null
            row = {}
            status, reason = "rejected", e.message.removeprefix("row 0, ")
            batch.rejected.append(f"push {rec.get('id')}: {reason}")
            reason += " | row: " + orjson.dumps(raw, default=str).decode()
        rows.append([rec.get("id"), _param(rec.get("pushed_at"), "timestamp"), status, reason, None,
                     *(_param(row.get(c), ps.rules[c].kind) for c in cols)])
    # Within the batch: each pending row is superseded by the next pending row of its key; the earlier rows of the
    # table, by the batch's first pending row of their key.
    at = {c: len(_META_COLUMNS) + i for i, c in enumerate(cols)}
    pending = [row for row in rows if row[2] == "pending"]
    first_of_key: dict[tuple, str] = {}
    for row in pending:
        first_of_key.setdefault(tuple(row[at[c]] for c in same), row[0])
    next_of_key: dict[tuple, str] = {}
    for row in reversed(pending):
        key = tuple(row[at[c]] for c in same)
        if key in next_of_key:
            row[2], row[3] = "superseded", f"replaced by push {next_of_key[key]}"
        next_of_key[key] = row[0]
    names = [*(n for n, _ in _META_COLUMNS), *cols]
    with wh.transaction():
        firsts = list(first_of_key.items()) if known else []
        for chunk in range(0, len(firsts), _CHUNK):
            part = firsts[chunk:chunk + _CHUNK]
            wh.update_matching(
                rel, f"select * from (values {values_marks(len(same) + 1, len(part))}) as fs_keys "
                     f"({', '.join(q(c) for c in same)}, {q('fs_first_push')})",
                " and ".join(f"t.{q(c)} = s.{q(c)}" for c in same)
                + f" and t.{q('fs_status')} in ('pending', 'published')",
                {"fs_status": "'superseded'", "fs_reason": f"'replaced by push ' || s.{q('fs_first_push')}"},
                [v for key, first in part for v in (*key, first)])
        wh.insert_rows(rel, [q(c) for c in names], rows, chunk=_CHUNK)
    batch.loaded += len(rows)


def _merge_into_candidate(wh: Warehouse, fg: FeatureGroup, ps: PushSpec) -> int:
    """Accepted pushed rows replace candidate rows with the same key and event time, or are added to it."""
    rel = push_table(wh, fg)
    q = wh.quote
    accepted = f"p.{q('fs_status')} in ('pending', 'published')"
    n = int(wh.scalar(f"select count(*) from {rel} p where {accepted}") or 0)
    if not n:
        return 0
    same = _identity(ps)
    match = " and ".join(f"s.{q(c)} = t.{q(c)}" for c in same)
    cand_cols = {c.lower() for c, _ in wh.describe(fg.relation)}
    cols = [c for c in ps.columns if c.lower() in cand_cols]
    with wh.transaction():
        wh.delete_matching(fg.relation, f"select {', '.join(q(c) for c in same)} from {rel} p where {accepted}", match)
        wh.execute(f"insert into {fg.relation} ({', '.join(q(c) for c in cols)}) "
                   f"select {', '.join('p.' + q(c) for c in cols)} from {rel} p where {accepted}")
    return n


def merge_pushed_rows(project: Project, catalog: Catalog, outcomes: dict[str, Any]) -> dict[str, PushedBatch]:
    """Before the gate: pushed rows of every built feature group into its candidate (see the module docstring)."""
    log = PushLog(push_dir_for(project.state_dir))
    logged = set(log.groups())
    batches: dict[str, PushedBatch] = {}
    built = [n for n, o in outcomes.items() if o.built]
    if not built:
        return batches
    now = utcnow()
    with project.warehouse() as wh:
        for name in built:
            fg = catalog.feature_groups[name]
            if name not in logged and not wh.relation_exists(PUSH_SCHEMA, name):
                continue
            ps = push_spec_of(fg)
            records, end = log.read(name)
            batch = PushedBatch(name, end)
            _ensure_table(wh, fg, ps)
            _load(wh, fg, ps, records, now, batch)
            batch.merged = _merge_into_candidate(wh, fg, ps)
            batches[name] = batch
            if batch.rejected:
                outcomes[name].warnings.append(
                    f"push: {len(batch.rejected)} pushed row(s) rejected, kept in {PUSH_SCHEMA}.{name} "
                    f"(first: {batch.rejected[0]})")
    return batches


def finish_pushed_rows(project: Project, catalog: Catalog, outcomes: dict[str, Any],
                       batches: dict[str, PushedBatch]) -> None:
    """After the snapshot: pending pushed rows of a published group are published; its log is consumed."""
    done = [b for b in batches.values() if outcomes[b.feature_group].published]
    if not done:
        return
    log = PushLog(push_dir_for(project.state_dir))
    with project.warehouse() as wh:
        q = wh.quote
        for b in done:
            o, fg = outcomes[b.feature_group], catalog.feature_groups[b.feature_group]
            # no commit of its own: the rows were published by an earlier run that died before this step (the
            # snapshot saw them unchanged now), i.e. by the group's latest commit
            commit = o.commit or (list_commits(wh, fg, with_validation=False) or [None])[-1]
            wh.execute(f"update {push_table(wh, fg)} set {q('fs_status')} = 'published', {q('fs_commit_id')} = ? "
                       f"where {q('fs_status')} = 'pending'", [commit.commit_id if commit else None])
    for b in done:
        log.consume(b.feature_group, b.log_end)
