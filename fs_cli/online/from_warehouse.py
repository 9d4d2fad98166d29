"""`fs materialize` / `fs run`'s last step: read published feature groups from the warehouse, materialize them.

Incremental by default: the online version remembers the snapshot time it reflects (watermark) and the `now`
it was computed at. The next run re-materializes only entities whose snapshot rows changed after the
watermark (inserted, updated or deleted by later commits) plus entities with a row whose event_time fell into
(previous now, now] (future-dated rows that became current). A schema change, a first run, `--full`, or a
change touching more than half of the published rows falls back to a full, atomically flipped rewrite.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from ..commits import is_published, published_query
from ..errors import FeatureStoreError
from ..timeutil import utcnow
from ..warehouse import connect, quote_ident
from .materialize import MaterializeResult, Progress, materialize
from .specs import FGSpec, FVSpec
from .store import OnlineStore, default_url, open_store

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


def _watermark(con: Any, fg: Any) -> datetime | None:
    snap = fg.snapshot_relation
    row = con.execute(
        f"select max(greatest(dbt_valid_from, coalesce(dbt_valid_to, dbt_valid_from))) from {snap}"
    ).fetchall()[0]
    return row[0]


def _changed_keys_sql(fg: Any, spec: FGSpec) -> str:
    pk = ", ".join(quote_ident(k) for k in spec.keys)
    et = quote_ident(spec.event_time)
    return (f"select distinct {pk} from {fg.snapshot_relation} "
            f"where dbt_valid_from > ? or dbt_valid_to > ? "
            f"or (dbt_valid_to is null and {et} > ? and {et} <= ?)")


def materialize_feature_group(
    con: Any, fg: Any, store: OnlineStore, now: datetime, views: dict[str, FVSpec] | None,
    full: bool = False, progress: Progress | None = None,
) -> MaterializeResult:
    spec = FGSpec.from_feature_group(fg)
    wm = _watermark(con, fg)
    watermark = {"commit_time": wm.isoformat() if wm else None}
    ptr = store.pointers().get(spec.name)
    prev = (ptr.meta.get("watermark") or {}).get("commit_time") if ptr else None
    can_incr = (not full and ptr is not None and ptr.meta.get("spec") == spec.to_dict() and prev
                and ptr.meta.get("now"))
    if can_incr:
        prev_t, prev_now = datetime.fromisoformat(prev), datetime.fromisoformat(ptr.meta["now"])
        params = [prev_t, prev_t, prev_now, now]
        changed_sql = _changed_keys_sql(fg, spec)
        changed = con.sql(changed_sql, params=params).to_arrow_table()
        # compare with the published size (what a full run would read), not the online size (TTL may empty it)
        published_rows = con.execute(
            f"select count(*) from {fg.snapshot_relation} where dbt_valid_to is null").fetchall()[0][0]
        if changed.num_rows <= max(1, FULL_IF_CHANGED_SHARE * published_rows):
            pub_sql, pub_params = published_query(fg, None)
            using = ", ".join(quote_ident(k) for k in spec.keys)
            rows = con.sql(
                f"select p.* from ({pub_sql}) p semi join ({changed_sql}) c using ({using})",
                params=[*pub_params, *params],
            ).to_arrow_table()
            keys = [tuple(r) for r in zip(*(changed.column(k).to_pylist() for k in spec.keys), strict=True)]
            return materialize(store, spec, rows, now, views=views, changed=keys, watermark=watermark,
                               progress=progress)
    sql, params = published_query(fg, None)
    rows = con.sql(sql, params=params).to_arrow_table()
    return materialize(store, spec, rows, now, views=views, watermark=watermark, progress=progress)


def materialize_project(
    project: Any,
    catalog: Any,
    names: Sequence[str] = (),
    *,
    store: OnlineStore | None = None,
    full: bool = False,
    now: datetime | None = None,
    progress_factory: Callable[[str], Progress | None] | None = None,
) -> tuple[list[MaterializeResult], list[str]]:
    """Materialize the named online FGs (default: all online FGs) from the warehouse. Returns results + warnings."""
    fgs, views, warnings = online_specs(catalog)
    selected = list(names) or sorted(fgs)
    for n in selected:
        fg = catalog.fg(n)  # unknown names raise with a suggestion
        if not fg.online:
            raise FeatureStoreError(f"feature group {n} is not online",
                                    fix=f"set `online: true` in its config.meta.fs to serve it, or drop {n} from the command")
    own = store is None
    store = store or open_store(default_url(project.warehouse_path))
    now = now or utcnow()
    results: list[MaterializeResult] = []
    try:
        with connect(project.warehouse_path, read_only=True) as con:
            views = _with_transforms(con, catalog, views, warnings)
            for n in selected:
                fg = catalog.fg(n)
                if not is_published(con, fg):
                    warnings.append(f"{n} has never been published: nothing to materialize (run `fs run`)")
                    continue
                progress = progress_factory(n) if progress_factory else None
                results.append(materialize_feature_group(con, fg, store, now, views, full=full, progress=progress))
        if not results:
            store.publish_views(views)
    finally:
        if own:
            store.close()
    return results, warnings


def _with_transforms(con: Any, catalog: Any, views: dict[str, FVSpec], warnings: list[str]) -> dict[str, FVSpec]:
    """Publish each view with its training datasets' fitted transformations and on-demand features (issue 6);
    a problem there is a warning: the features themselves are still served."""
    from ..transforms.serving import attach_to_views

    try:
        return attach_to_views(con, catalog, views)
    except Exception as e:  # noqa: BLE001 - e.g. a TD table written by an older version
        warnings.append(f"transformations not published: {e}")
        return views


def post_publish_materialize(project: Any, catalog: Any, outcomes: dict[str, Any]) -> None:
    """`fs run` hook: materialize every online FG that was just published; a failure is a warning, not a rollback
    (the publish stands; the online store keeps serving its previous version)."""
    names = [n for n, o in outcomes.items() if o.published and catalog.feature_groups[n].online]
    if not names:
        return
    try:
        results, warnings = materialize_project(project, catalog, names)
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
