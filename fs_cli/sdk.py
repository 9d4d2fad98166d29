"""The Python SDK: `from fs_cli import FeatureStore`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

import pandas as pd
import pyarrow as pa

from . import catalog as _catalog
from .commits import Commit, list_commits, read_published, resolve_as_of, sync_project
from .errors import FeatureStoreError
from .metadata import Catalog
from .pipeline import RunReport, run_pipeline
from .project import Project
from .warehouse import store_exists


class FeatureStore:
    """A feature-store project: its catalog, its published feature groups and their history.

    >>> fs = FeatureStore(".")
    >>> fs.read("fg_customer_profile", as_of="2026-01-15")      # pandas DataFrame
    """

    def __init__(self, project_dir: str | os.PathLike | None = None, target: str | None = None,
                 vars: dict[str, Any] | None = None):
        self.project = Project(project_dir, target=target, vars=vars)

    # -- catalog -----------------------------------------------------------------------------------------
    @property
    def catalog(self) -> Catalog:
        return _catalog.load(self.project)

    def list(self) -> list[dict[str, Any]]:
        return _catalog.list_feature_groups(self.project)

    def describe(self, name: str) -> dict[str, Any]:
        return _catalog.describe(self.project, name)

    def search(self, text: str) -> list[dict[str, Any]]:
        return _catalog.search(self.project, text)

    # -- pipeline ----------------------------------------------------------------------------------------
    def run(self, select: tuple[str, ...] = (), materialize: bool = True,
            progress: Callable[[str, int], None] | None = None) -> RunReport:
        """Build, validate and publish the selected feature groups, then link validation results to the new commits
        and (unless `materialize=False`) refresh the online store. The steps are composed here, explicitly."""
        from .online.from_warehouse import post_publish_materialize
        from .validation import pipeline_check, post_publish_link

        post_publish = [post_publish_link] + ([post_publish_materialize] if materialize else [])
        return run_pipeline(self.project, select=select, progress=progress, checks=[pipeline_check],
                            post_publish=post_publish)

    # -- history -----------------------------------------------------------------------------------------
    def commits(self, feature_group: str) -> list[Commit]:
        fg = self.catalog.fg(feature_group)
        if not store_exists(self.project):
            return []
        sync_project(self.project, [fg])  # picks up publishes made by plain `dbt snapshot` or a killed run
        with self.project.warehouse(read_only=True) as wh:
            return list_commits(wh, fg)

    def read(
        self,
        feature_group: str,
        as_of: str | datetime | None = None,
        commit: int | None = None,
        format: Literal["pandas", "arrow"] = "pandas",
    ) -> pd.DataFrame | pa.Table:
        """The feature group as published at `as_of` (commit time) or at commit `commit`; now by default."""
        fg = self.catalog.fg(feature_group)
        sync_project(self.project, [fg])  # commit ids / times a read resolves are the snapshot's, logged or not
        with self.project.warehouse(read_only=True) as wh:
            t = resolve_as_of(wh, fg, as_of, commit)
            table = read_published(wh, fg, t)
        return table if format == "arrow" else table.to_pandas()

    # -- training datasets (issue 3) ---------------------------------------------------------------------
    def create_training_dataset(
        self,
        feature_view: str,
        as_of: str | datetime | None = None,
        split: str | None = None,
        description: str | None = None,
    ):
        """Materialize the next immutable version of a feature view's training dataset; returns its metadata.

        >>> fs.create_training_dataset("fv_fraud_detection", split="random:0.8,0.2:42")
        """
        from . import training

        catalog = self.catalog
        td = training.create(self.project, catalog, feature_view, as_of=as_of, split=split, description=description)
        if td.statistics:  # fitted transformations / on-demand features: servable for ?training_dataset_version=N
            from .transforms.serving import publish_if_online

            warning = publish_if_online(self.project, catalog)
            if warning:
                td.extra.setdefault("warnings", []).append(warning)
        return td

    def training_datasets(self, feature_view: str | None = None) -> list:
        """Metadata of every training dataset version (of one feature view, or all)."""
        from . import training

        if not store_exists(self.project):
            return []
        with self.project.warehouse(read_only=True) as wh:
            return training.list_tds(wh, feature_view)

    def training_dataset_info(self, feature_view: str, version: int | None = None):
        """Metadata of one version (default: the latest): commits read, split, counts, features, hash."""
        from . import training

        with self._unknown_view_hint(feature_view), self.project.warehouse(read_only=True) as wh:
            return training.get_td(wh, feature_view, version)

    def training_dataset(
        self,
        feature_view: str,
        version: int | None = None,
        split: str | None = None,
        format: Literal["pandas", "arrow"] = "pandas",
        transformed: bool = False,
    ) -> pd.DataFrame | pa.Table:
        """The rows of a training dataset version (default: the latest), one split or all, in canonical order.
        `transformed=True` applies the view's transformations with the statistics fitted on this version's train
        split (SQL path: the same SQL as batch scoring; one-hot columns replace their feature).

        >>> train = fs.training_dataset("fv_fraud_detection", split="train", transformed=True)
        """
        from . import training

        with self._unknown_view_hint(feature_view):
            if transformed:
                from .transforms.view import read_transformed

                _, table = read_transformed(self.project, feature_view, version, split)
            else:
                _, table = training.read(self.project, feature_view, version, split)
        return table if format == "arrow" else table.to_pandas()

    def transform(self, frame: pd.DataFrame | pa.Table, feature_view: str,
                  version: int | None = None) -> pd.DataFrame:
        """Batch scoring: transform any frame holding the view's columns with the statistics of a training dataset
        version (default: the latest), through the same SQL the training data was transformed with.

        >>> X = fs.transform(todays_rows, "fv_fraud_detection", version=3)
        """
        from .transforms.view import transform_frame

        with self._unknown_view_hint(feature_view):
            return transform_frame(self.project, frame, feature_view, version)

    def export_training_dataset(self, feature_view: str, out: str | os.PathLike, version: int | None = None,
                                format: str | None = None, split: str | None = None):
        """Write a version (default: the latest) to Parquet or CSV in canonical row order; returns (td, rows)."""
        from . import training

        with self._unknown_view_hint(feature_view):
            return training.export(self.project, feature_view, version, out, format, split)

    @contextmanager
    def _unknown_view_hint(self, feature_view: str) -> Iterator[None]:
        """A mistyped view name gets 'unknown feature view' and the known names, not 'has no training datasets'."""
        try:
            yield
        except FeatureStoreError as e:
            if "has no training datasets" in e.message:
                self.catalog.fv(feature_view)
            raise

    # -- online (issue 4) --------------------------------------------------------------------------------
    def get_online_features(
        self,
        features: list[str] | None = None,
        entities: dict[str, list[Any]] | None = None,
        feature_service: str | None = None,
        full_feature_names: bool = False,
        store_url: str | None = None,
    ) -> dict[str, Any]:
        """Latest values from the online store, in-process, shaped like Feast's feature server answer.

        >>> fs.get_online_features(["fg_customer_profile:segment"], {"customer_id": [1, 2]})
        """
        from .online.reader import OnlineReader
        from .online.store import default_url, open_store

        url = store_url or default_url(self.project.warehouse_path)
        cached = getattr(self, "_online", None)
        if cached is None or cached[0] != url:
            cached = (url, OnlineReader(open_store(url)))
            self._online = cached
        body: dict[str, Any] = {"entities": entities or {}, "full_feature_names": full_feature_names}
        if features is not None:
            body["features"] = features
        if feature_service is not None:
            body["feature_service"] = feature_service
        response, _ = cached[1].get_online_features(body)
        return response

    # -- model registry (issue 7) ------------------------------------------------------------------------
    @property
    def models(self):
        """The model registry: `fs.models.register(...)`, `.get("name@champion")`, `.list()`, `.best(...)`."""
        from .registry import ModelRegistry

        return ModelRegistry(self)

    # -- monitoring (issue 12) ---------------------------------------------------------------------------
    def score_spine(self, model: str, spine, as_of: str | datetime | None = None, log: bool = True) -> pd.DataFrame:
        """Batch inference on any spine (a dbt model name, a .parquet/.csv path, a DataFrame or Arrow table with the
        view's key and timestamp columns): features joined point-in-time as in training, scored by NAME[:V|@ALIAS],
        logged to <project>/.fs/predictions/ unless `log=False`.

        >>> fs.score_spine("fraud_model@champion", "todays_transactions.parquet")
        """
        from .monitoring.scoring import score_spine

        return score_spine(self, model, spine, as_of=as_of, log=log)

    def monitor(self, feature_view: str, training_dataset_version: int | None = None, window: str | None = None,
                since: str | datetime | None = None, until: str | datetime | None = None,
                now: str | datetime | None = None, source: str = "all", store: bool = True):
        """Model feature drift: logged vectors (served and/or batch-scored) in the window against the training
        dataset's train split, per feature; stored in fs_meta.monitoring_results. `.ok` / `.drifted` say the verdict.

        >>> fs.monitor("fv_fraud_detection", training_dataset_version=1, window="1d").drifted
        """
        from .monitoring.drift import monitor_feature_view

        return monitor_feature_view(self, feature_view, training_dataset_version, since=since, until=until,
                                    window=window, now=now, source=source, store=store)

    def monitoring_results(self, feature_view: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Stored model-feature-drift results (fs_meta.monitoring_results), newest first."""
        from .monitoring.drift import history

        return history(self, feature_view, limit)

    def check_freshness(self, feature_groups: list[str] | None = None, now: str | datetime | None = None,
                        store_url: str | None = None) -> list:
        """Read-only freshness of every feature group (last commit; online copy) against its declared
        `meta.fs.freshness`."""
        from .monitoring.freshness import check_freshness

        return check_freshness(self, feature_groups, now=now, store_url=store_url)
