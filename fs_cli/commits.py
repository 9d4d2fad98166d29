"""The commit log: every publish (dbt snapshot) of a feature group that changed data.

Commits are derived from the snapshot itself, so a publish made by plain `dbt snapshot` / `dbt build` (or an `fs run`
killed between its snapshot and its log write) is logged too the next time `fs` looks. A commit's time is the
snapshot's dbt_valid_from; rows that took effect at that instant are inserted, updated (a previous version of the same
key closed at the same instant) or deleted (dbt_is_deleted = 'True', the marker `hard_deletes: new_record` writes).
Commit ids count the distinct dbt_valid_from of the snapshot in order (1, 2, ...), which is also how the BI history
view (macros/publish/) numbers them, so both agree.

Every function takes an open `Warehouse` (fs_cli/warehouse): the SQL is the portable subset DuckDB and Postgres share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .declarations.model import FeatureGroup
from .errors import FeatureStoreError
from .timeutil import parse_timestamp, utcnow
from .warehouse import META_SCHEMA, Warehouse

if TYPE_CHECKING:
    import pyarrow as pa

COMMITS = f"{META_SCHEMA}.commits"
VALIDATION_RESULTS = "validation_results"  # fs_meta table owned by fs_cli/validation/results.py
_EPOCH = datetime(1970, 1, 1)  # before any commit: the lower bound of the first sync


@dataclass
class Commit:
    feature_group: str
    commit_id: int
    commit_time: datetime
    inserted: int
    updated: int
    deleted: int
    rows: int
    run_id: str | None = None
    #: passed | failed | none: the validation-gate run linked to this commit passed, failed (published under policy
    #: `warn`), or no run was linked (published by plain `dbt snapshot` / `dbt build`: not validated by fs).
    validation: str | None = None

    @property
    def validated(self) -> bool | None:
        """A passing validation run is linked to this commit (None: not looked up)."""
        return None if self.validation is None else self.validation == "passed"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["commit_time"] = self.commit_time.isoformat(sep=" ")
        if self.validation is None:
            d.pop("validation")
        else:
            d["validated"] = self.validated
        return d


def ensure_meta(wh: Warehouse) -> None:
    wh.ensure_schema(META_SCHEMA)
    text, big, ts = wh.type("text"), wh.type("bigint"), wh.type("timestamp")
    wh.execute(
        f"""create table if not exists {COMMITS} (
            feature_group {text} not null,
            commit_id {wh.type("integer")} not null,
            commit_time {ts} not null,
            inserted {big} not null,
            updated {big} not null,
            deleted {big} not null,
            rows {big} not null,
            run_id {text},
            recorded_at {ts} not null{wh.primary_key_clause(["feature_group", "commit_id"])}
        )"""
    )


def is_published(wh: Warehouse, fg: FeatureGroup) -> bool:
    return fg.snapshot_schema is not None and wh.relation_exists(fg.snapshot_schema, fg.snapshot_name)


_DELETED = "coalesce(dbt_is_deleted, 'False') = 'True'"
#: A snapshot row that is not a deletion marker (`hard_deletes: new_record`).
NOT_DELETED = "coalesce(dbt_is_deleted, 'False') <> 'True'"
#: The rows of the version published now.
LIVE = f"dbt_valid_to is null and {NOT_DELETED}"
# Both counts classify the versions opened at each new instant the same way (CTE `versions`: t, is_del, and the key's
# previous version's prev_to / prev_del): an update when that one was live and closed at t, else an insert, or a
# deletion marker.
_PER_COMMIT = """classified as (
            select t, is_del, case when prev_to = t and prev_del = 0 then 1 else 0 end as had_live
            from versions
            where t > ?
        ),
        per_commit as (
            select t,
                   sum(case when is_del = 0 and had_live = 0 then 1 else 0 end) as inserted,
                   sum(case when is_del = 0 and had_live = 1 then 1 else 0 end) as updated,
                   sum(is_del) as deleted
            from classified
            group by t
        )"""


def _snapshot_commits(wh: Warehouse, fg: FeatureGroup, after: datetime,
                      prev_rows: int | None = None) -> list[tuple]:
    """(time, inserted, updated, deleted, live rows) of every snapshot instant after `after`, in order.

    With `prev_rows` (the live rows logged at `after`, the last logged commit) only the versions a later instant
    opened or closed are read (_new_commits); without it every version is (_recount_commits: the first log, and the
    oracle the incremental count is tested against)."""
    if prev_rows is None:
        return _recount_commits(wh, fg, after)
    return _new_commits(wh, fg, after, prev_rows)


def _recount_commits(wh: Warehouse, fg: FeatureGroup, after: datetime) -> list[tuple]:
    """The full recount: classify every version of the snapshot and count the live rows at each new instant."""
    q = wh.quote
    key_list = ", ".join(q(k) for k in fg.key_columns)
    snap = fg.snapshot_relation
    deleted = _DELETED
    # A key's versions follow each other in dbt_valid_from order, so the version a new row replaced is its
    # predecessor (lag over the key): an update when that one was live and closed at the same instant. Window
    # functions sort once; a correlated EXISTS on `is not distinct from` keys is quadratic on Postgres.
    return wh.fetchall(
        f"""
        with versions as (
            select dbt_valid_from as t,
                   case when {deleted} then 1 else 0 end as is_del,
                   lag(dbt_valid_to) over (partition by {key_list} order by dbt_valid_from) as prev_to,
                   lag(case when {deleted} then 1 else 0 end)
                       over (partition by {key_list} order by dbt_valid_from) as prev_del
            from {snap}
        ),
        {_PER_COMMIT}
        select p.t, p.inserted, p.updated, p.deleted,
               (select count(*) from {snap} s
                 where s.dbt_valid_from <= p.t
                   and (s.dbt_valid_to is null or s.dbt_valid_to > p.t)
                   and coalesce(s.dbt_is_deleted, 'False') <> 'True') as total
        from per_commit p
        order by p.t
        """,
        [after],
    )


def _new_commits(wh: Warehouse, fg: FeatureGroup, after: datetime, prev_rows: int) -> list[tuple]:
    """The commits after `after` from the versions opened or closed after it, and the live rows logged at `after`.

    Why this equals the recount (tests/test_commit_log_incremental.py checks it against _recount_commits):
    - classification: the version a new row replaced is its key's predecessor. A predecessor closed at the new
      row's instant was closed after `after`, so it is among the versions read here, and the versions of a key
      never overlap in time (a snapshot closes one before it opens the next), so no version left out sits between
      them. A predecessor left out was closed at or before `after`: not at the new row's instant, so the row is an
      insert either way.
    - live rows: live(t) = live(after) + live versions opened in (after, t] - live versions closed in (after, t];
      a version opened and closed in that interval counts once each way. Closes without a new version at the same
      instant (`hard_deletes: invalidate`) count at the next instant, as in the recount.
    Reading the versions opened or closed after `after` is a filter on the snapshot, not a window over all of it."""
    q = wh.quote
    key_cols = [q(k) for k in fg.key_columns]
    key_list = ", ".join(key_cols)
    snap = fg.snapshot_relation
    deleted = _DELETED
    rows = wh.fetchall(
        f"""
        with touched as (
            select {key_list}, dbt_valid_from, dbt_valid_to, case when {deleted} then 1 else 0 end as is_del
            from {snap}
            where dbt_valid_from > ? or dbt_valid_to > ?
        ),
        versions as (
            select dbt_valid_from as t, is_del,
                   lag(dbt_valid_to) over (partition by {key_list} order by dbt_valid_from) as prev_to,
                   lag(is_del) over (partition by {key_list} order by dbt_valid_from) as prev_del
            from touched
        ),
        {_PER_COMMIT},
        live_changes as (
            select dbt_valid_from as at_time, 1 as delta from touched where is_del = 0 and dbt_valid_from > ?
            union all
            select dbt_valid_to as at_time, -1 as delta from touched where is_del = 0 and dbt_valid_to > ?
        )
        select p.t, p.inserted, p.updated, p.deleted,
               (select coalesce(sum(c.delta), 0) from live_changes c where c.at_time <= p.t) as net
        from per_commit p
        order by p.t
        """,
        [after, after, after, after, after],
    )
    return [(t, ins, upd, dele, prev_rows + int(net)) for t, ins, upd, dele, net in rows]


def _last_logged_rows(wh: Warehouse, fg: FeatureGroup, commit_id: int) -> int | None:
    """The live rows logged with commit `commit_id` (None: nothing logged yet)."""
    if not commit_id:
        return None
    value = wh.scalar(f"select rows from {COMMITS} where feature_group = ? and commit_id = ?", [fg.name, commit_id])
    return None if value is None else int(value)


def _has_unlogged(wh: Warehouse, fg: FeatureGroup, after: datetime) -> bool:
    """Whether the snapshot holds a version opened after `after` (a commit the log has not yet)."""
    newest = wh.scalar(f"select max(dbt_valid_from) from {fg.snapshot_relation}")
    return newest is not None and newest > after


def _last_logged(wh: Warehouse, fg: FeatureGroup) -> tuple[int, datetime]:
    row = wh.fetchone(f"select max(commit_id), max(commit_time) from {COMMITS} where feature_group = ?", [fg.name])
    return (row[0] or 0) if row else 0, (row[1] if row and row[1] else _EPOCH)


def sync_commits(wh: Warehouse, fg: FeatureGroup, run_id: str | None = None) -> list[Commit]:
    """Append the commits the snapshot has and the log has not yet; return the new ones.

    Idempotent and safe to race: the log's primary key (feature group, commit id) turns a concurrent writer's
    duplicate into an error, after which the commits it logged are simply read back."""
    if not is_published(wh, fg):
        return []
    ensure_meta(wh)
    last_id, last_time = _last_logged(wh, fg)
    if not _has_unlogged(wh, fg, last_time):
        return []
    rows = _snapshot_commits(wh, fg, last_time, _last_logged_rows(wh, fg, last_id))
    if not rows:
        return []
    now = utcnow()
    new = [Commit(fg.name, last_id + i, t, int(ins), int(upd), int(dele), int(total), run_id)
           for i, (t, ins, upd, dele, total) in enumerate(rows, start=1)]
    try:
        with wh.transaction():
            for c in new:
                wh.execute(
                    f"""insert into {COMMITS} (feature_group, commit_id, commit_time, inserted, updated, deleted, rows,
                        run_id, recorded_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    [c.feature_group, c.commit_id, c.commit_time, c.inserted, c.updated, c.deleted, c.rows, run_id,
                     now],
                )
    except Exception:
        # Another process logged these commits first (same derivation, same ids): nothing is lost.
        if _last_logged(wh, fg)[1] < new[-1].commit_time:
            raise
        return []
    return new


def claim_run(wh: Warehouse, fg: FeatureGroup, after_commit: int, run_id: str | None) -> None:
    """Attribute commits after `after_commit` that carry no run id to `run_id` (a concurrent `fs commits` may have
    logged this run's publish before the run itself did)."""
    if run_id:
        wh.execute(
            f"update {COMMITS} set run_id = ? where feature_group = ? and commit_id > ? and run_id is null",
            [run_id, fg.name, after_commit],
        )


def _validation_status(wh: Warehouse, fg: FeatureGroup) -> dict[int, str]:
    """commit id -> passed | failed, from the validation-gate runs linked to commits (fs_meta.validation_results)."""
    if not wh.relation_exists(META_SCHEMA, VALIDATION_RESULTS):
        return {}
    rows = wh.fetchall(
        f"""select commit_id, candidate_id,
                   sum(case when outcome in ('fail', 'error') then 1 else 0 end) as failed
            from {META_SCHEMA}.{VALIDATION_RESULTS}
            where feature_group = ? and commit_id is not null
            group by commit_id, candidate_id""",
        [fg.name],
    )
    status: dict[int, str] = {}
    for commit_id, _candidate, failed in rows:
        if not failed:
            status[int(commit_id)] = "passed"
        else:
            status.setdefault(int(commit_id), "failed")
    return status


def list_commits(wh: Warehouse, fg: FeatureGroup, with_validation: bool = True) -> list[Commit]:
    if not wh.relation_exists(META_SCHEMA, "commits"):
        return []
    rows = wh.fetchall(
        f"""select feature_group, commit_id, commit_time, inserted, updated, deleted, rows, run_id
            from {COMMITS} where feature_group = ? order by commit_id""",
        [fg.name],
    )
    commits = [Commit(r[0], int(r[1]), r[2], int(r[3]), int(r[4]), int(r[5]), int(r[6]), r[7]) for r in rows]
    if with_validation:
        status = _validation_status(wh, fg)
        for c in commits:
            c.validation = status.get(c.commit_id, "none")
    return commits


def resolve_as_of(
    wh: Warehouse, fg: FeatureGroup, as_of: str | datetime | None, commit: int | None
) -> datetime | None:
    """The commit time to read at: from a commit id, a timestamp, or None for the latest."""
    if as_of is not None and commit is not None:
        raise FeatureStoreError("give either as_of or commit, not both", fix="drop one of --as-of / --commit")
    commits = list_commits(wh, fg, with_validation=False)
    if commit is not None:
        for c in commits:
            if c.commit_id == int(commit):
                return c.commit_time
        raise FeatureStoreError(
            f"feature group {fg.name} has no commit {commit}",
            fix=f"existing commits: {', '.join(str(c.commit_id) for c in commits) or '(none)'}; see `fs commits {fg.name}`",
        )
    if as_of is None:
        return None
    t = parse_timestamp(as_of, where="as_of")
    if commits and t < commits[0].commit_time:
        raise FeatureStoreError(
            f"feature group {fg.name} was first published at {commits[0].commit_time}, after as_of {t}",
            fix=f"use an as_of at or after {commits[0].commit_time}",
        )
    return t


def published_query(fg: FeatureGroup, as_of: datetime | None, quote: Any = None,
                    ordered: bool = True) -> tuple[str, list]:
    """SQL (and its parameters) for the feature group as published at `as_of` (None = now), in key order unless
    not `ordered` (a subquery)."""
    from .warehouse import quote_ident

    q = quote or quote_ident
    cols = ", ".join(q(c) for c in fg.column_names)
    order = "order by " + ", ".join(q(c) for c in fg.key_columns) if ordered else ""
    if as_of is None:
        return f"select {cols} from {fg.snapshot_relation} where {LIVE} {order}", []
    return (
        f"""select {cols} from {fg.snapshot_relation}
            where dbt_valid_from <= ? and (dbt_valid_to is null or dbt_valid_to > ?) and {NOT_DELETED}
            {order}""",
        [as_of, as_of],
    )


def read_published(wh: Warehouse, fg: FeatureGroup, as_of: datetime | None = None) -> pa.Table:
    if not is_published(wh, fg):
        raise FeatureStoreError(
            f"feature group {fg.name} has never been published", fix=f"run `fs run --select {fg.model}` first"
        )
    sql, params = published_query(fg, as_of, wh.quote)
    return wh.arrow(sql, params)


def _any_unlogged(project: Any, fgs: list[FeatureGroup]) -> bool:
    """Whether a snapshot holds a publish the commit log has not yet (read-only)."""
    with project.warehouse(read_only=True) as wh:
        published = [fg for fg in fgs if is_published(wh, fg)]
        if not published:
            return False
        schema, _, table = COMMITS.partition(".")
        if not wh.relation_exists(schema, table):
            return True
        return any(_has_unlogged(wh, fg, _last_logged(wh, fg)[1]) for fg in published)


def sync_project(project: Any, fgs: list[FeatureGroup]) -> bool:
    """Log every publish the snapshots hold and the commit log not yet (plain `dbt snapshot`, or an `fs run` killed
    between its snapshot and its log write), before anything reads the log. Skipped -- returning False -- when the
    store does not exist yet or cannot be opened for writing right now (another DuckDB writer, a read-only BI
    session holding the file): the readers then see the log as it is."""
    from .warehouse import store_exists

    if not store_exists(project):
        return False
    if project.reading_shared and not _any_unlogged(project, fgs):
        return True  # checked on the block's read-only session: no read-write open (and no lock) for nothing
    from .warehouse.lock import no_wait

    try:
        with no_wait():  # optional: a busy warehouse skips the logging, it does not delay the read
            wh = project.warehouse(read_only=False)
    except FeatureStoreError:
        return False
    with wh:
        for fg in fgs:
            sync_commits(wh, fg)
    return True
