"""The Python SDK: `from fs_cli import FeatureStore`. The one door to the feature store: the CLI (fs_cli.commands)
is a thin adapter over these methods."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import discovery
from .commits import Commit, list_commits, read_published, resolve_as_of, sync_project
from .declarations.model import Catalog
from .errors import FeatureStoreError
from .project import Project
from .training import SPLIT_HELP, parse_ref
from .warehouse import store_exists

if TYPE_CHECKING:  # pandas costs ~0.5-1.5 s to import: only the commands that return frames pay it
    import pandas as pd
    import pyarrow as pa

    from .pipeline import RunReport

__all__ = ["SPLIT_HELP", "FeatureStore", "online_locations", "parse_ref"]


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
        return discovery.load(self.project)

    def list(self) -> list[dict[str, Any]]:
        return discovery.list_feature_groups(self.project)

    def describe(self, name: str) -> dict[str, Any]:
        return discovery.describe(self.project, name)

    def search(self, text: str) -> list[dict[str, Any]]:
        return discovery.search(self.project, text)

    def plan(self, state: str | os.PathLike | None):
        """What deploying this project would change against the deployed manifest `state` (a folder holding
        manifest.json, or the file): added/changed/removed feature groups, features and views with their downstream
        (training datasets, models and aliases, served views). `.exit_code` is 1 when a change breaks an aliased
        model or a served view, or changes a published group's key in place (fs_cli/plan.py)."""
        from .plan import plan

        return plan(self.project, state, lambda: self.catalog, lambda: self.models.list(include_deleted=False))

    # -- pipeline ----------------------------------------------------------------------------------------
    def run(self, select: tuple[str, ...] = (), materialize: bool = True,
            progress: Callable[[str, int], None] | None = None, vars: dict[str, Any] | None = None,
            rebuild: bool = False) -> RunReport:
        """Build, validate and publish the selected feature groups, then link validation results to the new commits
        and (unless `materialize=False`) refresh the online store. The steps are composed here, explicitly.
        `vars`: dbt vars for this project's dbt calls from now on (e.g. {"demo_data_cutoff": "2026-01-15"}).
        When every input of the last clean run is unchanged, nothing is built (`report.unchanged_since`);
        `rebuild=True` runs dbt anyway (fs_cli/run_inputs.py)."""
        # What publishing needs (online/, validation/, their pandas and Soda) is imported by `fs run` only.
        from .online.from_warehouse import post_publish_materialize
        from .pipeline import run_pipeline
        from .validation import pipeline_check, post_publish_link

        if vars:
            self.project.vars.update(vars)

        post_publish = [post_publish_link] + ([post_publish_materialize] if materialize else [])
        return run_pipeline(self.project, select=select, progress=progress, checks=[pipeline_check],
                            post_publish=post_publish, rebuild=rebuild)

    # -- validation ---------------------------------------------------------------------------------------
    def contract(self, feature_group: str, generated_only: bool = False) -> dict[str, Any]:
        """The Soda data contract of a feature group: generated from its YAML, plus the hand-written
        `<model>.contract.yml` unless `generated_only`."""
        from .validation.contract import build_contract, generate_contract

        fg = self.catalog.fg(feature_group)
        dataset = self._soda_dataset(fg)
        if generated_only:
            return generate_contract(fg, dataset=dataset)
        return build_contract(self.project.dir, fg, dataset=dataset)

    def contract_yaml(self, feature_group: str, generated_only: bool = False) -> str:
        """The contract as YAML, under a comment naming where each part comes from."""
        from .validation.contract import contract_path, contract_yaml

        fg = self.catalog.fg(feature_group)
        extra = contract_path(self.project.dir, fg)
        header = f"# Soda contract of {fg.name} (generated by fs_cli from {fg.path} and its YAML"
        header += f" + {extra.relative_to(self.project.dir)})" if extra.is_file() and not generated_only else ")"
        return header + "\n" + contract_yaml(self.contract(feature_group, generated_only))

    def _soda_dataset(self, fg: Any) -> str | None:
        """The candidate's dataset as Soda names it on the target (None when the target cannot be opened now: the
        contract then shows the generic `fs/<schema>/<table>`)."""
        from .validation.contract import DATA_SOURCE

        if not store_exists(self.project):
            return None
        try:
            with self.project.warehouse(read_only=True) as wh:
                return wh.soda_dataset(DATA_SOURCE, fg.schema, fg.identifier)
        except FeatureStoreError:
            return None

    def validations(self, name: str, limit: int | None = 5, failed: bool = False) -> list[dict[str, Any]]:
        """Validation history of a feature group (or feature view): every check of its `limit` most recent
        candidates, newest first; `failed` keeps failed/errored checks only."""
        from .validation.results import history

        catalog = self.catalog
        target = catalog.feature_views[name] if name in catalog.feature_views else catalog.fg(name)
        if not store_exists(self.project):
            return []
        with self.project.warehouse(read_only=True) as wh:
            rows = history(wh, target.name, limit=limit)
        return [r for r in rows if r["outcome"] in ("fail", "error")] if failed else rows

    def validate(self, name: str, reference: str | dict[str, int] | None = None):
        """Audit a feature group's current candidate (its built dbt model) without publishing it, or check the
        correlation limits of a feature view. `reference`: drift reference (previous_window, last_commit,
        {"commit": N}). The report is stored like the ones `run` writes (`validations(name)`)."""
        from .validation import validate_candidate
        from .validation.gate import validate_feature_view

        catalog = self.catalog
        if not store_exists(self.project):
            raise FeatureStoreError(f"the warehouse {self.project.warehouse_path} does not exist yet",
                                    fix="build first: `fs run` (feature groups) or `dbt run --select <view>`")
        if name in catalog.feature_views:
            self._build_view_if_missing(catalog.fv(name))
            with self.project.warehouse() as wh:
                return validate_feature_view(self.project, wh, catalog.fv(name))
        fg = catalog.fg(name)
        with self.project.warehouse() as wh:
            if not wh.relation_exists(fg.schema, fg.identifier):
                raise FeatureStoreError(f"the candidate {fg.relation} has not been built",
                                        fix=f"run `dbt run --select {fg.model}` (or `fs run`) first")
            return validate_candidate(self.project, wh, fg, reference=reference)

    def _build_view_if_missing(self, fv: Any) -> None:
        """A feature view's relation is built by dbt (`fs run` publishes groups, not views): build it from the
        published groups when it is missing, as `dbt run --select <view>` would."""
        node = self.project.manifest().nodes[fv.unique_id]
        with self.project.warehouse(read_only=True) as wh:
            if wh.relation_exists(node.schema, node.alias):
                return
        res = self.project.dbt(["run", "--quiet", "--select", fv.name])
        if res.exception is not None or not res.success:
            raise FeatureStoreError(
                f"feature view {fv.name} has not been built, and building it failed: "
                f"{res.exception or 'see the dbt output above'}",
                fix=f"publish its feature groups first (`fs run`), then `dbt run --select {fv.name}`")

    # -- history -----------------------------------------------------------------------------------------
    def commits(self, feature_group: str) -> list[Commit]:
        fg = discovery.load(self.project, isolate=True).fg(feature_group)  # another group's broken YAML: not ours
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
        fg = discovery.load(self.project, isolate=True).fg(feature_group)  # another group's broken YAML: not ours
        sync_project(self.project, [fg])  # commit ids / times a read resolves are the snapshot's, logged or not
        with self.project.warehouse(read_only=True) as wh:
            t = resolve_as_of(wh, fg, as_of, commit)
            table = read_published(wh, fg, t)
        return table if format == "arrow" else table.to_pandas()

    def distributions(self, feature_group: str) -> dict[str, dict[str, Any]]:
        """Each feature's distribution over the group's current published rows (fs_cli/distributions.py):
        histograms for numbers, top values for text, the range for times, missing values counted apart."""
        from . import distributions

        fg = discovery.load(self.project, isolate=True).fg(feature_group)
        if not store_exists(self.project):
            return {}
        with self.project.warehouse(read_only=True) as wh:
            return distributions.latest(wh, fg)

    # -- governance --------------------------------------------------------------------------------------
    def erase(self, targets: Sequence[str], reason: str | None = None, actor: str | None = None,
              store_url: str | None = None):
        """Erase entities (`["customer=42", ...]`) from every snapshot commit, candidate, training dataset, the online
        store, the inference logs and the push log, keeping rows and keys so commit counts hold; erased keys stay
        redacted at every later publish. Records an event in fs_meta.erasures (fs_cli/erasure.py)."""
        from .erasure import erase, parse_targets
        from .online.backends import open_store

        catalog = self.catalog
        parse_targets(catalog, targets)  # a typo fails before anything is opened
        sync_project(self.project, list(catalog.feature_groups.values()))  # commits logged before history changes
        return erase(self.project, catalog, targets, reason=reason, actor=actor,
                     store_opener=lambda: open_store(self.online_store_url(store_url)))

    def erasures(self) -> list[dict[str, Any]]:
        """The erasure events (fs_meta.erasures): who, when, why, which entity, how many keys and rows; no values."""
        from .erasure import list_erasures

        if not store_exists(self.project):
            return []
        with self.project.warehouse(read_only=True) as wh:
            return list_erasures(wh)

    # -- training datasets -------------------------------------------------------------------------------
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
        from .training_transforms import fit_training_dataset
        from .warehouse.lock import writer_lock

        catalog = self.catalog
        with writer_lock(self.project):  # one writer at a time (waits, bounded, for another one)
            # build steps composed here, explicitly: fitting the view's transformations (a no-op without them)
            td = training.create(self.project, catalog, feature_view, as_of=as_of, split=split,
                                 description=description, steps=[fit_training_dataset])
            if td.statistics:  # fitted transformations / on-demand features: servable for ?training_dataset_version=N
                from .online.publish_views import publish_if_online

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
                from .training_transforms import read_transformed

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
        from .training_transforms import transform_frame

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

    # -- online ------------------------------------------------------------------------------------------
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
        from .online.backends import default_url, open_store
        from .online.reader import OnlineReader

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

    def online_store_url(self, store_url: str | None = None) -> str:
        """The online store this project materializes into: `store_url`, else $FS_ONLINE_STORE, else
        .fs/online_store.sqlite in the project."""
        from .online.from_warehouse import default_store_url

        return store_url or default_store_url(self.project)

    def materialize(self, feature_groups: Sequence[str] = (), full: bool = False, store_url: str | None = None,
                    progress_factory: Callable[[str], Callable[[int, int], None] | None] | None = None,
                    start: str | datetime | None = None, end: str | datetime | None = None,
                    allow_unvalidated: bool = False) -> tuple[str, list, list[str]]:
        """Write the latest value per entity (within TTL) of online feature groups (default: all) into the online
        store, atomically; incremental unless `full`. Returns (store URL, results, warnings).
        `end` / `start` (ISO text or naive UTC datetimes), as Feast's materialize(start_date, end_date): serve per
        entity the latest row with max(start, end - ttl) <= event_time <= end (end defaults to now); a range is a
        full rewrite (backfills and demos on historical data).
        A strict group whose published rows no passing validation run covers (published by plain `dbt build`) is
        withheld, with a warning naming its commits, unless `allow_unvalidated` (served and recorded with the online
        version); fs_cli/online/withhold.py."""
        from .online.backends import open_store
        from .online.from_warehouse import materialize_project
        from .online.materialize import check_range
        from .timeutil import parse_timestamp, utcnow

        start_t = parse_timestamp(start, "--start") if start is not None else None
        end_t = parse_timestamp(end, "--end") if end is not None else None
        if start_t is not None or end_t is not None:
            full = True  # an incremental run only moves forward from the previous version's clock
            end_t = end_t or utcnow()
            check_range(start_t, end_t)
        store = open_store(self.online_store_url(store_url))
        try:
            results, warnings = materialize_project(self.project, self.catalog, tuple(feature_groups), store=store,
                                                    full=full, progress_factory=progress_factory, now=end_t,
                                                    start=start_t, allow_unvalidated=allow_unvalidated)
        finally:
            store.close()
        return store.url, results, warnings

    # -- model registry ----------------------------------------------------------------------------------
    @property
    def models(self):
        """The model registry: `fs.models.register(...)`, `.get("name@champion")`, `.list()`, `.best(...)`."""
        from .registry import ModelRegistry

        return ModelRegistry(self)

    # -- monitoring ---------------------------------------------------------------------------------------
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
                        store_url: str | None = None, webhook: str | None = None):
        """Read-only freshness of every feature group (last commit; online copy) against its declared
        `meta.fs.freshness`: a FreshnessReport (`.results`, `.ok`, `.failing`; iterating it yields the results).
        `webhook`: also POST {"ok", "failing", "results"} as JSON to that URL."""
        from .monitoring.freshness import FreshnessReport, check_freshness, post_webhook

        report = FreshnessReport(check_freshness(self, feature_groups, now=now, store_url=store_url))
        if webhook:
            post_webhook(webhook, report.results)
        return report

    def sync_inference_logs(self):
        """Load the new lines of the inference logs (.fs/served_vectors, .fs/predictions) into fs_meta.*_log tables
        (idempotent), which the dbt models under models/monitoring/ read. Returns counts of new rows."""
        from .monitoring.logtables import sync_logs

        keys = {name: fv.key_columns for name, fv in self.catalog.feature_views.items()}
        with self.project.warehouse() as wh:
            return sync_logs(wh, self.project.state_dir, keys)

    def monitor_model(self, model: str, window: str = "1d", labels: str | os.PathLike | None = None,
                      since: str | datetime | None = None, until: str | datetime | None = None,
                      now: str | datetime | None = None, store: bool = True):
        """Concept drift: the logged predictions of NAME[:V|@ALIAS] joined with labels that arrived later (a dbt
        model or .parquet/.csv; default: the feature view's label spine), by row_id or entity keys + spine time;
        metrics per window and per slice, stored in fs_meta.model_monitoring. `.ok` says the verdict.

        >>> fs.monitor_model("fraud_model@champion", window="1d").failing
        """
        from .monitoring.concept import monitor_model

        return monitor_model(self, model, window=window, labels=labels, since=since, until=until, now=now,
                             store=store)

    def model_monitoring(self, model: str | None = None) -> list[dict[str, Any]]:
        """Stored concept-drift results (fs_meta.model_monitoring) of a model (name or name:version), oldest first."""
        from .monitoring.concept import history

        return history(self, model)

    def report(self, out: str | os.PathLike, feature_views: Sequence[str] | None = None,
               models: Sequence[str] | None = None) -> Path:
        """One self-contained HTML file (inline SVG, no network at view time): per-feature distributions training vs
        served, drift over time, model metrics over time."""
        from .monitoring.report import write_report

        return write_report(self, out, feature_views=feature_views, models=models)


def online_locations(store: FeatureStore | None, store_url: str | None = None) -> tuple[str, Path]:
    """(online store URL, state folder) for serving: the project's when there is one, else the current directory's
    .fs/ (serving needs no dbt project, only a store). The online store is opened once, to fail fast with its own
    message."""
    from .online.backends import DEFAULT_SQLITE_NAME, default_url, open_store
    from .project import STATE_DIR

    if store is not None:
        url, state_dir = store.online_store_url(), store.project.state_dir
    else:
        state_dir = Path.cwd() / STATE_DIR
        url = default_url(state_dir / DEFAULT_SQLITE_NAME)
    url = store_url or url
    open_store(url).close()
    return url, state_dir


# -- API keys of the online service (fs_cli/access.py) ---------------------------------------------------------
# Module functions like online_locations: a serving host may have no dbt project, only the key file; with a project,
# the names a key is scoped to are checked against its catalog.

def api_key_file(store: FeatureStore | None) -> Path:
    """$FS_API_KEYS_FILE, else the project's .fs/api_keys.json (the current directory's .fs/ without a project)."""
    from .access import key_file_path
    from .project import STATE_DIR

    return key_file_path(store.project.state_dir if store is not None else Path.cwd() / STATE_DIR)


def serving_key_file(store: FeatureStore | None) -> Path | None:
    """The key file a server started now uses (None: there is none), read once so a bad file fails before serving."""
    from .access import KEY_FILE_ENV, load_keys

    path = api_key_file(store)
    if not path.exists() and not os.environ.get(KEY_FILE_ENV):
        return None
    load_keys(path)
    return path


def create_api_key(store: FeatureStore | None, name: str, feature_views: Sequence[str] = (),
                   feature_groups: Sequence[str] = (), push: bool = False, pii: bool = False, metrics: bool = False,
                   admin: bool = False) -> tuple[dict[str, Any], str, Path]:
    """Add a scoped API key: (its entry without the hash, the secret (shown once, stored only as a hash), the file).
    With a project, the feature views and groups must exist in its catalog ('*' = all)."""
    from .access import create_key

    if store is not None:
        catalog = store.catalog
        for fv in feature_views:
            if fv != "*":
                catalog.fv(fv)
        for fg in feature_groups:
            if fg != "*":
                catalog.fg(fg)
    path = api_key_file(store)
    record, secret = create_key(path, name, feature_views=feature_views, feature_groups=feature_groups, push=push,
                                pii=pii, metrics=metrics, admin=admin)
    return record.public(), secret, path


def list_api_keys(store: FeatureStore | None) -> tuple[list[dict[str, Any]], Path]:
    """The keys (names and scopes; never secrets or hashes) and the file they are in."""
    from .access import load_keys

    path = api_key_file(store)
    return ([r.public() for r in load_keys(path)] if path.exists() else []), path


def revoke_api_key(store: FeatureStore | None, name: str) -> tuple[dict[str, Any], Path]:
    """Remove a key from the file; a running server refuses it within a second (it re-reads the file)."""
    from .access import revoke_key

    path = api_key_file(store)
    return revoke_key(path, name).public(), path
