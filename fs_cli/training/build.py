"""Creating a version: compile the feature view, build it under a temporary name, publish atomically."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..commits import list_commits, sync_commits
from ..declarations.model import Catalog, FeatureView
from ..errors import DeclarationError, FeatureStoreError
from ..project import Project
from ..timeutil import parse_timestamp, utcnow
from ..warehouse import Warehouse
from ..warehouse.retry import in_transaction
from .content import canonical_order, content_hash, order_by
from .split import SplitSpec
from .store import (
    _JSON,
    _META_COLUMNS,
    SPLIT_COLUMN,
    TD_META,
    TD_SCHEMA,
    TrainingDataset,
    ensure_td_meta,
    get_td,
    table_name,
)

BUILDING_PREFIX = "__building_"
# A `__building_*` table of another process is dropped only once older than this (a live build on a server
# warehouse may take a while; on DuckDB only one process writes, so any table not in _IN_PROGRESS is dead).
ABANDONED_AFTER_S = 6 * 3600
_IN_PROGRESS: set[str] = set()  # temporary tables this process is building right now
_IN_PROGRESS_LOCK = threading.Lock()


# A step run on the finished (still temporary) table before it is published, e.g. fitting the view's
# transformations on the train split (fs_cli.training_transforms.fit_training_dataset). The caller passes the steps
# to create()/build() (the SDK composes them). f(warehouse, relation, feature_view, metadata) -> dict merged into
# the version's `statistics`, or None.
TDBuildStep = Callable[[Warehouse, str, FeatureView, dict[str, Any]], dict[str, Any] | None]


# -- creation ----------------------------------------------------------------------------------------------------

def _commits_read(wh: Warehouse, catalog: Catalog, fv: FeatureView, read_at: datetime) -> list[dict[str, Any]]:
    """The commit of each feature group that was current at `read_at`."""
    out = []
    for name in dict.fromkeys(s.feature_group for s in fv.selections):
        fg = catalog.fg(name)
        sync_commits(wh, fg)  # picks up publishes made by plain `dbt snapshot`
        commits = list_commits(wh, fg)
        if not commits:
            raise FeatureStoreError(f"feature view {fv.name} reads feature group {name}, which was never published",
                                    fix=f"publish it first: `fs run --select {fg.model}`")
        current = [c for c in commits if c.commit_time <= read_at]
        if not current:
            raise FeatureStoreError(
                f"feature group {name} was first published at {commits[0].commit_time}, after as_of {read_at}",
                fix=f"use an --as-of at or after {commits[0].commit_time} (see `fs commits {name}`)")
        c = current[-1]
        out.append({"feature_group": name, "commit_id": c.commit_id, "commit_time": c.commit_time.isoformat(sep=" ")})
    return out


def compile_feature_view(project: Project, fv: FeatureView, read_at: datetime | None) -> str:
    """The feature view's SQL as dbt compiles it (the macro), reading the feature groups as of `read_at`.

    dbt compiles it once per project state (fs_cli/manifest_cache.py `compiled_key`: files, profile, target, vars,
    declaration, dbt's versions) with a sentinel read time; later calls put the read time into the sentinel's
    literal without starting dbt."""
    from .. import manifest_cache

    extra: dict = {}
    if "fs_resolved_views" not in project.vars:  # the macro joins what fs resolved, not a second reading of the YAML
        extra["fs_resolved_views"] = {fv.name: fv.resolved()}
    sentinel = f"'{manifest_cache.AS_OF_SENTINEL}'"
    key = manifest_cache.compiled_key(project, fv.name, {**extra, "fs_as_of": read_at is not None})
    sql = manifest_cache.cached_compiled(project, key)
    if sql is None:
        as_of = {"fs_as_of": manifest_cache.AS_OF_SENTINEL} if read_at is not None else {}
        sql = _dbt_compile(project, fv, {**extra, **as_of})
        if read_at is None or sentinel in sql:
            manifest_cache.store_compiled(project, key, sql)
    if read_at is None:
        return sql
    if sentinel not in sql:  # a macro that formats the time otherwise: compile with the real one
        return _dbt_compile(project, fv, {**extra, "fs_as_of": read_at.isoformat(sep=" ")})
    return sql.replace(sentinel, f"'{read_at.isoformat(sep=' ')}'")


def _dbt_compile(project: Project, fv: FeatureView, extra: dict[str, Any]) -> str:
    res = project.with_vars(extra).dbt(["compile", "--log-level", "none", "--select", fv.name])
    node = next((r.node for r in res.results if r.node.unique_id == fv.unique_id), None)
    if not res.success or node is None or not node.compiled_code:
        why = res.exception or next((r.message for r in res.results if r.message), None) or "no compiled SQL"
        raise FeatureStoreError(f"dbt could not compile feature view {fv.name}: {str(why).strip()}",
                                fix=f"run `dbt compile --select {fv.name}` to see the full error")
    return node.compiled_code.strip().rstrip(";")


def _check_spine(wh: Warehouse, fv: FeatureView) -> None:
    """The spine's columns, checked against the warehouse (its YAML need not list them)."""
    try:
        have = wh.query_columns(f"select * from {fv.spine_relation}")
    except FeatureStoreError:
        raise
    except Exception as e:  # noqa: BLE001 - any driver's "no such relation"
        raise FeatureStoreError(f"feature view {fv.name}: cannot read spine {fv.spine_model}: {str(e).splitlines()[0]}",
                                fix=f"build it first: `dbt run --select {fv.spine_model}` (or `fs run`)") from None
    missing = [c for c in fv.spine_columns if c not in have]
    if missing:
        raise DeclarationError([FeatureStoreError(
            f"feature view {fv.name} ({fv.path}): config.meta.fs.feature_view.spine uses column(s) "
            f"{', '.join(missing)}, which spine model {fv.spine_model} does not have",
            fix=f"use columns of {fv.spine_model} ({', '.join(have)}) or add them to the model")])


_BUILDING_STAMP = re.compile(r"_(\d{10})_[0-9a-f]{12}$")


def _building_name(feature_view: str) -> str:
    return f"{BUILDING_PREFIX}{feature_view}_{int(time.time())}_{uuid.uuid4().hex[:12]}"


def _drop_abandoned(wh: Warehouse) -> None:
    """Drop `__building_*` tables of builds that died: not this process's, and unstamped or older than
    ABANDONED_AFTER_S (another process may be building on a server warehouse right now)."""
    now = time.time()
    with _IN_PROGRESS_LOCK:
        mine = set(_IN_PROGRESS)
    for name in wh.tables(TD_SCHEMA):
        if not name.startswith(BUILDING_PREFIX) or name in mine:
            continue
        stamp = _BUILDING_STAMP.search(name)
        if stamp is None or now - int(stamp.group(1)) > ABANDONED_AFTER_S:
            wh.drop_table(wh.relation(TD_SCHEMA, name))


def _roles(fv: FeatureView) -> dict[str, dict[str, Any]]:
    roles: dict[str, dict[str, Any]] = {c: {"role": "key"} for c in fv.key_columns}
    roles[fv.spine_timestamp] = {"role": "timestamp"}
    for c in fv.spine_extra:
        roles.setdefault(c, {"role": "spine"})
    for c in fv.labels:
        roles[c] = {"role": "label"}
    for out, fg, f in fv.feature_columns:
        roles[out] = {"role": "feature", "feature_group": fg, "feature": f}
    for d in fv.on_demand:
        if isinstance(d, dict) and d.get("name"):
            roles[str(d["name"])] = {"role": "on_demand", "feature_group": None, "feature": str(d["name"])}
    roles[SPLIT_COLUMN] = {"role": "split"}
    return roles




# -- build and publish -----------------------------------------------------------------------------------------------

def build(wh: Warehouse, fv: FeatureView, sql: str, meta: dict[str, Any], split: SplitSpec,
          steps: Sequence[TDBuildStep] = ()) -> TrainingDataset:
    """Materialize compiled feature-view SQL as the next version of `fv`'s training dataset (see module doc)."""
    ensure_td_meta(wh)
    _drop_abandoned(wh)
    tmp = _building_name(fv.name)
    tmp_rel = wh.relation(TD_SCHEMA, tmp)
    with _IN_PROGRESS_LOCK:
        _IN_PROGRESS.add(tmp)
    try:
        out_types = dict(wh.describe(f"({sql})"))
        out_cols = list(out_types)
        missing = [c for c in fv.output_columns if c not in out_cols]
        if missing or SPLIT_COLUMN in out_cols:
            raise FeatureStoreError(f"feature view {fv.name} compiled to columns {out_cols}, expected {fv.output_columns}",
                                    fix="the model must be `{{ feature_store.fs_feature_view() }}`; rerun `dbt parse`")
        order = canonical_order(fv, out_cols)
        text, double = wh.type("text"), wh.type("double")
        draw_sql, draw_params = split.draw_sql("__fs_row", text)
        label_sql, label_params = split.label_sql(wh.quote(fv.spine_timestamp), "__fs_u", text)
        cols = ", ".join(wh.quote(c) for c in out_cols)
        wh.execute(
            f"""create table {tmp_rel} as
            with __fs_fv as ({sql}),
            __fs_numbered as (select *, row_number() over (order by {order_by(wh, order, out_types)}) as __fs_row
                              from __fs_fv),
            __fs_hashed as (select *, {draw_sql} as __fs_h from __fs_numbered),
            __fs_drawn as (select *, {SplitSpec.uniform_sql("__fs_h", double)} as __fs_u from __fs_hashed)
            select {cols}, {label_sql} as {wh.quote(SPLIT_COLUMN)}
            from __fs_drawn order by __fs_row""",
            [*draw_params, *label_params],
        )
        types = wh.describe(tmp_rel)
        split_col = wh.quote(SPLIT_COLUMN)
        counts = dict(wh.fetchall(f"select {split_col}, count(*) from {tmp_rel} group by {split_col}"))
        row_counts = {n: int(counts.get(n, 0)) for n in split.names}
        row_counts.update({k: int(v) for k, v in counts.items() if k not in row_counts})
        ts = wh.quote(fv.spine_timestamp)
        start, end = wh.fetchone(f"select min({ts}), max({ts}) from {tmp_rel}")
        roles = _roles(fv)
        columns = [{"name": n, "type": t, **roles.get(n, {"role": "spine"})} for n, t in types]
        meta = dict(meta)
        meta.update(
            split=split.to_dict(), row_counts=row_counts, rows=sum(row_counts.values()),
            spine_start=start, spine_end=end, columns=columns,
            features=[c for c in columns if c["role"] in ("feature", "on_demand")],
            labels=list(fv.labels),
            content_hash=content_hash(wh, tmp_rel, [*order, SPLIT_COLUMN], types),
        )
        stats: dict[str, Any] = {}
        for step in steps:
            stats.update(step(wh, tmp_rel, fv, meta) or {})
        meta["statistics"] = stats or None
        return _publish(wh, fv, tmp, meta)
    except BaseException:
        wh.drop_table(tmp_rel)
        raise
    finally:
        with _IN_PROGRESS_LOCK:
            _IN_PROGRESS.discard(tmp)


def _next_version(wh: Warehouse, feature_view: str) -> int:
    """One past the highest version in the metadata or among the tables (a table never gets overwritten)."""
    meta_max = wh.scalar(f"select coalesce(max(version), 0) from {TD_META} where feature_view = ?", [feature_view])
    pat = re.compile(rf"^{re.escape(feature_view)}_v(\d+)$")
    table_max = max((int(m.group(1)) for t in wh.tables(TD_SCHEMA) if (m := pat.match(t))), default=0)
    return max(int(meta_max), table_max) + 1


def _publish(wh: Warehouse, fv: FeatureView, tmp: str, meta: dict[str, Any]) -> TrainingDataset:
    """Allocate the version, rename the table and record it, in one transaction; retried when a concurrent writer
    took the same version (its table name or metadata key: the warehouse reports a write conflict)."""
    placeholders = ", ".join("?" for _ in _META_COLUMNS)
    names = ", ".join(wh.quote(n) for n, _ in _META_COLUMNS)

    def allocate(wh: Warehouse) -> int:
        version = _next_version(wh, fv.name)
        name = table_name(fv.name, version)
        wh.rename_table(TD_SCHEMA, tmp, name)
        row = {**meta, "feature_view": fv.name, "version": version, "table_name": name}
        values = [json.dumps(row[n], default=str) if n in _JSON and row.get(n) is not None else row.get(n)
                  for n, _ in _META_COLUMNS]
        wh.execute(f"insert into {TD_META} ({names}) values ({placeholders})", values)
        return version

    try:
        version = in_transaction(wh, allocate)
    except Exception as e:
        if not wh.is_write_conflict(e):
            raise
        raise FeatureStoreError(f"could not allocate a version of {fv.name}'s training dataset: {e}",
                                fix="another process keeps creating versions; retry") from e
    return get_td(wh, fv.name, version)


def create(project: Project, catalog: Catalog, feature_view: str, as_of: str | datetime | None = None,
           split: str | None = None, description: str | None = None,
           steps: Sequence[TDBuildStep] = ()) -> TrainingDataset:
    """Create the next version of a feature view's training dataset (see module doc)."""
    fv = catalog.fv(feature_view)
    spec = SplitSpec.parse(split)
    now = utcnow()
    asked = parse_timestamp(as_of, where="--as-of") if as_of is not None else None
    if asked is not None and asked > now:
        raise FeatureStoreError(f"--as-of {asked} is in the future (now {now:%Y-%m-%d %H:%M:%S} UTC)",
                                fix="a training dataset can read only commits that exist: use a past commit time")
    # Read at one instant even without --as-of: a commit landing during the build cannot leak in, and the
    # version is reproducible later with --as-of read_at.
    read_at = asked or now
    with project.warehouse() as wh:
        commits = _commits_read(wh, catalog, fv, read_at)
        _check_spine(wh, fv)
    sql = compile_feature_view(project, fv, read_at)  # dbt holds its own connection: ours is closed meanwhile
    meta = {"created_at": now, "as_of": asked, "read_at": read_at, "fg_commits": commits,
            "spine_model": fv.spine_model, "spine_read": "as_of" if fv.spine_versioned else "live",
            "declaration": fv.spec, "description": description}
    with project.warehouse() as wh:
        return build(wh, fv, sql, meta, spec, steps)


