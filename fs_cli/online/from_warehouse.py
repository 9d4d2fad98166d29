"""`fs materialize` / `fs run`'s last step: read published feature groups from the warehouse, materialize them.

Incremental by default: the online version remembers the snapshot time it reflects (watermark) and the `now`
it was computed at. The next run re-materializes only entities whose snapshot rows changed after the
watermark (inserted, updated or deleted by later commits) plus entities with a row whose event_time fell into
(previous now, now] (future-dated rows that became current). A schema change, a first run, `--full`, or a
change touching more than half of the published rows falls back to a full, atomically flipped rewrite.

Everything goes through the project's `Warehouse` (DuckDB, Postgres, later Spark): the latest row per key within
TTL is picked in the warehouse with a window function (portable SQL), read as Arrow, and packed for the online
store with Arrow compute (fs_cli/online/materialize.py). The online store never opens the warehouse.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from ..commits import is_published, published_query, sync_project
from ..errors import FeatureStoreError
from ..timeutil import utcnow
from ..warehouse import Warehouse
from ..warehouse.lock import writer_lock
from .backends import DEFAULT_SQLITE_NAME, default_url, open_store
from .materialize import MaterializeResult, Progress, keys_of, materialize
from .push import publish_push_specs
from .specs import FGSpec, FVSpec
from .store import OnlineStore, StaleVersionError, SupersededError
from .withhold import Unvalidated, unvalidated_commits

FULL_IF_CHANGED_SHARE = 0.5


def online_specs(catalog: Any) -> tuple[dict[str, FGSpec], dict[str, FVSpec], list[str]]:
    """FG specs of every online FG, FV specs of every view servable online, and warnings for the others."""
    fgs = {name: FGSpec.from_feature_group(fg) for name, fg in catalog.feature_groups.items() if fg.online}
    views: dict[str, FVSpec] = {}
    warnings: list[str] = []
    for name, fv in catalog.feature_views.items():
        try:
            views[name] = FVSpec.from_resolved(fv.resolved(), fgs, fv.description)
        except FeatureStoreError as e:
            warnings.append(f"feature view {name} is not served online: {e.message}")
    return fgs, views, warnings


def default_store_url(project: Any) -> str:
    """$FS_ONLINE_STORE, else the SQLite file in the project's state folder (.fs/online_store.sqlite, next to the
    DuckDB file) whatever the warehouse: `fs materialize` writes it and `fs serve` reads it without the warehouse."""
    return default_url(project.state_dir / DEFAULT_SQLITE_NAME)  # default_url takes a file in that folder


def _naive_utc(t: datetime | None) -> datetime | None:
    if t is not None and t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t


def _watermark(wh: Warehouse, fg: Any) -> datetime | None:
    """The latest snapshot instant (a commit opening or closing a row): what the online version reflects."""
    row = wh.fetchone(f"select max(dbt_valid_from), max(dbt_valid_to) from {fg.snapshot_relation}") or (None, None)
    times = [_naive_utc(t) for t in row if t is not None]
    return max(times) if times else None


def _changed_keys_query(wh: Warehouse, fg: Any, spec: FGSpec, since: datetime, prev_now: datetime,
                        now: datetime) -> tuple[str, list[Any]]:
    """Keys whose snapshot rows a commit after `since` opened or closed, or whose live row's event time fell into
    (prev_now, now] (future-dated rows that became current)."""
    pk = ", ".join(wh.quote(k) for k in spec.keys)
    et = wh.quote(spec.event_time)
    return (f"select distinct {pk} from {fg.snapshot_relation} "
            f"where dbt_valid_from > ? or dbt_valid_to > ? "
            f"or (dbt_valid_to is null and {et} > ? and {et} <= ?)", [since, since, prev_now, now])


def latest_query(wh: Warehouse, fg: Any, spec: FGSpec, now: datetime,
                 only_keys: tuple[str, list[Any]] | None = None,
                 start: datetime | None = None) -> tuple[str, list[Any]]:
    """SQL (and parameters) for the latest published row per key within TTL at `now`: the point-in-time rule with
    `now` as spine time (greatest event_time <= now and >= now - ttl; ties: the latest created time). Portable:
    a window function over the published rows (DuckDB, Postgres, Spark), so only one row per key leaves the
    warehouse. `only_keys`: a query of distinct keys to restrict to (incremental runs). `start`: only rows with
    event_time >= start (`fs materialize --start`)."""
    q = wh.quote
    pub_sql, params = published_query(fg, None, q)
    params = list(params)
    pk = [q(k) for k in spec.keys]
    et = f"cast(fs_pub.{q(spec.event_time)} as timestamp)"
    order = f"{et} desc"
    if spec.created_time:
        order += f", cast(fs_pub.{q(spec.created_time)} as timestamp) desc nulls last"
    join = ""
    if only_keys is not None:
        keys_sql, keys_params = only_keys
        on = " and ".join(f"fs_pub.{k} = fs_keys.{k}" for k in pk)
        join = f" join ({keys_sql}) fs_keys on {on}"
        params += keys_params
    where = [f"{et} <= ?", *(f"fs_pub.{k} is not null" for k in pk)]
    params.append(now)
    if spec.ttl_seconds:
        where.append(f"{et} >= ?")
        params.append(now - timedelta(seconds=spec.ttl_seconds))
    if start is not None:
        where.append(f"{et} >= ?")
        params.append(start)
    cols = [*spec.keys, spec.event_time, *([spec.created_time] if spec.created_time else []), *spec.feature_names]
    out = ", ".join(q(c) for c in dict.fromkeys(cols))
    partition = ", ".join(f"fs_pub.{k}" for k in pk)
    return (f"select {out} from (select fs_pub.*, row_number() over (partition by {partition} order by {order}) "
            f"as fs_latest_rank from ({pub_sql}) fs_pub{join} where {' and '.join(where)}) fs_latest "
            f"where fs_latest_rank = 1", params)


def _count(wh: Warehouse, query: tuple[str, list[Any]]) -> int:
    """Rows a query returns, counted in the warehouse (a plain value: no Arrow)."""
    sql, params = query
    return int(wh.scalar(f"select count(*) from ({sql}) fs_counted", params) or 0)


def _published_count(wh: Warehouse, fg: Any) -> int:
    return _count(wh, published_query(fg, None, wh.quote))


_PLAN_ATTEMPTS = 4


def materialize_feature_group(
    wh: Warehouse, fg: Any, store: OnlineStore, now: datetime, views: dict[str, FVSpec] | None,
    full: bool = False, progress: Progress | None = None, start: datetime | None = None, rewind: bool = False,
    unvalidated: dict[str, Any] | None = None,
) -> MaterializeResult:
    """Materialize one published FG: incrementally when the online version has the same schema and the change
    since its watermark is small, else a full rewrite. Reads one row per key from the warehouse (as Arrow).
    `start` (a range [start, now]) forces a full rewrite and stores no watermark, so the next run is full too (an
    incremental run cannot tell which entities the start bound left out).

    Concurrent runs: if another materialization published between our plan and our publish (the store refuses the
    publish atomically: SupersededError, nothing written), plan again from the new serving version; if the serving
    version has newer data than ours, StaleVersionError propagates (nothing written; `rewind` publishes anyway).
    `unvalidated`: served although no passing validation run covers these commits (recorded in the version's
    meta["note"]["unvalidated"], fs_cli/online/withhold.py)."""
    for attempt in range(_PLAN_ATTEMPTS):
        try:
            return _materialize_once(wh, fg, store, now, views, full, progress, start, rewind, unvalidated)
        except StaleVersionError:
            raise
        except (SupersededError, _WarehouseMoved):
            if attempt == _PLAN_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


class _WarehouseMoved(SupersededError):
    """A commit landed while we read the rows: the data version is not known exactly, read again."""


def _materialize_once(wh: Warehouse, fg: Any, store: OnlineStore, now: datetime, views: dict[str, FVSpec] | None,
                      full: bool, progress: Progress | None, start: datetime | None,
                      rewind: bool, unvalidated: dict[str, Any] | None = None) -> MaterializeResult:
    spec = FGSpec.from_feature_group(fg)
    wm = _watermark(wh, fg)
    watermark = {"commit_time": wm.isoformat() if wm and start is None else None}
    note = {"unvalidated": unvalidated} if unvalidated else None  # served without a passing validation run
    published_rows: int | None = None  # what a full run considers (the report's input rows): counted when needed
    ptr = store.pointers().get(spec.name)
    prev = (ptr.meta.get("watermark") or {}).get("commit_time") if ptr else None
    # "data_version" in meta: versions published before publishes were ordered get one full rewrite first
    can_incr = (not full and start is None and ptr is not None and ptr.meta.get("spec") == spec.to_dict() and prev
                and ptr.meta.get("now") and "data_version" in ptr.meta)
    if can_incr:
        since, prev_now = datetime.fromisoformat(prev), datetime.fromisoformat(ptr.meta["now"])
        changed_query = _changed_keys_query(wh, fg, spec, since, prev_now, now)
        if _count(wh, changed_query) == 0:  # nothing new: plain rows only, no Arrow (fs_cli/online/materialize.py)
            _check_watermark_still(wh, fg, wm)
            return materialize(store, spec, None, now, views=views, changed=[], watermark=watermark,
                               progress=progress, input_rows=0, base=ptr, note=note)
        changed = wh.arrow(*changed_query)
        published_rows = _published_count(wh, fg)
        # compare with the published size (what a full run would read), not the online size (TTL may empty it)
        if changed.num_rows <= max(1, FULL_IF_CHANGED_SHARE * published_rows):
            rows = wh.arrow(*latest_query(wh, fg, spec, now, only_keys=changed_query))
            _check_watermark_still(wh, fg, wm)
            return materialize(store, spec, rows, now, views=views, changed=keys_of(spec, changed),
                               watermark=watermark, progress=progress, input_rows=changed.num_rows, base=ptr,
                               note=note)
    if published_rows is None:
        published_rows = _published_count(wh, fg)
    rows = wh.arrow(*latest_query(wh, fg, spec, now, start=start))
    _check_watermark_still(wh, fg, wm)
    return materialize(store, spec, rows, now, views=views, watermark=watermark, progress=progress,
                       input_rows=published_rows, start=start, rewind=rewind, note=note)


def _check_watermark_still(wh: Warehouse, fg: Any, before: datetime | None) -> None:
    """The rows just read must be the snapshot state the watermark names (it orders publishes): a commit that
    landed during the read (possible on a server warehouse) means reading again."""
    if _watermark(wh, fg) != before:
        raise _WarehouseMoved(f"feature group {fg.name}: a commit landed while its rows were read")


def materialize_project(
    project: Any,
    catalog: Any,
    names: Sequence[str] = (),
    *,
    store: OnlineStore | None = None,
    full: bool = False,
    now: datetime | None = None,
    progress_factory: Callable[[str], Progress | None] | None = None,
    start: datetime | None = None,
    allow_unvalidated: bool = False,
) -> tuple[list[MaterializeResult], list[str]]:
    """Materialize the named online FGs (default: all online FGs) from the project's warehouse (its dbt target,
    whichever engine). Returns results + warnings. `now` is the end of the range (default: the clock), `start` its
    optional beginning: per entity the latest row with max(start, now - ttl) <= event_time <= now (Feast's
    materialize(start_date, end_date)); a range is always a full rewrite.

    Ordering: a run on the clock (`now` not given) never replaces a version with newer data (a concurrent run that
    published first): it is refused, nothing is written, and a warning says so. An explicit `now`/`start` is a
    deliberate backfill: it replaces the serving version even when that one is newer (until the next run).

    Validation (fs_cli/online/withhold.py): a `strict` group whose published rows no passing validation run covers
    (published by plain `dbt build` / `dbt snapshot`) is withheld -- the store keeps serving its previous version, or
    nothing -- with a warning naming the commits and the fix, unless `allow_unvalidated` (then served, and the
    commits are recorded with the version: meta["note"]); a `warn` group is served with a warning.
    One writer at a time: runs under the project's writer lock (fs_cli/warehouse/lock.py)."""
    fgs, views, warnings = online_specs(catalog)
    selected = list(names) or sorted(fgs)
    for n in selected:
        fg = catalog.fg(n)  # unknown names raise with a suggestion
        if not fg.online:
            raise FeatureStoreError(f"feature group {n} is not online",
                                    fix=f"set `online: true` in its config.meta.fs to serve it, or drop {n} from the command")
    own = store is None
    store = store or open_store(default_store_url(project))
    rewind = now is not None or start is not None  # a backfill to a chosen time, not a run on the clock
    full = full or rewind  # an incremental update only moves forward from the serving version
    results: list[MaterializeResult] = []
    try:
        with writer_lock(project):
            now = now or utcnow()  # after any wait for the lock
            _materialize_selected(project, catalog, selected, store, views, warnings, results, now, full,
                                  progress_factory, start, rewind, allow_unvalidated)
    finally:
        if own:
            store.close()
    return results, warnings


def _materialize_selected(project: Any, catalog: Any, selected: list[str], store: OnlineStore,
                          views: dict[str, FVSpec], warnings: list[str], results: list[MaterializeResult],
                          now: datetime, full: bool, progress_factory: Callable[[str], Progress | None] | None,
                          start: datetime | None, rewind: bool, allow_unvalidated: bool) -> bool:
    """The body of materialize_project, under the writer lock (appends to `results` and `warnings`); whether a
    publish was refused as stale."""
    refused = False
    sync_project(project, [catalog.fg(n) for n in selected])  # a plain-dbt publish gets its commit id first
    with project.warehouse(read_only=True) as wh:
        views = _with_transforms(wh, catalog, views, warnings)
        for n in selected:
            fg = catalog.fg(n)
            if not is_published(wh, fg):
                warnings.append(f"{n} has never been published: nothing to materialize (run `fs run`)")
                continue
            unvalidated = unvalidated_commits(wh, catalog, fg)
            if unvalidated is not None and fg.policy == "strict" and not allow_unvalidated:
                warnings.append(_withheld_message(store, fg, unvalidated))
                continue
            note = None
            if unvalidated is not None:
                note = {**unvalidated.to_dict(), "allowed": bool(allow_unvalidated)}
                warnings.append(f"{n}: served although no passing validation run covers {unvalidated.names} "
                                + ("(--allow-unvalidated, recorded with the online version)"
                                   if fg.policy == "strict" else "(policy warn)"))
            progress = progress_factory(n) if progress_factory else None
            try:
                results.append(materialize_feature_group(wh, fg, store, now, views, full=full, progress=progress,
                                                         start=start, rewind=rewind, unvalidated=note))
            except StaleVersionError as e:
                refused = True  # nothing written for it, nor the views below: newer ones are serving
                warnings.append(f"{n}: {e.message.removeprefix(f'feature group {n}: ')}")
    if not results and not refused:
        store.publish_views(views)
    publish_push_specs(store, catalog)  # what the service checks pushed rows against (fs_cli/online/push.py)
    return refused


def _withheld_message(store: OnlineStore, fg: Any, unvalidated: Unvalidated) -> str:
    """Which group and commits were withheld, why, what keeps serving, and the fix (one warning line)."""
    ptr = store.pointers().get(fg.name)
    serving = "nothing" if ptr is None else (
        f"its previous version {ptr.version} (data up to commit time "
        f"{(ptr.meta.get('watermark') or {}).get('commit_time') or 'unknown'})")
    how = ("`fs run` audits only the new batches of an incremental group: re-ingest those rows through `fs run`"
           if unvalidated.incremental else f"`fs run --select {fg.model}` validates and publishes the group")
    return (f"{fg.name}: withheld from serving: no passing validation run covers {unvalidated.names} of this "
            "strict group (published by plain `dbt build` / `dbt snapshot`: the future-time, PII and drift checks "
            f"never ran); the online store keeps serving {serving}. Fix: {how}, or "
            f"`fs materialize --allow-unvalidated {fg.name}` serves it anyway (recorded with the online version)")


def _with_transforms(wh: Warehouse, catalog: Any, views: dict[str, FVSpec], warnings: list[str]) -> dict[str, FVSpec]:
    """Publish each view with its training datasets' fitted transformations and on-demand features;
    a problem there is a warning: the features themselves are still served."""
    from .td_statistics import attach_to_views

    try:
        return attach_to_views(wh, catalog, views)
    except Exception as e:  # noqa: BLE001 - e.g. a TD table written by an older version
        warnings.append(f"transformations not published: {e}")
        return views


def post_publish_materialize(project: Any, catalog: Any, outcomes: dict[str, Any],
                             allow_unvalidated: bool = False) -> None:
    """`fs run` hook: materialize every online FG that was just published; a failure is a warning, not a rollback
    (the publish stands; the online store keeps serving its previous version). `allow_unvalidated`: as in
    materialize_project (`fs run` links its validation first, so its own commits are covered)."""
    names = [n for n, o in outcomes.items() if o.published and catalog.feature_groups[n].online]
    if not names:
        return
    try:
        results, warnings = materialize_project(project, catalog, names, allow_unvalidated=allow_unvalidated)
    except Exception as e:  # noqa: BLE001 - reported on every published FG, the run itself succeeded
        for n in names:
            outcomes[n].warnings.append(f"online materialization failed: {e}")
        return
    for r in results:
        outcomes[r.feature_group].materialized = r.written
    for w in warnings:
        for n in names:
            if w.startswith(n):
                outcomes[n].warnings.append(w)
