"""What materialization publishes with a feature view for the online service: every training dataset (TD)
version's fitted transformation statistics and on-demand features, read from the warehouse's TD metadata, in the
view's FVSpec.extra["transforms"] (the shape fs_cli.transforms.served_vector reads)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..training import list_tds
from ..transforms.served_vector import EXTRA_KEY

if TYPE_CHECKING:
    from ..declarations.model import Catalog, FeatureView
    from ..warehouse import Warehouse
    from .specs import FVSpec


def _served_to_td_columns(fv: FeatureView, spec: FVSpec) -> dict[str, str]:
    """Value name the online reader answers with (the view's output name, prefix applied) -> TD column. Both come
    from the one resolved declaration, so they agree; a ref is matched by position among refs of the same name."""
    td_cols: dict[tuple[str, str], list[str]] = {}
    for out, fg, f in fv.feature_columns:
        td_cols.setdefault((fg, f), []).append(out)
    taken: dict[tuple[str, str], int] = {}
    columns: dict[str, str] = {}
    for ref, served in zip(spec.features, spec.output_names, strict=True):
        fg, f = ref.split(":", 1)
        outs = td_cols.get((fg, f), [])
        i = taken.get((fg, f), 0)
        taken[(fg, f)] = i + 1
        if served in outs:
            columns[served] = served
        elif i < len(outs):
            columns[served] = outs[i]
    return columns


def view_transforms_extra(wh: Warehouse, fv: FeatureView, spec: FVSpec) -> dict[str, Any] | None:
    """The `transforms` entry to publish with a view: every TD version's fitted statistics, read from the
    warehouse's training-dataset metadata (fs_cli.training.list_tds)."""
    tds = [td for td in list_tds(wh, fv.name) if td.statistics]
    versions = {str(td.version): td.statistics["transformations"] for td in tds
                if td.statistics.get("transformations")}
    latest_od = next((td.statistics.get("on_demand") for td in reversed(tds) if td.statistics.get("on_demand")), None)
    if not versions and not latest_od:
        return None
    return {"latest": max((int(v) for v in versions), default=None), "versions": versions,
            "on_demand": latest_od or [], "columns": _served_to_td_columns(fv, spec)}


def attach_to_views(wh: Warehouse, catalog: Catalog, views: Mapping[str, FVSpec]) -> dict[str, FVSpec]:
    """FVSpecs with their `transforms` extra filled in (views without fitted statistics unchanged)."""
    out: dict[str, FVSpec] = {}
    for name, spec in views.items():
        fv = catalog.feature_views.get(name)
        extra = view_transforms_extra(wh, fv, spec) if fv is not None else None
        out[name] = spec if extra is None else dataclasses.replace(spec, extra={**spec.extra, EXTRA_KEY: extra})
    return out
