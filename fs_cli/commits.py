"""The commit log: every publish (dbt snapshot) of a feature group that changed data.

Commits are derived from the snapshot itself, so a publish made by plain `dbt snapshot` / `dbt build` is logged too
the next time `fs` looks. A commit's time is the snapshot's dbt_valid_from; rows that took effect at that instant
are inserted, updated (a previous version of the same key closed at the same instant) or deleted
(dbt_is_deleted = 'True', the marker `hard_deletes: new_record` writes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

import duckdb
import pyarrow as pa

from .errors import FeatureStoreError
from .metadata import FeatureGroup
from .timeutil import parse_timestamp, utcnow
from .warehouse import META_SCHEMA, quote_ident, relation_exists

COMMITS = f"{META_SCHEMA}.commits"


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

    def to_dict(self) -> dict:
        d = asdict(self)
        d["commit_time"] = self.commit_time.isoformat(sep=" ")
        return d


def ensure_meta(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {META_SCHEMA}")
    con.execute(
        f"""create table if not exists {COMMITS} (
            feature_group varchar not null,
            commit_id integer not null,
            commit_time timestamp not null,
            inserted bigint not null,
            updated bigint not null,
            deleted bigint not null,
            rows bigint not null,
            run_id varchar,
            recorded_at timestamp not null,
            primary key (feature_group, commit_id)
        )"""
    )


def _snapshot_parts(fg: FeatureGroup) -> tuple[str, str]:
    assert fg.snapshot_relation and fg.snapshot_schema
    return fg.snapshot_schema, fg.snapshot_name


def is_published(con: duckdb.DuckDBPyConnection, fg: FeatureGroup) -> bool:
    return fg.snapshot_schema is not None and relation_exists(con, fg.snapshot_schema, fg.snapshot_name)


def sync_commits(con: duckdb.DuckDBPyConnection, fg: FeatureGroup, run_id: str | None = None) -> list[Commit]:
    """Append the commits the snapshot has and the log has not yet; return the new ones."""
    ensure_meta(con)
    if not is_published(con, fg):
        return []
    last = con.execute(
        f"select max(commit_id), max(commit_time) from {COMMITS} where feature_group = ?", [fg.name]
    ).fetchall()[0]
    last_id, last_time = (last[0] or 0), (last[1] or datetime(1, 1, 1))
    snap = fg.snapshot_relation
    keys = fg.key_columns
    on = " and ".join(f"c.{quote_ident(k)} is not distinct from n.{quote_ident(k)}" for k in keys)
    key_list = ", ".join(quote_ident(k) for k in keys)
    rows = con.execute(
        f"""
        with new_rows as (
            select dbt_valid_from as t, {key_list}, coalesce(dbt_is_deleted, 'False') = 'True' as is_del
            from {snap} where dbt_valid_from > ?
        ),
        closed as (
            select dbt_valid_to as t, {key_list}, coalesce(dbt_is_deleted, 'False') = 'True' as is_del
            from {snap} where dbt_valid_to > ?
        ),
        classified as (
            select n.t, n.is_del,
                   exists (select 1 from closed c where c.t = n.t and not c.is_del and {on}) as had_live
            from new_rows n
        )
        select t,
               count(*) filter (where not is_del and not had_live) as inserted,
               count(*) filter (where not is_del and had_live) as updated,
               count(*) filter (where is_del) as deleted,
               (select count(*) from {snap} s
                 where s.dbt_valid_from <= classified.t
                   and (s.dbt_valid_to is null or s.dbt_valid_to > classified.t)
                   and coalesce(s.dbt_is_deleted, 'False') <> 'True') as total
        from classified
        group by t
        order by t
        """,
        [last_time, last_time],
    ).fetchall()
    new = []
    now = utcnow()
    for i, (t, ins, upd, dele, total) in enumerate(rows, start=1):
        c = Commit(fg.name, last_id + i, t, ins, upd, dele, total, run_id)
        con.execute(
            f"insert into {COMMITS} values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [c.feature_group, c.commit_id, c.commit_time, c.inserted, c.updated, c.deleted, c.rows, run_id, now],
        )
        new.append(c)
    return new


def list_commits(con: duckdb.DuckDBPyConnection, fg: FeatureGroup) -> list[Commit]:
    if not relation_exists(con, META_SCHEMA, "commits"):
        return []
    rows = con.execute(
        f"""select feature_group, commit_id, commit_time, inserted, updated, deleted, rows, run_id
            from {COMMITS} where feature_group = ? order by commit_id""",
        [fg.name],
    ).fetchall()
    return [Commit(*r) for r in rows]


def resolve_as_of(
    con: duckdb.DuckDBPyConnection, fg: FeatureGroup, as_of: str | datetime | None, commit: int | None
) -> datetime | None:
    """The commit time to read at: from a commit id, a timestamp, or None for the latest."""
    if as_of is not None and commit is not None:
        raise FeatureStoreError("give either as_of or commit, not both", fix="drop one of --as-of / --commit")
    commits = list_commits(con, fg)
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


def published_query(fg: FeatureGroup, as_of: datetime | None) -> tuple[str, list]:
    """SQL (and its parameters) for the feature group as published at `as_of` (None = now)."""
    cols = ", ".join(quote_ident(c) for c in fg.column_names)
    order = ", ".join(quote_ident(c) for c in fg.key_columns)
    live = "coalesce(dbt_is_deleted, 'False') <> 'True'"
    if as_of is None:
        return f"select {cols} from {fg.snapshot_relation} where dbt_valid_to is null and {live} order by {order}", []
    return (
        f"""select {cols} from {fg.snapshot_relation}
            where dbt_valid_from <= ? and (dbt_valid_to is null or dbt_valid_to > ?) and {live}
            order by {order}""",
        [as_of, as_of],
    )


def read_published(
    con: duckdb.DuckDBPyConnection, fg: FeatureGroup, as_of: datetime | None = None
) -> pa.Table:
    if not is_published(con, fg):
        raise FeatureStoreError(
            f"feature group {fg.name} has never been published", fix=f"run `fs run --select {fg.model}` first"
        )
    sql, params = published_query(fg, as_of)
    return con.sql(sql, params=params).to_arrow_table()
