"""Re-publishing feature views with their training datasets' fitted statistics, right after a TD version is
created, so the new version is servable before the next `fs materialize` (which publishes them too)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..transforms.served_vector import EXTRA_KEY
from .backends import open_store
from .from_warehouse import default_store_url, online_specs
from .td_statistics import attach_to_views

if TYPE_CHECKING:
    from ..declarations.model import Catalog
    from ..project import Project
    from .store import OnlineStore


def publish_transforms(project: Project, catalog: Catalog, store: OnlineStore | None = None) -> list[str]:
    """Re-publish the online views with the current TD statistics (run after creating a TD version; `fs
    materialize` does it too). Returns the names of the views that carry statistics."""
    _, views, _ = online_specs(catalog)
    own = store is None
    store = store or open_store(default_store_url(project))
    try:
        with project.warehouse(read_only=True) as wh:
            views = attach_to_views(wh, catalog, views)
        store.publish_views(views)
    finally:
        if own:
            store.close()
    return [n for n, v in views.items() if EXTRA_KEY in v.extra]


def publish_if_online(project: Project, catalog: Catalog) -> str | None:
    """After a TD version is created: make its statistics servable right away if an online store exists (else
    the next `fs materialize` publishes them). Returns a warning instead of failing the TD creation."""
    url = default_store_url(project)
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists() and \
            not os.environ.get("FS_ONLINE_STORE"):
        return None  # nothing is served yet
    try:
        publish_transforms(project, catalog)
    except Exception as e:  # noqa: BLE001 - the TD exists; serving it is the next step's job
        return f"the new statistics were not published to the online store ({e}); run `fs materialize`"
    return None
