"""The model registry: immutable, versioned, hash-verified model artifacts linked to their training data.

A model version is a row in fs_meta.model_versions plus a content-addressed blob; neither is ever updated. Deleting a
version records a tombstone (the bytes stay). Aliases (champion, challenger, ...) are the only mutable pointers and
every change is appended to fs_meta.alias_history.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import FeatureStoreError
from ..timeutil import utcnow
from ..warehouse import META_SCHEMA, Warehouse, relation_exists, store_exists
from ..warehouse.lock import writer_lock
from . import artifact
from .blobs import BlobStore
from .config import RegistryConfig, check_alias, check_name, check_required_meta
from .schema import ALIAS_HISTORY, ALIASES, MODELS, TOMBSTONES, VALIDATIONS, VERSIONS, ensure_registry
from .td import column_type, decimals_as_double, load_td, parse_td_ref
from .transaction import in_transaction

if TYPE_CHECKING:
    from ..sdk import FeatureStore
    from .validate import ValidationReport

RESERVED_ALIASES = {"latest"}


def current_user() -> str:
    try:
        return os.environ.get("FS_USER") or getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"


def _latest_validations(wh: Warehouse, name: str | None = None) -> dict[tuple[str, int], tuple]:
    """(name, version) -> the row (validation_id, validated_at, status, metrics) of its latest validation."""
    where, params = ("where name = ?", [name]) if name is not None else ("", [])
    latest: dict[tuple[str, int], tuple] = {}
    for n, v, i, t, st, m in wh.fetchall(
            f"select name, version, validation_id, validated_at, status, metrics from {VALIDATIONS} {where}", params):
        if (n, v) not in latest or i > latest[(n, v)][0]:
            latest[(n, v)] = (i, t, st, m)
    return latest


def parse_model_ref(ref: str) -> tuple[str, int | None, str | None]:
    """NAME, NAME:VERSION or NAME@ALIAS -> (name, version, alias)."""
    if "@" in ref:
        name, _, alias = ref.partition("@")
        return check_name(name), None, check_alias(alias)
    name, sep, ver = ref.partition(":")
    if sep:
        if not ver.isdigit():
            raise FeatureStoreError(f"model reference {ref!r}: version {ver!r} is not a number",
                                    fix="write NAME, NAME:VERSION (e.g. fraud_model:3) or NAME@ALIAS")
        return check_name(name), int(ver), None
    return check_name(name), None, None


def _kv(d: dict[str, Any] | None, what: str) -> dict[str, str]:
    out = {}
    for k, v in (d or {}).items():
        if not isinstance(k, str) or not k.strip():
            raise FeatureStoreError(f"{what} key {k!r} is empty", fix=f"write {what} as key=value")
        out[k.strip()] = "" if v is None else str(v)
    return out


def _metrics(m: dict[str, Any] | str | None) -> dict[str, float]:
    if m is None:
        return {}
    if isinstance(m, str):
        try:
            m = json.loads(m)
        except ValueError as e:
            raise FeatureStoreError(f"--metrics is not valid JSON: {e}",
                                    fix='write e.g. --metrics \'{"auc": 0.91, "log_loss": 0.3}\'') from None
    if not isinstance(m, dict):
        raise FeatureStoreError("metrics must be a JSON object of name -> number", fix='e.g. {"auc": 0.91}')
    out = {}
    for k, v in m.items():
        if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(v):
            raise FeatureStoreError(f"metric {k!r} is {v!r}, not a finite number", fix='e.g. {"auc": 0.91}')
        out[str(k)] = float(v)
    return out


def _loads(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


@dataclass
class ModelVersion:
    name: str
    version: int
    created_at: datetime
    created_by: str | None
    artifact_sha256: str
    artifact_bytes: int
    artifact_format: str
    artifact_path: str
    estimator_class: str | None
    task: str
    training_dataset: str
    training_dataset_version: int
    training_dataset_hash: str | None
    fg_commits: list[dict[str, Any]]
    input_schema: list[dict[str, str]]
    output_schema: dict[str, Any]
    metrics: dict[str, float]
    description: str | None
    tags: dict[str, str]
    meta: dict[str, str]
    input_transformed: bool = False  # the model takes the TD's transformed columns (fitted statistics applied)
    # what registration trusted (artifact.trust_for): skops' extra trusted types, or an explicit pickle trust;
    # None for versions registered before it was recorded
    artifact_trust: dict[str, Any] | None = None
    status: str = "active"
    deleted_at: datetime | None = None
    deleted_reason: str | None = None
    aliases: list[str] = field(default_factory=list)
    validation: dict[str, Any] | None = None  # the latest validation summary

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def input_columns(self) -> list[str]:
        return [c["name"] for c in self.input_schema]

    @property
    def artifact_safety(self) -> str:
        """The format and what loading it trusts, in words (`fs model show`)."""
        return artifact.describe_trust(self.artifact_format, self.artifact_trust)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_VERSION_COLS = ("name, version, created_at, created_by, artifact_sha256, artifact_bytes, artifact_format, "
                 "artifact_path, estimator_class, task, training_dataset, training_dataset_version, "
                 "training_dataset_hash, fg_commits, input_schema, output_schema, metrics, description, tags, meta, "
                 "input_transformed, artifact_trust")


@dataclass
class LoadedModel:
    """A registered model, hash-verified and unpickled. `predict` feeds it exactly its input columns."""

    info: ModelVersion
    estimator: Any
    statistics: dict[str, Any] | None = None  # the TD's fitted transformations, for a model on transformed inputs

    def frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Rows of the feature view (or its training dataset) -> the model's input frame. A model trained on
        transformed inputs gets the TD version's transformations applied first, through the same SQL as its
        training data, so training and scoring cannot skew."""
        if self.statistics is not None:
            from ..transforms import transform_dataframe

            df = transform_dataframe(df, self.statistics)
        return artifact.model_frame(df, self.info.input_columns)

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.estimator.predict(self.frame(df)))

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        if not hasattr(self.estimator, "predict_proba"):
            raise FeatureStoreError(f"model {self.info.ref} ({type(self.estimator).__name__}) has no predict_proba",
                                    fix="use predict()")
        return np.asarray(self.estimator.predict_proba(self.frame(df)))


class ModelRegistry:
    """`FeatureStore(...).models`: register, get, list, alias, validate, lineage of models."""

    def __init__(self, fs: FeatureStore):
        self.fs = fs
        self.project = fs.project

    # -- plumbing ------------------------------------------------------------------------------------------
    @property
    def config(self) -> RegistryConfig:
        return RegistryConfig.load(self.project)

    @property
    def blobs(self) -> BlobStore:
        return BlobStore(self.config.store_dir)

    def _rw(self) -> Warehouse:
        return self.project.warehouse()

    def _ro(self) -> Warehouse:
        return self.project.warehouse(read_only=True)

    def _has_registry(self, wh: Warehouse) -> bool:
        return relation_exists(wh, META_SCHEMA, "model_versions")

    # -- register ------------------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        path: str | os.PathLike,
        training_dataset: str,
        metrics: dict[str, Any] | str | None = None,
        description: str = "",
        tags: dict[str, Any] | None = None,
        meta: dict[str, Any] | None = None,
        validate: bool = False,
        slices: list[str] | None = None,
        transformed: bool = False,
        trust_pickle: bool = False,
        trusted_types: list[str] | None = None,
    ) -> ModelVersion:
        """Store the artifact at `path` as the next version of `name`, trained on `training_dataset` ("FV:N").
        `transformed=True`: the model was fitted on the TD's transformed columns
        (`fs.training_dataset(..., transformed=True)`); validation and scoring then transform rows the same way.
        Artifacts: `.skops` (loaded without running code; `trusted_types` names the types beyond skops' defaults
        you trust, e.g. "sklearn.tree._tree.Tree"); pickles (`.joblib`, `.pkl`) only with `trust_pickle=True`,
        since loading one runs its author's code. What was trusted is recorded and is all a later load allows."""
        check_name(name)
        fv, td_version = parse_td_ref(training_dataset)
        cfg = self.config
        meta_d, tags_d, metrics_d = _kv(meta, "--meta"), _kv(tags, "--tag"), _metrics(metrics)
        check_required_meta(cfg.required_meta, meta_d)
        if slices:
            meta_d["slices"] = ",".join(slices)
        p = Path(path)
        if not p.is_file():
            raise FeatureStoreError(f"model artifact {p} does not exist",
                                    fix=f"save the fitted model first: {artifact.SAVE_HINT}")
        fmt = artifact.artifact_format(p)
        data = p.read_bytes()
        where = f"artifact {p}"
        trust = artifact.trust_for(fmt, data, where, trust_pickle=trust_pickle, trusted_types=trusted_types)
        est = artifact.load_bytes(data, where, fmt, trust)  # only after the trust check above
        task = artifact.task_of(est, where)
        artifact.check_fitted(est, where)

        with self._ro() as wh:
            td = load_td(wh, fv, td_version)
            sample = decimals_as_double(wh.arrow(f"select * from {td.table} limit 50")).to_pandas()
        if not td.labels:
            raise FeatureStoreError(f"training dataset {td.ref} declares no label column",
                                    fix="declare the label in the feature view and create a new training dataset")
        label = td.labels[0]
        stats = None
        if transformed:
            from ..transforms import transform_dataframe
            from ..transforms.view import td_statistics

            stats = td_statistics(td)
            sample = transform_dataframe(sample, stats)
        roles = {c["name"]: c.get("role") for c in td.columns}
        names_in = getattr(est, "feature_names_in_", None)
        leaked = [c for c in td.labels if names_in is not None and c in [str(n) for n in names_in]]
        if leaked:
            raise FeatureStoreError(f"{where} was fitted with the label column(s) {', '.join(leaked)} as input",
                                    fix="drop the label from the model's inputs (label leakage)")
        # inputs: features, request-time spine columns, and (transformed) the columns transformations produced;
        # never keys, timestamps, labels or the split
        allowed = [c for c in sample.columns if roles.get(c, "feature") not in ("key", "timestamp", "label", "split")]
        default = [c for c in allowed if roles.get(c, "feature") in ("feature", "on_demand")]
        inputs = artifact.input_columns(est, allowed, where, default=default)
        # declared TD types; a transformed column's type is what the transformation made of it
        types = {} if transformed else {c["name"]: c["type"] for c in td.columns}
        try:
            est.predict(artifact.model_frame(sample, inputs))
        except Exception as e:  # noqa: BLE001 - any failure here means the artifact does not fit the TD
            raise FeatureStoreError(
                f"{where} cannot predict on rows of training dataset {td.ref}: {type(e).__name__}: {e}",
                fix=f"train it on the training dataset's columns ({', '.join(inputs)}) as a pandas DataFrame"
                + ("" if transformed else "; if it was trained on transformed rows, register with --transformed"),
            ) from None
        input_schema = [{"name": c, "type": types.get(c) or str(sample[c].dtype)} for c in inputs]
        out_schema = artifact.output_schema(est, task, label, column_type(td, label))
        digest, relpath = self.blobs.put(data)
        now, user = utcnow(), current_user()
        # the write under the project's writer lock: concurrent registrations (processes or threads) take turns
        # (bounded by FS_LOCK_TIMEOUT) instead of failing to open the warehouse; the checks above ran in parallel
        with writer_lock(self.project), self._rw() as con:
            ensure_registry(con)

            def insert(con: Warehouse) -> int:
                con.execute(f"insert into {MODELS} (name, created_at, created_by, description) "
                            f"select ?, ?, ?, ? where not exists (select 1 from {MODELS} where name = ?)",
                            [name, now, user, description or None, name])
                version = con.execute(f"select coalesce(max(version), 0) + 1 from {VERSIONS} where name = ?",
                                      [name]).fetchall()[0][0]
                con.execute(
                    f"insert into {VERSIONS} ({_VERSION_COLS}) values "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [name, version, now, user, digest, len(data), fmt, relpath,
                     f"{type(est).__module__}.{type(est).__qualname__}", task, fv, td_version, td.content_hash,
                     json.dumps(td.fg_commits, default=str), json.dumps(input_schema), json.dumps(out_schema),
                     json.dumps(metrics_d), description or None, json.dumps(tags_d), json.dumps(meta_d),
                     bool(transformed), json.dumps(trust)],
                )
                return int(version)

            version = in_transaction(con, insert)
        if validate:
            self.validate(f"{name}:{version}")
        return self.info(f"{name}:{version}")

    # -- read ----------------------------------------------------------------------------------------------
    def _rows(self, con, where: str, params: list) -> list[ModelVersion]:
        # A registry written by an older release lacks the columns added since (they are added by the next write):
        # read them as NULL, so read-only commands keep working on it.
        have = {c for c, _ in con.describe(VERSIONS)}
        cols = ", ".join(c if c in have else f"null as {c}" for c in (x.strip() for x in _VERSION_COLS.split(",")))
        rows = con.execute(f"select {cols} from {VERSIONS} where {where} order by name, version",
                           params).fetchall()
        tomb = {(n, v): (t, r) for n, v, t, r in con.execute(
            f"select name, version, deleted_at, reason from {TOMBSTONES}").fetchall()}
        aliases: dict[tuple[str, int], list[str]] = {}
        for n, a, v in con.execute(f"select name, alias, version from {ALIASES} order by alias").fetchall():
            aliases.setdefault((n, v), []).append(a)
        vals = {k: {"validation_id": i, "validated_at": t, "status": st}
                for k, (i, t, st, _) in _latest_validations(con).items()}
        out = []
        for r in rows:
            d = dict(zip([c.strip() for c in _VERSION_COLS.split(",")], r, strict=True))
            for k in ("fg_commits", "input_schema", "output_schema", "metrics", "tags", "meta"):
                d[k] = _loads(d[k]) if d[k] is not None else ({} if k != "fg_commits" else [])
            d["artifact_trust"] = _loads(d["artifact_trust"])
            key = (d["name"], d["version"])
            mv = ModelVersion(**d)
            if key in tomb:
                mv.status, mv.deleted_at, mv.deleted_reason = "deleted", *tomb[key]
            mv.aliases = aliases.get(key, [])
            mv.validation = vals.get(key)
            out.append(mv)
        return out

    def info(self, ref: str, version: int | None = None, alias: str | None = None) -> ModelVersion:
        """The metadata of NAME[:VERSION|@ALIAS] (latest active version by default), without loading the artifact."""
        name, v, a = parse_model_ref(ref)
        v, a = version if version is not None else v, alias if alias is not None else a
        with self._ro() as con:
            if not self._has_registry(con) or not con.execute(
                    f"select 1 from {MODELS} where name = ?", [name]).fetchall():
                known = [r[0] for r in con.execute(f"select name from {MODELS} order by 1").fetchall()] \
                    if self._has_registry(con) else []
                raise FeatureStoreError(f"no model named {name!r} is registered",
                                        fix=f"registered models: {', '.join(known) or '(none)'}; see `fs model list`")
            if a is not None and a != "latest":
                rows = con.execute(f"select version from {ALIASES} where name = ? and alias = ?",
                                   [name, a]).fetchall()
                if not rows:
                    known = [r[0] for r in con.execute(
                        f"select alias from {ALIASES} where name = ? order by 1", [name]).fetchall()]
                    raise FeatureStoreError(f"model {name} has no alias {a!r}",
                                            fix=f"aliases of {name}: {', '.join(known) or '(none)'}; "
                                            f"set one with `fs model alias {name} VERSION {a}`")
                v = rows[0][0]
            versions = self._rows(con, "name = ?", [name])
        if v is None:
            active = [m for m in versions if m.status == "active"]
            if not active:
                raise FeatureStoreError(f"model {name} has no active version (all are deleted)",
                                        fix="register a new version")
            return active[-1]
        for m in versions:
            if m.version == v:
                return m
        raise FeatureStoreError(f"model {name} has no version {v}",
                                fix=f"versions: {', '.join(str(m.version) for m in versions)}")

    def get(self, ref: str, version: int | None = None, alias: str | None = None,
            allow_deleted: bool = False) -> LoadedModel:
        """Load NAME[:VERSION|@ALIAS]: the blob is re-hashed and must match the registered sha256, and it is loaded
        with what registration trusted, nothing more (a skops artifact with its recorded types only)."""
        info = self.info(ref, version=version, alias=alias)
        if info.status == "deleted" and not allow_deleted:
            raise FeatureStoreError(
                f"model {info.ref} was deleted at {info.deleted_at} ({info.deleted_reason or 'no reason given'})",
                fix="use another version; its bytes are kept for audit (SDK: get(..., allow_deleted=True))")
        data = self.blobs.read(info.artifact_sha256, info.artifact_path)
        stats = None
        if info.input_transformed:
            from ..transforms.view import td_statistics

            with self._ro() as wh:
                stats = td_statistics(load_td(wh, info.training_dataset, info.training_dataset_version))
        est = artifact.load_bytes(data, f"{info.ref} ({info.artifact_path})", info.artifact_format, info.artifact_trust)
        return LoadedModel(info, est, stats)

    def verify(self, ref: str) -> bool:
        info = self.info(ref)
        self.blobs.verify(info.artifact_sha256, info.artifact_path)
        return True

    def list(self, name: str | None = None, tags: dict[str, str] | None = None, meta: dict[str, str] | None = None,
             text: str | None = None, include_deleted: bool = True) -> list[ModelVersion]:
        """Model versions, filtered by name, tag/meta key=value pairs, or free text over names, descriptions and
        metadata values."""
        if not store_exists(self.project):
            return []
        with self._ro() as con:
            if not self._has_registry(con):
                return []
            rows = self._rows(con, "name = ?" if name else "true", [name] if name else [])
        out = []
        for m in rows:
            if not include_deleted and m.status == "deleted":
                continue
            if any(m.tags.get(k) != v for k, v in (tags or {}).items()):
                continue
            if any(m.meta.get(k) != v for k, v in (meta or {}).items()):
                continue
            if text:
                hay = " ".join([m.name, m.description or "", *m.tags.values(), *m.tags, *m.meta.values(),
                                m.training_dataset]).lower()
                if text.lower() not in hay:
                    continue
            out.append(m)
        return out

    def best(self, name: str, metric: str, max: bool = True) -> tuple[ModelVersion, float]:  # noqa: A002
        """The active version with the best `metric` (registered metrics first, else its latest validation)."""
        check_name(name)
        versions = [m for m in self.list(name) if m.status == "active"]
        if not versions:
            raise FeatureStoreError(f"model {name} has no active versions", fix="see `fs model list`")
        vals = self._validation_metrics(name)
        scored, seen = [], set()
        for m in versions:
            merged = {**vals.get(m.version, {}), **m.metrics}
            seen |= set(merged)
            if metric in merged and merged[metric] is not None:
                scored.append((m, float(merged[metric])))
        if not scored:
            raise FeatureStoreError(f"no version of {name} has metric {metric!r}",
                                    fix=f"known metrics: {', '.join(sorted(seen)) or '(none)'}")
        pick = (lambda t: t[1]) if max else (lambda t: -t[1])
        return sorted(scored, key=lambda t: (pick(t), t[0].version))[-1]

    def _validation_metrics(self, name: str) -> dict[int, dict[str, float]]:
        with self._ro() as wh:
            latest = _latest_validations(wh, name) if self._has_registry(wh) else {}
        return {v: {k: x for k, x in (_loads(m) or {}).items() if isinstance(x, int | float)}
                for (_, v), (_, _, _, m) in latest.items()}

    # -- aliases and tombstones ----------------------------------------------------------------------------
    def alias(self, name: str, version: int, alias: str, reason: str | None = None,
              force: bool = False) -> dict[str, Any]:
        """Point `alias` at `version` (logged in fs_meta.alias_history). An alias is how a model gets used, so the
        version's latest validation must have passed, unless `force` (recorded in the history's reason)."""
        check_alias(alias)
        if alias in RESERVED_ALIASES:
            raise FeatureStoreError(f"alias {alias!r} is reserved (it always means the newest version)",
                                    fix="pick another name, e.g. champion")
        m = self.info(f"{name}:{int(version)}")
        if m.status == "deleted":
            raise FeatureStoreError(f"model {m.ref} is deleted; an alias cannot point at it",
                                    fix="pick an active version; see `fs model list`")
        status = (m.validation or {}).get("status")
        if status != "passed":
            if not force:
                raise FeatureStoreError(
                    f"model {m.ref} has " + ("not been validated" if status is None else "failed its latest validation")
                    + f"; alias {alias!r} would put it in use",
                    fix=f"run `fs model validate {m.ref}` (and fix what fails), or pass --force to override "
                    "(recorded in the alias history)")
            reason = f"forced (validation: {status or 'none'})" + (f": {reason}" if reason else "")
        return self._move_alias(name, alias, int(version), reason)

    def unalias(self, name: str, alias: str, reason: str | None = None) -> dict[str, Any]:
        check_alias(alias)
        self.info(name)
        return self._move_alias(name, alias, None, reason)

    def _move_alias(self, name: str, alias: str, version: int | None, reason: str | None) -> dict[str, Any]:
        def move(con: Warehouse) -> dict[str, Any]:
            cur = con.execute(f"select version from {ALIASES} where name = ? and alias = ?", [name, alias]).fetchall()
            old = cur[0][0] if cur else None
            if old == version:
                if version is None:
                    raise FeatureStoreError(f"model {name} has no alias {alias!r}", fix="see `fs model show`")
                return {"name": name, "alias": alias, "old_version": old, "new_version": version,
                        "action": "unchanged"}  # nothing changed, nothing logged
            now, user = utcnow(), current_user()
            action = "remove" if version is None else ("set" if old is None else "move")
            con.execute(f"delete from {ALIASES} where name = ? and alias = ?", [name, alias])
            if version is not None:
                con.execute(f"insert into {ALIASES} (name, alias, version, updated_at, updated_by) "
                            "values (?, ?, ?, ?, ?)", [name, alias, version, now, user])
            seq = con.execute(f"select coalesce(max(seq), 0) + 1 from {ALIAS_HISTORY} where name = ? and alias = ?",
                              [name, alias]).fetchall()[0][0]
            con.execute(f"insert into {ALIAS_HISTORY} values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [name, alias, seq, action, old, version, now, user, reason])
            return {"name": name, "alias": alias, "old_version": old, "new_version": version, "action": action}

        with self._rw() as con:
            ensure_registry(con)
            return in_transaction(con, move)

    def alias_history(self, name: str, alias: str | None = None) -> list[dict[str, Any]]:
        if not store_exists(self.project):
            return []
        with self._ro() as con:
            if not self._has_registry(con):
                return []
            cols = ["name", "alias", "seq", "action", "old_version", "new_version", "changed_at", "changed_by",
                    "reason"]
            where, params = ("name = ? and alias = ?", [name, alias]) if alias is not None else ("name = ?", [name])
            rows = con.execute(f"select {', '.join(cols)} from {ALIAS_HISTORY} where {where} "
                               "order by changed_at, alias, seq", params).fetchall()
        return [dict(zip(cols, r, strict=True)) for r in rows]

    def delete(self, ref: str, reason: str | None = None) -> ModelVersion:
        """Tombstone a version: it can no longer be loaded or aliased; its bytes and row stay for audit."""
        m = self.info(ref)
        if ":" not in ref:
            raise FeatureStoreError("name the version to delete", fix=f"e.g. `fs model delete {m.name}:{m.version}`")
        if m.status == "deleted":
            raise FeatureStoreError(f"model {m.ref} is already deleted ({m.deleted_at})", fix="nothing to do")
        if m.aliases:
            raise FeatureStoreError(
                f"model {m.ref} is the target of alias(es) {', '.join(m.aliases)}",
                fix=f"move or remove them first: `fs model alias {m.name} OTHER_VERSION ALIAS` or "
                f"`fs model unalias {m.name} ALIAS`")
        with self._rw() as con:
            con.execute(f"insert into {TOMBSTONES} values (?, ?, ?, ?, ?)",
                        [m.name, m.version, utcnow(), current_user(), reason])
        return self.info(m.ref)

    # -- validation and provenance (separate modules) ------------------------------------------------------
    def validate(self, ref: str, slices: list[str] | None = None) -> ValidationReport:
        from .validate import validate_model

        return validate_model(self, ref, slices=slices)

    def artifact_integrity(self, m: ModelVersion) -> str:
        """"verified" when the stored artifact still has its registered sha256, else "FAILED: <why>"."""
        try:
            self.blobs.verify(m.artifact_sha256, m.artifact_path)
        except FeatureStoreError as e:
            return f"FAILED: {e.message}"
        return "verified"

    def validations(self, ref: str) -> list[dict[str, Any]]:
        m = self.info(ref)
        with self._ro() as con:
            cols = ["validation_id", "validated_at", "status", "training_dataset", "training_dataset_version",
                    "task", "n_test", "metrics", "slices", "ood", "checks"]
            rows = con.execute(f"select {', '.join(cols)} from {VALIDATIONS} where name = ? and version = ? "
                               "order by validation_id", [m.name, m.version]).fetchall()
        out = []
        for r in rows:
            d = dict(zip(cols, r, strict=True))
            for k in ("metrics", "slices", "ood", "checks"):
                d[k] = _loads(d[k])
            out.append(d)
        return out

    def score(self, ref: str, since: str | datetime | None = None, until: str | datetime | None = None,
              as_of: str | datetime | None = None) -> pd.DataFrame:
        """Batch inference: score the model's feature view (spine time in [since, until)) with NAME[:V|@ALIAS]."""
        from .batch import score_batch

        return score_batch(self, ref, since=since, until=until, as_of=as_of)

    def lineage(self, ref: str) -> dict[str, Any]:
        from .lineage import model_lineage

        return model_lineage(self, ref)

    def impact(self, feature_group: str) -> dict[str, Any]:
        from .lineage import fg_impact

        return fg_impact(self, feature_group)
