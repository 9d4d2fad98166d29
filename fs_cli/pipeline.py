"""The feature pipeline behind `fs run`: build candidates, test them, publish (snapshot), log commits.

Write-audit-publish: candidates are built and tested first, with snapshots excluded; only the feature groups whose
candidates passed (or whose policy is `warn`) are snapshotted. A failing strict candidate stays in its table for
inspection while the published version (the snapshot) and the online store keep the previous commit.

Publishing is exact and atomic per run:
- the gate audits an immutable copy of each candidate (`<candidate>__audited_<tag>`, dropped after the run), and the
  snapshot's pre-hook (macros/publish/publish_gate.sql) puts exactly the copy's rows into the candidate inside the
  snapshot's transaction (Postgres: under an exclusive lock): rows written into the candidate after the audit are
  never published;
- every snapshot of one run stamps the same commit time (macros/publish/snapshot_clock.sql), so an as-of at a run's
  commit time reads all of its groups;
- a check that could not run (an errored dbt test or gate check) and NULL/duplicate snapshot keys block the publish
  under every policy, `warn` included;
- an incremental group (a dbt `incremental` model whose snapshot compares one ingestion column) is published from its
  new batch: the audited copy holds only the rows ingested after the published watermark, the gate audits that batch
  and the snapshot reads it (`_incremental_batch`, macros/publish/publish_batch.sql), so a publish costs the change.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from . import run_inputs, seed_reuse
from .commits import Commit, claim_run, is_published, list_commits, sync_commits, sync_project
from .declarations.model import Catalog, FeatureGroup
from .discovery import load as load_catalog
from .errors import FeatureStoreError
from .project import Project
from .push_publish import finish_pushed_rows, merge_pushed_rows
from .timeutil import utcnow
from .unchanged import unchanged_validated_commit
from .warehouse import Warehouse
from .warehouse.lock import writer_lock

log = logging.getLogger(__name__)


@dataclass
class FGOutcome:
    feature_group: str
    policy: str
    built: bool = False
    failures: list[str] = field(default_factory=list)  # failing tests / checks, human readable
    warnings: list[str] = field(default_factory=list)
    published: bool = False
    commit: Commit | None = None
    materialized: int | None = None
    #: a failure no policy publishes on (an errored dbt test): set while reading the build
    blocking: bool = field(default=False, repr=False)

    @property
    def errors(self) -> list[str]:
        """The failures that are errors (a check could not run; lines start with ERROR_PREFIX)."""
        return [f for f in self.failures if f.startswith(ERROR_PREFIX)]

    @property
    def status(self) -> str:
        if not self.built:
            return "error"
        if self.failures and not self.published:
            return "blocked"
        if self.failures or self.warnings:
            return "warn"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature_group": self.feature_group,
            "status": self.status,
            "policy": self.policy,
            "published": self.published,
            "failures": self.failures,
            "errors": self.errors,
            "warnings": self.warnings,
            "commit": self.commit.to_dict() if self.commit else None,
            "materialized": self.materialized,
        }


@dataclass
class RunReport:
    outcomes: dict[str, FGOutcome]
    other_failures: list[str]
    run_id: str | None = None
    #: the last clean run, when this one found all of its inputs unchanged and built nothing (fs_cli/run_inputs.py)
    unchanged_since: run_inputs.Recorded | None = None

    @property
    def ok(self) -> bool:
        return not self.other_failures and all(o.status in ("ok", "warn") for o in self.outcomes.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "run_id": self.run_id,
            "feature_groups": [o.to_dict() for o in self.outcomes.values()],
            "other_failures": self.other_failures,
            "nothing_changed_since": self.unchanged_since.to_dict() if self.unchanged_since else None,
        }


#: A candidate check (Soda contract, drift, PII ...): f(project, wh, fg) -> (failures, warnings), where `wh` is an open
#: Warehouse on the target. Runs on every built candidate before the publish. A result that also has a non-empty
#: `.errors` (fs_cli.validation.GateLines: a check could not run) blocks the publish under every policy.
CandidateCheck = Callable[[Project, Warehouse, FeatureGroup], tuple[list[str], list[str]]]
#: An after-publish step (link validation results, materialize ...): f(project, catalog, outcomes) -> None.
PostPublishStep = Callable[[Project, Catalog, dict[str, FGOutcome]], None]

#: Test hook (documented, off unless set): `FS_TEST_CRASH_AFTER_SNAPSHOT=1` kills the process right after the snapshot
#: (the publish) and before the commit log is written, to prove the next `fs` command logs that commit anyway.
CRASH_AFTER_SNAPSHOT_ENV = "FS_TEST_CRASH_AFTER_SNAPSHOT"
#: Test hook (documented, off unless set): `FS_TEST_SQL_AFTER_AUDIT="<statement>"` runs that SQL statement on the
#: target right after the audit and before the publish: a concurrent writer, modelled deterministically.
SQL_AFTER_AUDIT_ENV = "FS_TEST_SQL_AFTER_AUDIT"
#: What `fs run` tells its `dbt snapshot` (macros/publish/): JSON {"time": commit time of every group of the run,
#: "audited": {model unique id: identifier of the audited copy to publish}}. Not FS_-prefixed: the manifest cache's
#: fingerprint (fs_cli/manifest_cache.py) covers the FS_ environment, and this must not invalidate it.
PUBLISH_ENV = "FEATURE_STORE_PUBLISH"
#: Failure lines of a check that could not run (the same prefix as fs_cli.validation.ERROR_PREFIX): no policy
#: publishes on them.
ERROR_PREFIX = "ERROR "


def _node_name(result) -> str:
    return result.node.unique_id


def run_pipeline(
    project: Project,
    select: tuple[str, ...] = (),
    progress: Callable[[str, int], None] | None = None,
    checks: Sequence[CandidateCheck] = (),
    post_publish: Sequence[PostPublishStep] = (),
    rebuild: bool = False,
) -> RunReport:
    """Run the feature pipeline; `progress(message, nodes_done)` is called as dbt starts and finishes nodes and as
    each candidate is audited (a callback with a `total` keyword also gets the phase's node count: DbtProgress).

    The caller composes the audit and the after-publish work: `checks` run on every built candidate (their failures
    block a strict group), `post_publish` steps run after the snapshots (FeatureStore.run passes the validation gate,
    the link of its results to the new commits and materialization).

    One writer at a time: the run holds the project's writer lock (fs_cli/warehouse/lock.py) throughout, so a second
    `fs run` waits for it (bounded by FS_LOCK_TIMEOUT) instead of failing inside dbt on the DuckDB file.

    When every input of the last clean run is unchanged (fs_cli/run_inputs.py), nothing is built, audited or
    published and dbt is not started; `rebuild` (or a `select`) always runs dbt."""
    with writer_lock(project):  # also around dbt's parse: two runs do not write target/ at once
        catalog = load_catalog(project)  # validates every declaration before anything is written
        return _run_locked(project, catalog, select, progress, checks, post_publish, rebuild)


def _run_locked(project: Project, catalog: Catalog, select: tuple[str, ...],
                progress: Callable[[str, int], None] | None, checks: Sequence[CandidateCheck],
                post_publish: Sequence[PostPublishStep], rebuild: bool = False) -> RunReport:
    _check_writable(project)  # a locked warehouse is one clear line here, not dbt's traceback later
    # A publish of an earlier run that died before logging it is its own commit, not part of this run's.
    sync_project(project, list(catalog.feature_groups.values()))
    on_event = DbtProgress(progress)

    fingerprint = run_inputs.fingerprint(project)  # before the build: a file edited meanwhile is a change next time
    if not select and not rebuild and (since := run_inputs.unchanged_since(project, catalog, fingerprint)):
        return _nothing_changed(project, catalog, since, on_event, post_publish)
    with project.warehouse() as wh:
        run_inputs.forget(wh)
        # the sources as this build reads them (read before it: a source written during the run is a change)
        sources = None if select else run_inputs.source_tokens(wh, catalog.manifest)

    # Seeds whose file and table are as the last load left them are not loaded again (fs_cli/seed_reuse.py).
    kept_seeds = seed_reuse.reusable(project, project.manifest())
    build_args = ["build", "--quiet", "--exclude", "resource_type:snapshot", "path:models/feature_views", *kept_seeds]
    if select:
        build_args += ["--select", *select]
    on_event.phase("build")
    res = project.dbt(build_args, callbacks=[on_event])
    if res.exception is not None:
        _raise_if_locked(project, res.exception)
        raise FeatureStoreError(f"dbt build failed to run: {res.exception}", fix="run `dbt build` to see the full error")
    seed_reuse.record(project, project.manifest(), res.results)

    outcomes, other = _read_build(res, catalog)

    pushed = merge_pushed_rows(project, catalog, outcomes)  # pushed rows join their candidates (push_publish.py)
    # Audit: an immutable copy of each built candidate, and the given checks (contracts, drift ...) on that copy.
    # The publish reads the copy (the snapshot's pre-hook puts exactly its rows into the candidate, under a lock
    # where the engine has one): rows written into the candidate after the audit are never published.
    copies: dict[str, str] = {}  # feature group -> identifier of its audited copy (next to the candidate)
    batches: dict[str, dict[str, Any]] = {}  # incremental group -> its batch (ingestion column, watermark, rows)
    run_id = None
    try:
        unchanged: set[str] = set()  # candidates equal to their validated published version
        unpublishable = _audit(project, catalog, outcomes, checks, copies, on_event, batches, unchanged)
        to_publish = [fg for fg in _to_publish(catalog, outcomes, unpublishable)
                      if batches.get(fg.name, {}).get("rows") != 0  # nothing ingested since the last publish
                      and fg.name not in unchanged]
        if to_publish:
            _run_test_writer(project)
            run_id = _publish(project, to_publish, outcomes, copies, on_event, batches)
    finally:
        _drop_copies(project, catalog, copies)
    finish_pushed_rows(project, catalog, outcomes, pushed)  # published pushes: marked, their log consumed
    for step in post_publish:
        step(project, catalog, outcomes)
    _refresh_commits(project, catalog, outcomes)
    report = RunReport(outcomes=outcomes, other_failures=other, run_id=run_id)
    if sources is not None and report.ok and not any(o.failures or o.warnings for o in outcomes.values()):
        why_not = run_inputs.record(project, catalog, fingerprint, sources, res.results, run_id)
        if why_not:
            log.debug("fs run: the next run will build again: %s", why_not)
    return report


def _nothing_changed(project: Project, catalog: Catalog, since: run_inputs.Recorded, on_event: DbtProgress,
                     post_publish: Sequence[PostPublishStep]) -> RunReport:
    """The report of a run whose inputs are those of the last clean run: every group as that run left it (built,
    unchanged since its latest commit, validated), nothing built, audited or published."""
    outcomes: dict[str, FGOutcome] = {}
    groups = list(catalog.feature_groups.values())
    with project.warehouse(read_only=True) as wh:
        for i, fg in enumerate(groups):
            latest = list_commits(wh, fg, with_validation=False)[-1]
            on_event.step("audit", f"{fg.name} unchanged since commit {latest.commit_id}", i + 1, len(groups))
            outcomes[fg.name] = FGOutcome(fg.name, fg.policy, built=True)
    for step in post_publish:
        step(project, catalog, outcomes)
    return RunReport(outcomes=outcomes, other_failures=[], unchanged_since=since)


class DbtProgress:
    """dbt's events as `progress(message, done)` calls, per dbt invocation (a phase: build, publish). A callback that
    also takes a `total` keyword gets the number of nodes of the phase (dbt's "N of M"), once dbt knows it."""

    def __init__(self, progress: Callable[..., None] | None):
        self.progress = progress
        self.with_total = progress is not None and _takes_total(progress)
        self.name, self.done, self.total = "", 0, 0
        # dbt calls back from its worker threads: counting and reporting under one lock keeps the counts in order
        # (two nodes finishing together printed [2/28] before [1/28]).
        self._lock = threading.Lock()

    def phase(self, name: str) -> None:
        self.name, self.done, self.total = name, 0, 0

    def __call__(self, ev) -> None:
        if self.progress is None:
            return
        with self._lock:
            self._on_event(ev)

    def _on_event(self, ev) -> None:
        kind = ev.info.name
        if kind == "LogStartLine":  # dbt's "N of M START ...": M is every node this invocation runs
            self.total = max(self.total, int(getattr(ev.data, "total", 0) or 0))
        elif kind == "NodeStart":
            self._report(f"{self.name}: {ev.data.node_info.node_name}")
        elif kind == "NodeFinished":
            self.done += 1
            status = getattr(ev.data.node_info, "node_status", "") or ""
            self._report(f"{self.name}: {ev.data.node_info.node_name} {status}".rstrip())

    def step(self, phase: str, message: str, done: int, total: int) -> None:
        """Progress of work outside dbt (the audit of each candidate)."""
        if self.progress is not None:
            self.name, self.done, self.total = phase, done, total
            self._report(f"{phase}: {message}")

    def _report(self, message: str) -> None:
        if self.with_total:
            self.progress(message, self.done, total=self.total or None)
        else:
            self.progress(message, self.done)


def _takes_total(f: Callable[..., Any]) -> bool:
    import inspect

    try:
        params = inspect.signature(f).parameters
    except (TypeError, ValueError):
        return False
    return "total" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _check_writable(project: Project) -> None:
    """Open the target for writing once before dbt does: a warehouse another process holds (a BI client on the
    DuckDB file, another `fs run`) fails here with the warehouse layer's one-line message."""
    with project.warehouse(read_only=False):
        pass


def _raise_if_locked(project: Project, exc: BaseException) -> None:
    """dbt could not open the warehouse because another process took it after `_check_writable`: the same message."""
    if "lock" in str(exc).lower():
        _check_writable(project)


def _read_build(res, catalog: Catalog) -> tuple[dict[str, FGOutcome], list[str]]:
    """Per feature group: whether its candidate built and which of its dbt tests failed (an errored test -- the
    warehouse could not run it -- is a gate error: ERROR_PREFIX, blocks every policy); other failing nodes."""
    by_uid = {fg.unique_id: fg for fg in catalog.feature_groups.values()}
    outcomes: dict[str, FGOutcome] = {}
    other: list[str] = []
    for r in res.results:
        node = r.node
        status = str(r.status).split(".")[-1].lower()
        if node.unique_id in by_uid:
            fg = by_uid[node.unique_id]
            o = outcomes.setdefault(fg.name, FGOutcome(fg.name, fg.policy))
            o.built = status == "success"
            if not o.built:
                o.failures.append(f"model {status}: {(r.message or '').strip()[:300]}")
        elif node.resource_type == "test":
            targets = [by_uid[u] for u in node.depends_on.nodes if u in by_uid]
            if status == "error":
                msg = f"{ERROR_PREFIX}dbt test {node.name} could not run: {(r.message or '').strip()[:300]}"
            else:
                msg = f"dbt test {node.name}: {status}" + (f" ({r.failures} failing rows)" if r.failures else "")
            for fg in targets:
                o = outcomes.setdefault(fg.name, FGOutcome(fg.name, fg.policy))
                if status in ("fail", "error"):
                    o.failures.append(msg)
                    if status == "error":
                        o.blocking = True
                elif status == "warn":
                    o.warnings.append(msg)
            if not targets and status in ("fail", "error"):
                other.append(msg)
        elif status in ("error", "fail"):
            other.append(f"{node.resource_type} {node.name}: {status}: {(r.message or '').strip()[:300]}")
    return outcomes, other


def audited_copy_name(fg: FeatureGroup, tag: str) -> str:
    """The identifier of `fg`'s audited copy for one run (next to the candidate, in its schema)."""
    return f"{fg.identifier}__audited_{tag}"


def _audit(project: Project, catalog: Catalog, outcomes: dict[str, FGOutcome], checks: Sequence[CandidateCheck],
           copies: dict[str, str], on_event: DbtProgress | None = None,
           batches: dict[str, dict[str, Any]] | None = None, unchanged: set[str] | None = None) -> set[str]:
    """Copy every built candidate, run the checks on the copies; the names of the groups no policy may publish (a
    check could not run: `.errors` / `.blocking` of its result, or the copy could not be made).

    An incremental group's copy is its new batch (`_incremental_batch`, recorded in `batches` with its row count): the
    checks audit the batch, and an empty batch is not audited (nothing to publish). A table group whose candidate is
    its validated published version (fs_cli/unchanged.py) is added to `unchanged`: not copied, audited or published."""
    built = [name for name, o in outcomes.items() if o.built]
    unpublishable = {name for name, o in outcomes.items() if o.blocking}
    if not built:
        return unpublishable
    tag = uuid.uuid4().hex[:10]
    with project.warehouse() as wh:
        for i, name in enumerate(built):
            if on_event is not None:
                on_event.step("audit", name, i, len(built))
            o, fg = outcomes[name], catalog.feature_groups[name]
            ident = audited_copy_name(fg, tag)
            try:
                batch = _incremental_batch(wh, catalog, fg)
                if batch is None and unchanged is not None and (same := unchanged_validated_commit(wh, fg)):
                    unchanged.add(name)  # the published version, validated: nothing to audit or publish
                    if on_event is not None:
                        on_event.step("audit", f"{name} unchanged since commit {same.commit_id}", i + 1, len(built))
                    continue
                where = "" if batch is None else f" where {_batch_predicate(wh, batch)}"
                wh.drop_table(wh.relation(fg.schema, ident))
                wh.execute(f"create table {wh.relation(fg.schema, ident)} as select * from {fg.relation}{where}")
                if batch is not None:
                    batch["rows"] = int(wh.scalar(f"select count(*) from {wh.relation(fg.schema, ident)}"))
                    if batches is not None:
                        batches[name] = batch
            except Exception as e:  # noqa: BLE001 - no audited copy, no publish
                o.failures.append(f"{ERROR_PREFIX}audited copy of the candidate failed: {type(e).__name__}: {e}")
                unpublishable.add(name)
                continue
            copies[name] = ident
            if batch is not None and batch["rows"] == 0:  # nothing ingested after the published watermark
                if on_event is not None:
                    on_event.step("audit", f"{name} nothing new", i + 1, len(built))
                continue
            audited = replace(fg, relation=wh.relation(fg.schema, ident), identifier=ident)
            if batch is not None:
                audited = _as_batch(audited, batch)
            for check in checks:
                result = check(project, wh, audited)
                fails, warns = result
                o.failures += fails
                o.warnings += warns
                if getattr(result, "blocking", None) or getattr(result, "errors", None):
                    unpublishable.add(name)
            if on_event is not None:
                on_event.step("audit", f"{name} {'fail' if o.failures else 'pass'}", i + 1, len(built))
    return unpublishable


def _incremental_batch(wh: Warehouse, catalog: Catalog, fg: FeatureGroup) -> dict[str, Any] | None:
    """{"column": ingestion column, "after": SQL literal of the published watermark or None} for an incremental
    group, None for a table group (published from a copy of its whole candidate).

    Incremental: a dbt `incremental` model whose snapshot compares one column (`check_cols: [ingested_at]`; the
    catalog allows that only for incremental models). Such a model never deletes a key and stamps every (re)ingested
    row, so the rows that can change the published state are exactly those ingested after the published watermark:
    the greatest ingestion time among the snapshot's current rows. The watermark is read from the snapshot itself,
    not from the candidate: a batch that was blocked (strict policy) is still after it, and is audited again with
    the next one. Rows with no ingestion time are always in the batch (never older than the watermark)."""
    nodes = getattr(catalog.manifest, "nodes", None) or {}
    model, snapshot = nodes.get(fg.unique_id), nodes.get(fg.snapshot_unique_id or "")
    if model is None or snapshot is None or getattr(model.config, "materialized", None) != "incremental":
        return None
    check_cols = snapshot.config.to_dict().get("check_cols")
    if isinstance(check_cols, str) or not check_cols or len(check_cols) != 1:
        return None  # `check_cols: all`: no ingestion column to select a batch by
    column = check_cols[0]
    if not is_published(wh, fg):
        return {"column": column, "after": None}
    watermark = wh.scalar(f"select max({wh.quote(column)}) from {fg.snapshot_relation} where dbt_valid_to is null")
    after = _sql_literal(watermark)
    if watermark is not None and after is None:
        return None  # an ingestion column of another type: publish from the whole candidate, as a table group
    return {"column": column, "after": after}


def _as_batch(audited: FeatureGroup, batch: dict[str, Any]) -> FeatureGroup:
    """The declaration the gate audits an incremental batch against. Per-row checks (range, not-null, allowed values,
    PII, future event times) and the key's uniqueness hold for the batch as declared: the published current rows are
    unique per key (NULL or duplicate keys are refused under every policy), and publishing the batch replaces the
    current version of every key it holds, so the published rows stay unique iff the batch is. Two dataset-level
    checks change:
    - min_rows (after the first publish): an incremental group never deletes a key, so its row count only grows; the
      published count met min_rows when it was audited, so the next one does;
    - drift of the ingestion column: a batch is, by definition, the rows ingested after everything published."""
    meta = dict(audited.meta)
    if batch["after"] is not None:
        meta["expectations"] = {**(meta.get("expectations") or {}), "min_rows": 0}
    columns = []
    for c in audited.columns:
        if c.name == batch["column"]:
            fs = {**((c.meta or {}).get("fs") or {}), "drift": False}
            c = replace(c, meta={**(c.meta or {}), "fs": fs})
        columns.append(c)
    return replace(audited, meta=meta, columns=columns)


def _sql_literal(value: Any) -> str | None:
    """A watermark as a SQL literal every engine reads (timestamp, date or number); None for other types."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return f"cast('{value.isoformat(sep=' ', timespec='microseconds')}' as timestamp)"
    if isinstance(value, date):
        return f"cast('{value.isoformat()}' as date)"
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)
    return None


def _batch_predicate(wh: Warehouse, batch: dict[str, Any]) -> str:
    """The rows of a batch (the same predicate as fs_publish_batch_predicate in macros/publish/publish_batch.sql)."""
    if batch["after"] is None:
        return "1 = 1"
    col = wh.quote(batch["column"])
    return f"({col} > {batch['after']} or {col} is null)"


def _to_publish(catalog: Catalog, outcomes: dict[str, FGOutcome], unpublishable: set[str]) -> list[FeatureGroup]:
    """What passed, and what failed under the `warn` policy -- except what no policy publishes."""
    to_publish = []
    for name, o in outcomes.items():
        if not o.built:
            continue
        if o.failures and (o.policy == "strict" or name in unpublishable):
            continue
        if o.failures:  # warn policy: published, failures kept as warnings
            o.warnings += [f"published despite: {f}" for f in o.failures]
            o.failures = []
        to_publish.append(catalog.feature_groups[name])
    return to_publish


def _publish(project: Project, to_publish: list[FeatureGroup], outcomes: dict[str, FGOutcome],
             copies: dict[str, str], on_event, batches: dict[str, dict[str, Any]] | None = None) -> str | None:
    """Snapshot the audited copies, all at one commit time; log the commits. Returns the snapshot's invocation id.
    An incremental group's snapshot reads its batch (macros/publish/publish_batch.sql)."""
    with project.warehouse() as wh:
        logged_before = {fg.name: _last_commit_id(wh, fg) for fg in to_publish}
        publish_time = _publish_time(wh, to_publish)
    instructions = {"time": publish_time.isoformat(sep=" ", timespec="microseconds"),
                    "audited": {fg.unique_id: copies[fg.name] for fg in to_publish if fg.name in copies},
                    "batches": {fg.unique_id: {"column": b["column"], "after": b["after"]}
                                for fg in to_publish if (b := (batches or {}).get(fg.name)) and fg.name in copies}}
    previous = os.environ.get(PUBLISH_ENV)
    os.environ[PUBLISH_ENV] = json.dumps(instructions)
    if isinstance(on_event, DbtProgress):
        on_event.phase("publish")
    try:
        snap = project.dbt(
            ["snapshot", "--quiet", "--select", *[fg.snapshot_name for fg in to_publish]], callbacks=[on_event]
        )
    finally:
        if previous is None:
            os.environ.pop(PUBLISH_ENV, None)
        else:
            os.environ[PUBLISH_ENV] = previous
    by_name = {fg.snapshot_name: fg for fg in to_publish}
    published = set()
    for r in snap.results or []:
        if str(r.status).split(".")[-1].lower() == "success":
            published.add(r.node.name)
        elif r.node.name in by_name:
            status = str(r.status).split(".")[-1].lower()
            outcomes[by_name[r.node.name].name].failures.append(
                f"publish failed: snapshot {r.node.name}: {status}: {(r.message or '').strip()[:300]}")
    if snap.exception is not None or not snap.success:
        for fg in to_publish:
            if fg.snapshot_name not in published and not outcomes[fg.name].failures:
                outcomes[fg.name].failures.append(
                    f"publish failed: dbt snapshot: {snap.exception or 'see the dbt output above'}")
    if os.environ.get(CRASH_AFTER_SNAPSHOT_ENV) == "1":
        os._exit(137)  # test hook: die like a SIGKILL between the publish and its log write
    with project.warehouse() as wh:
        for fg in to_publish:
            o = outcomes[fg.name]
            o.published = fg.snapshot_name in published
            if o.published:
                o.commit = _log_publish(wh, fg, snap.invocation_id, logged_before[fg.name])
    return snap.invocation_id


def _publish_time(wh: Warehouse, fgs: list[FeatureGroup]) -> datetime:
    """One commit time for every group a run publishes: now, and after each group's last commit (a clock that went
    back must not write a commit before its predecessor)."""
    t = utcnow()
    for fg in fgs:
        commits = list_commits(wh, fg, with_validation=False)
        if commits and commits[-1].commit_time >= t:
            t = commits[-1].commit_time + timedelta(microseconds=1)
    return t


def _drop_copies(project: Project, catalog: Catalog, copies: dict[str, str]) -> None:
    """The audited copies are gone after the publish (the candidate holds the published rows)."""
    if not copies:
        return
    with project.warehouse() as wh:
        for name, ident in copies.items():
            wh.drop_table(wh.relation(catalog.feature_groups[name].schema, ident))


def _run_test_writer(project: Project) -> None:
    """The SQL_AFTER_AUDIT_ENV test hook: a writer that gets in between the audit and the publish."""
    sql = os.environ.get(SQL_AFTER_AUDIT_ENV)
    if sql:
        with project.warehouse() as wh, wh.transaction():
            wh.execute(sql)


def _last_commit_id(wh: Warehouse, fg: FeatureGroup) -> int:
    commits = list_commits(wh, fg, with_validation=False)
    return commits[-1].commit_id if commits else 0


def _log_publish(wh: Warehouse, fg: FeatureGroup, run_id: str | None, logged_before: int) -> Commit | None:
    """The commit this run's snapshot made (None: the snapshot changed nothing), logged with the run's id -- also
    when a concurrent `fs commits` logged it first."""
    sync_commits(wh, fg, run_id=run_id)
    claim_run(wh, fg, logged_before, run_id)
    mine = [c for c in list_commits(wh, fg, with_validation=False) if c.commit_id > logged_before]
    return mine[-1] if mine else None


def _refresh_commits(project: Project, catalog: Catalog, outcomes: dict[str, FGOutcome]) -> None:
    """Re-read the new commits after the post-publish steps, which link validation results to them."""
    fresh = {name: o for name, o in outcomes.items() if o.commit is not None}
    if not fresh:
        return
    with project.warehouse(read_only=True) as wh:
        for name, o in fresh.items():
            by_id = {c.commit_id: c for c in list_commits(wh, catalog.feature_groups[name])}
            o.commit = by_id.get(o.commit.commit_id, o.commit)
