"""The model registry: immutable, versioned, hash-verified model artifacts linked to their training data.

A model version is a row in fs_meta.model_versions plus a content-addressed blob; neither is ever updated. Deleting a
version records a tombstone (the bytes stay). Aliases (champion, challenger, ...) are the only mutable pointers and
every change is appended to fs_meta.alias_history.

`ModelRegistry` orchestrates; the parts live beside it: version.py (ModelVersion, LoadedModel, references),
rows.py (the fs_meta rows), artifact.py (formats, trust, loading), registration.py (checks against the training
dataset), aliases.py (alias rules and moves), validate.py, batch.py, lineage.py.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import FeatureStoreError
from ..timeutil import utcnow
from ..versions import latest_or_version
from ..warehouse import Warehouse, store_exists
from ..warehouse.lock import writer_lock
from ..warehouse.retry import in_transaction
from . import artifact, rows
from .aliases import RESERVED_ALIASES, check_promotion, check_settable, move_alias
from .blobs import BlobStore
from .config import RegistryConfig, check_alias, check_name, check_required_meta
from .registration import key_values, parse_metrics, schemas_on_td
from .rows import current_user
from .schema import ensure_registry
from .td import decimals_as_double, load_td, parse_td_ref
from .version import LoadedModel, ModelVersion, parse_model_ref

if TYPE_CHECKING:
    from ..sdk import FeatureStore
    from .validate import ValidationReport

# names importable from here since before the split (fs_cli.registry re-exports the public ones)
__all__ = ["RESERVED_ALIASES", "LoadedModel", "ModelRegistry", "ModelVersion", "current_user", "parse_model_ref"]


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
        return rows.has_registry(wh)

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
        meta_d, tags_d, metrics_d = key_values(meta, "--meta"), key_values(tags, "--tag"), parse_metrics(metrics)
        check_required_meta(cfg.required_meta, meta_d)
        if slices:
            meta_d["slices"] = ",".join(slices)
        art = artifact.inspect_file(path, trust_pickle=trust_pickle, trusted_types=trusted_types)

        with self._ro() as wh:
            td = load_td(wh, fv, td_version)
            sample = decimals_as_double(wh.arrow(f"select * from {td.table} limit 50")).to_pandas()
        input_schema, out_schema = schemas_on_td(art, td, sample, transformed)
        digest, relpath = self.blobs.put(art.data)
        now, user = utcnow(), current_user()
        est = art.estimator
        row = {"name": name, "created_at": now, "created_by": user, "artifact_sha256": digest,
               "artifact_bytes": len(art.data), "artifact_format": art.fmt, "artifact_path": relpath,
               "estimator_class": f"{type(est).__module__}.{type(est).__qualname__}", "task": art.task,
               "training_dataset": fv, "training_dataset_version": td_version, "training_dataset_hash": td.content_hash,
               "fg_commits": json.dumps(td.fg_commits, default=str), "input_schema": json.dumps(input_schema),
               "output_schema": json.dumps(out_schema), "metrics": json.dumps(metrics_d),
               "description": description or None, "tags": json.dumps(tags_d), "meta": json.dumps(meta_d),
               "input_transformed": bool(transformed), "artifact_trust": json.dumps(art.trust)}
        # the write under the project's writer lock: concurrent registrations (processes or threads) take turns
        # (bounded by FS_LOCK_TIMEOUT) instead of failing to open the warehouse; the checks above ran in parallel
        with writer_lock(self.project), self._rw() as con:
            ensure_registry(con)
            version = in_transaction(con, lambda con: rows.insert_version(con, row))
        if validate:
            self.validate(f"{name}:{version}")
        return self.info(f"{name}:{version}")

    # -- read ----------------------------------------------------------------------------------------------
    def _rows(self, con, where: str, params: list) -> list[ModelVersion]:
        return rows.read_versions(con, where, params)

    def info(self, ref: str, version: int | None = None, alias: str | None = None) -> ModelVersion:
        """The metadata of NAME[:VERSION|@ALIAS] (latest active version by default), without loading the artifact."""
        name, v, a = parse_model_ref(ref)
        v, a = version if version is not None else v, alias if alias is not None else a
        with self._ro() as con:
            if not self._has_registry(con) or not rows.model_exists(con, name):
                known = rows.model_names(con) if self._has_registry(con) else []
                raise FeatureStoreError(f"no model named {name!r} is registered",
                                        fix=f"registered models: {', '.join(known) or '(none)'}; see `fs model list`")
            if a is not None and a != "latest":
                v = rows.alias_version(con, name, a)
                if v is None:
                    known = rows.alias_names(con, name)
                    raise FeatureStoreError(f"model {name} has no alias {a!r}",
                                            fix=f"aliases of {name}: {', '.join(known) or '(none)'}; "
                                            f"set one with `fs model alias {name} VERSION {a}`")
            versions = self._rows(con, "name = ?", [name])
        return latest_or_version(
            versions, v, may_be_latest=lambda m: m.status == "active",
            no_latest=lambda: FeatureStoreError(f"model {name} has no active version (all are deleted)",
                                                fix="register a new version"),
            unknown=lambda existing: FeatureStoreError(f"model {name} has no version {v}", fix=f"versions: {existing}"))

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
            found = self._rows(con, "name = ?" if name else "true", [name] if name else [])
        out = []
        for m in found:
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
            latest = rows.latest_validations(wh, name) if self._has_registry(wh) else {}
        return {v: {k: x for k, x in (rows.loads(m) or {}).items() if isinstance(x, int | float)}
                for (_, v), (_, _, _, m) in latest.items()}

    # -- aliases and tombstones ----------------------------------------------------------------------------
    def alias(self, name: str, version: int, alias: str, reason: str | None = None,
              force: bool = False) -> dict[str, Any]:
        """Point `alias` at `version` (logged in fs_meta.alias_history). An alias is how a model gets used, so the
        version's latest validation must have passed, unless `force` (recorded in the history's reason)."""
        check_settable(alias)
        m = self.info(f"{name}:{int(version)}")
        reason = check_promotion(m, alias, reason, force)
        return self._move_alias(name, alias, int(version), reason)

    def unalias(self, name: str, alias: str, reason: str | None = None) -> dict[str, Any]:
        check_alias(alias)
        self.info(name)
        return self._move_alias(name, alias, None, reason)

    def _move_alias(self, name: str, alias: str, version: int | None, reason: str | None) -> dict[str, Any]:
        with self._rw() as con:
            ensure_registry(con)
            return in_transaction(con, lambda con: move_alias(con, name, alias, version, reason))

    def alias_history(self, name: str, alias: str | None = None) -> list[dict[str, Any]]:
        if not store_exists(self.project):
            return []
        with self._ro() as con:
            if not self._has_registry(con):
                return []
            return rows.alias_history_rows(con, name, alias)

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
            rows.insert_tombstone(con, m.name, m.version, reason)
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
            return rows.validation_rows(con, m.name, m.version)

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
