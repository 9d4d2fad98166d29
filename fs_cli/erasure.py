"""Erasure through history: `fs erase customer=42` (FeatureStore.erase).

Removes an entity's feature values from every place the feature store keeps them, and records that it did:

- snapshots (every commit) of every feature group keyed by the entity, their BI views (which read the snapshots),
  the candidates, leftover audited copies and pushed rows (fs_push.<group>): the entity's rows are KEPT and their
  feature values set to NULL. Why keep the rows and the key: a commit's inserted/updated/deleted/rows counts and
  the commit ids are derived from the snapshot's rows and times (fs_cli/commits.py), so they stay exactly what they
  were; and the snapshot is compared with the candidate on the key at every publish, so a replaced key would turn
  into a spurious delete + insert. The key is an identifier, not a feature value; the values are what is erased.
- training datasets: rows whose spine key is the entity's keep their key, spine time and split; every feature,
  label, on-demand and extra spine column is set to NULL (a training row describes the entity's event). A
  version's recorded content hash then describes the data as it was built; the erasure event names the versions.
- the online store (SQLite or Redis): the entity's keys are deleted from the serving version, one atomic step.
- inference logs: served-vector and prediction JSONL files under the project's state directory are rewritten
  (temp file + rename) without the entity's vectors; their rows in fs_meta.*_log / *_log_values are deleted, and
  the load watermarks are moved so `fs logs sync` neither skips nor re-reads lines.
- the push log (<state>/push/<group>.jsonl): the entity's unpublished pushed rows are dropped.
- validation results: failing rows the gate kept as samples (fs_meta.validation_results.samples) of the entity.

Re-publish protection: the erased keys are recorded in fs_meta.erased_keys. The snapshot pre-hook
`fs_publish_redact_erased` (macros/publish/erasure.sql) nulls their feature values in the candidate (and the audited
copy) right before every publish, under `fs run` and plain `dbt snapshot` alike: the snapshot then sees the rows
unchanged and the erasure survives the next run, with no new commit. Upstream sources are the user's to delete; the
report names the groups whose candidate still holds the entity.

The auditable event (fs_meta.erasures): erasure id, entity, how many keys, a SHA-256 over the sorted key texts (an
auditor holding a key can check it was erased), who, when, why and per-location row counts -- never feature values.

Plain Python over the warehouse layer: no click, no HTTP.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from .declarations.model import Catalog, Entity, FeatureGroup
from .errors import FeatureStoreError
from .timeutil import utcnow
from .warehouse import META_SCHEMA, Warehouse
from .warehouse.lock import writer_lock

ERASURES = "erasures"
ERASED_KEYS = "erased_keys"
KEY_SEPARATOR = "|"  # between the texts of a multi-column key (macros/publish/erasure.sql builds the same text)
_DBT_COLUMNS = {"dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to", "dbt_is_deleted"}
_TD_KEPT_ROLES = {"key", "timestamp", "split"}
_DELETE_CHUNK = 500
VALIDATION_RESULTS = "validation_results"  # fs_meta table of fs_cli/validation/results.py (failing-row samples)
PUSH_SCHEMA = "fs_push"  # pushed rows loaded by `fs run` (fs_cli/push_publish.py PUSH_SCHEMA)

_ERASURE_COLUMNS = [("erasure_id", "text"), ("entity", "text"), ("key_count", "bigint"), ("keys_sha256", "text"),
                    ("actor", "text"), ("erased_at", "timestamp"), ("reason", "text"), ("locations", "text"),
                    ("warnings", "text")]
_ERASED_KEY_COLUMNS = [("entity", "text"), ("key_text", "text"), ("erasure_id", "text"), ("erased_at", "timestamp")]


@dataclass
class ErasureTarget:
    """Keys of one entity to erase: each key is the text of its join-key values, in join_keys order."""

    entity: Entity
    keys: list[tuple[str, ...]]

    def key_texts(self) -> list[str]:
        return [KEY_SEPARATOR.join(k) for k in self.keys]


@dataclass
class ErasureReport:
    erasure_id: str
    actor: str
    erased_at: datetime
    reason: str | None
    entities: dict[str, int]  # entity -> keys erased
    locations: dict[str, int] = field(default_factory=dict)  # "<kind>:<where>" -> rows/lines/keys erased
    still_upstream: list[str] = field(default_factory=list)  # groups whose candidate still held the entity
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["erased_at"] = self.erased_at.isoformat(sep=" ")
        return d


# -- parsing ---------------------------------------------------------------------------------------------------------

def parse_targets(catalog: Catalog, specs: Sequence[str]) -> list[ErasureTarget]:
    """`ENTITY=KEY` texts (a multi-column key: `ENTITY=v1,v2` in join_keys order) -> targets per entity."""
    if not specs:
        raise FeatureStoreError("nothing to erase", fix="name the keys, e.g. `fs erase customer=42`")
    by_entity: dict[str, ErasureTarget] = {}
    for spec in specs:
        name, sep, value = str(spec).partition("=")
        name = name.strip()
        if not sep or not name:
            raise FeatureStoreError(f"{spec!r} is not ENTITY=KEY", fix="write e.g. `customer=42`")
        if name not in catalog.entities:
            raise FeatureStoreError(f"unknown entity {name!r} in {spec!r}",
                                    fix=f"entities: {', '.join(sorted(catalog.entities)) or '(none)'} "
                                        "(dbt_project.yml vars.fs_entities)")
        entity = catalog.entities[name]
        parts = [p.strip() for p in value.split(",")] if len(entity.join_keys) > 1 else [value.strip()]
        if len(parts) != len(entity.join_keys) or any(not p for p in parts):
            raise FeatureStoreError(
                f"{spec!r}: entity {name} is keyed by {', '.join(entity.join_keys)}; the key value is missing or "
                "has the wrong number of parts",
                fix=f"write `{name}=" + ",".join(f"<{k}>" for k in entity.join_keys) + "`")
        target = by_entity.setdefault(name, ErasureTarget(entity, []))
        if tuple(parts) not in target.keys:
            target.keys.append(tuple(parts))
    return list(by_entity.values())


# -- SQL helpers -------------------------------------------------------------------------------------------------------

def _key_match(wh: Warehouse, columns: Sequence[str], keys: Sequence[tuple[str, ...]]) -> tuple[str, list[Any]]:
    """A WHERE condition matching rows whose `columns` (as text) equal one of `keys`; values are parameters."""
    text = wh.type("text")
    one = " and ".join(f"cast({wh.quote(c)} as {text}) = ?" for c in columns)
    return "(" + " or ".join(f"({one})" for _ in keys) + ")", [v for k in keys for v in k]


def _columns(wh: Warehouse, relation: str) -> list[str]:
    return [n for n, _ in wh.describe(relation)]


def _redact(wh: Warehouse, relation: str, key_columns: Sequence[str], redact: Sequence[str],
            keys: Sequence[tuple[str, ...]]) -> int:
    """Set `redact` columns to NULL in rows matching `keys`; returns the rows matched."""
    where, params = _key_match(wh, key_columns, keys)
    n = int(wh.scalar(f"select count(*) from {relation} where {where}", params) or 0)
    if n and redact:
        sets = ", ".join(f"{wh.quote(c)} = null" for c in redact)
        wh.execute(f"update {relation} set {sets} where {where}", params)
    return n


def _groups_of(catalog: Catalog, entity: Entity) -> list[FeatureGroup]:
    return [fg for fg in catalog.feature_groups.values()
            if entity.name in fg.entities and set(entity.join_keys) <= set(fg.column_names)]


def _feature_columns(columns: Iterable[str], fg: FeatureGroup) -> list[str]:
    keep = set(fg.key_columns) | _DBT_COLUMNS
    return [c for c in columns if c not in keep and c.lower() not in _DBT_COLUMNS]


# -- the warehouse side ----------------------------------------------------------------------------------------------

def _relations_of_group(wh: Warehouse, fg: FeatureGroup) -> list[tuple[str, str]]:
    """(location label, relation) of every table holding the group's rows: snapshot, candidate, audited copies left
    by an interrupted run, pushed rows."""
    out: list[tuple[str, str]] = []
    if fg.snapshot_schema and wh.relation_exists(fg.snapshot_schema, fg.snapshot_name):
        out.append((f"snapshot:{fg.name}", wh.relation(fg.snapshot_schema, fg.snapshot_name)))
    if wh.relation_exists(fg.schema, fg.identifier):
        out.append((f"candidate:{fg.name}", wh.relation(fg.schema, fg.identifier)))
        prefix = f"{fg.identifier}__audited_".lower()
        out += [(f"candidate:{fg.name}", wh.relation(fg.schema, t)) for t in wh.tables(fg.schema)
                if t.lower().startswith(prefix)]
    if wh.relation_exists(PUSH_SCHEMA, fg.name):
        out.append((f"pushed:{fg.name}", wh.relation(PUSH_SCHEMA, fg.name)))
    return out


def count_matches(wh: Warehouse, catalog: Catalog, target: ErasureTarget) -> dict[tuple[str, ...], int]:
    """Per key, the snapshot and candidate rows of the entity's groups holding it (0: the key is unknown)."""
    counts = {k: 0 for k in target.keys}
    for fg in _groups_of(catalog, target.entity):
        for _label, rel in _relations_of_group(wh, fg):
            if not set(target.entity.join_keys) <= set(_columns(wh, rel)):
                continue
            for k in target.keys:
                where, params = _key_match(wh, target.entity.join_keys, [k])
                counts[k] += int(wh.scalar(f"select count(*) from {rel} where {where}", params) or 0)
    return counts


def _erase_groups(wh: Warehouse, catalog: Catalog, target: ErasureTarget, report: ErasureReport) -> None:
    for fg in _groups_of(catalog, target.entity):
        for label, rel in _relations_of_group(wh, fg):
            cols = _columns(wh, rel)
            if not set(target.entity.join_keys) <= set(cols):
                continue
            redact = _feature_columns(cols, fg)
            if label.startswith("pushed:"):  # only the group's own columns: fs_push's fs_* columns are bookkeeping
                redact = [c for c in redact if c in fg.column_names]
            n = _redact(wh, rel, target.entity.join_keys, redact, target.keys)
            if n:
                report.locations[label] = report.locations.get(label, 0) + n
                if label.startswith("candidate:") and fg.name not in report.still_upstream:
                    report.still_upstream.append(fg.name)


def _td_key_columns(declaration: dict[str, Any], entity: Entity) -> list[str] | None:
    """The spine columns holding `entity`'s join keys in a training dataset's declaration, or None."""
    mapping = ((declaration or {}).get("spine") or {}).get("entities") or {}
    m = mapping.get(entity.name)
    if isinstance(m, str) and len(entity.join_keys) == 1:
        return [m]
    if isinstance(m, dict) and all(k in m for k in entity.join_keys):
        return [str(m[k]) for k in entity.join_keys]
    return None


def _erase_training_datasets(wh: Warehouse, target: ErasureTarget, report: ErasureReport) -> None:
    from .training import list_tds

    for td in list_tds(wh):
        keys = _td_key_columns(td.declaration, target.entity)
        if keys is None:
            continue
        roles = {c["name"]: c.get("role") for c in td.columns}
        redact = [c for c in _columns(wh, td.table) if roles.get(c) not in _TD_KEPT_ROLES and c not in keys]
        n = _redact(wh, td.table, keys, redact, target.keys)
        if n:
            label = f"training_dataset:{td.ref}"
            report.locations[label] = report.locations.get(label, 0) + n


def _matches_entity(entity: Entity, values: dict[str, Any], keys: set[tuple[str, ...]]) -> bool:
    if not all(k in values for k in entity.join_keys):
        return False
    return tuple(_text(values[k]) for k in entity.join_keys) in keys


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return v if isinstance(v, str) else str(v)


def _erase_log_tables(wh: Warehouse, target: ErasureTarget, report: ErasureReport) -> None:
    from .monitoring.logtables import PREDICTION_VALUES, PREDICTIONS, SERVED, SERVED_VALUES

    keys = set(target.keys)
    for main, values in ((SERVED, SERVED_VALUES), (PREDICTIONS, PREDICTION_VALUES)):
        if not wh.relation_exists(META_SCHEMA, main):
            continue
        rel = wh.relation(META_SCHEMA, main)
        ids = [rid for rid, entity in wh.fetchall(f"select row_id, entity from {rel}")
               if _matches_entity(target.entity, _json_object(entity), keys)]
        for i in range(0, len(ids), _DELETE_CHUNK):
            chunk = ids[i:i + _DELETE_CHUNK]
            marks = ", ".join("?" for _ in chunk)
            wh.execute(f"delete from {rel} where row_id in ({marks})", chunk)
            if wh.relation_exists(META_SCHEMA, values):
                wh.execute(f"delete from {wh.relation(META_SCHEMA, values)} where row_id in ({marks})", chunk)
        if ids:
            report.locations[f"log_table:{main}"] = report.locations.get(f"log_table:{main}", 0) + len(ids)


def _erase_validation_samples(wh: Warehouse, catalog: Catalog, target: ErasureTarget, report: ErasureReport) -> None:
    """Failing rows the validation gate kept as samples (fs_meta.validation_results.samples, JSON) of the entity."""
    names = [fg.name for fg in _groups_of(catalog, target.entity)]
    if not names or not wh.relation_exists(META_SCHEMA, VALIDATION_RESULTS):
        return
    rel, keys = wh.relation(META_SCHEMA, VALIDATION_RESULTS), set(target.keys)
    groups = ", ".join("?" for _ in names)
    removed = 0
    for (text,) in wh.fetchall(f"select distinct samples from {rel} where feature_group in ({groups}) "
                               "and samples is not null", names):
        try:
            samples = json.loads(text)
        except ValueError:
            continue
        if not isinstance(samples, list):
            continue
        kept = [s for s in samples if not (isinstance(s, dict) and _matches_entity(target.entity, s, keys))]
        if len(kept) < len(samples):
            wh.execute(f"update {rel} set samples = ? where samples = ? and feature_group in ({groups})",
                       [json.dumps(kept), text, *names])
            removed += len(samples) - len(kept)
    if removed:
        report.locations["validation_samples"] = report.locations.get("validation_samples", 0) + removed


def _json_object(text: Any) -> dict[str, Any]:
    try:
        obj = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}


def ensure_erasure_tables(wh: Warehouse) -> None:
    wh.ensure_schema(META_SCHEMA)
    for table, cols in ((ERASURES, _ERASURE_COLUMNS), (ERASED_KEYS, _ERASED_KEY_COLUMNS)):
        ddl = ", ".join(f"{wh.quote(c)} {wh.type(t)}" for c, t in cols)
        wh.execute(f"create table if not exists {wh.relation(META_SCHEMA, table)} ({ddl})")


def _record_keys(wh: Warehouse, target: ErasureTarget, report: ErasureReport) -> None:
    rel = wh.relation(META_SCHEMA, ERASED_KEYS)
    for text in target.key_texts():
        present = wh.scalar(f"select count(*) from {rel} where entity = ? and key_text = ?",
                            [target.entity.name, text])
        if not present:
            wh.execute(f"insert into {rel} (entity, key_text, erasure_id, erased_at) values (?, ?, ?, ?)",
                       [target.entity.name, text, report.erasure_id, report.erased_at])


def _record_event(wh: Warehouse, targets: Sequence[ErasureTarget], report: ErasureReport) -> None:
    rel = wh.relation(META_SCHEMA, ERASURES)
    cols = ", ".join(wh.quote(c) for c, _ in _ERASURE_COLUMNS)
    marks = ", ".join("?" for _ in _ERASURE_COLUMNS)
    for t in targets:
        digest = hashlib.sha256("\n".join(sorted(t.key_texts())).encode()).hexdigest()
        wh.execute(f"insert into {rel} ({cols}) values ({marks})",
                   [report.erasure_id, t.entity.name, len(t.keys), digest, report.actor, report.erased_at,
                    report.reason, json.dumps(report.locations, sort_keys=True), json.dumps(report.warnings)])


def list_erasures(wh: Warehouse) -> list[dict[str, Any]]:
    if not wh.relation_exists(META_SCHEMA, ERASURES):
        return []
    cols = [c for c, _ in _ERASURE_COLUMNS]
    rows = wh.fetchall(f"select {', '.join(wh.quote(c) for c in cols)} from {wh.relation(META_SCHEMA, ERASURES)} "
                       "order by erased_at, erasure_id, entity")
    out = []
    for r in rows:
        d = dict(zip(cols, r, strict=True))
        d["locations"] = _json_object(d["locations"])
        d["warnings"] = json.loads(d["warnings"]) if d["warnings"] else []
        out.append(d)
    return out


# -- the files and the online store ----------------------------------------------------------------------------------

def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.erase-{uuid.uuid4().hex[:8]}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _served_line_without(obj: dict[str, Any], entity: Entity, keys: set[tuple[str, ...]]) -> tuple[dict | None, int]:
    """A served-vector log line without the entity's rows (None: no row left), and how many rows were removed."""
    resp = obj.get("response") or {}
    names = (resp.get("metadata") or {}).get("feature_names") or []
    results = resp.get("results") or []
    if not all(k in names for k in entity.join_keys) or not results:
        return obj, 0
    at = {n: i for i, n in enumerate(names)}
    n_rows = len(results[0].get("values") or [])
    drop = {i for i in range(n_rows)
            if tuple(_text(results[at[k]]["values"][i]) for k in entity.join_keys) in keys}
    if not drop:
        return obj, 0
    if len(drop) == n_rows:
        return None, len(drop)
    for res in results:
        for field_name in ("values", "statuses", "event_timestamps"):
            if isinstance(res.get(field_name), list) and len(res[field_name]) == n_rows:
                res[field_name] = [v for i, v in enumerate(res[field_name]) if i not in drop]
    return obj, len(drop)


def _rewrite_jsonl(path: Path, edit: Callable[[dict[str, Any]], tuple[dict | None, int]]
                   ) -> tuple[int, Callable[[int], int]]:
    """Rewrite `path` with `edit` applied to each JSON line; returns (entity rows removed, old byte offset -> new
    byte offset) -- the latter moves a load watermark to the same line boundary in the new file."""
    data = path.read_bytes()
    out: list[bytes] = []
    boundaries: list[tuple[int, int]] = [(0, 0)]  # (old end offset, new end offset) after each complete line
    removed, old_pos, new_pos = 0, 0, 0
    for line in data.splitlines(keepends=True):
        old_pos += len(line)
        new_line = line
        if line.endswith(b"\n"):
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                obj = None
            if isinstance(obj, dict):
                edited, n = edit(obj)
                if n:
                    removed += n
                    new_line = b"" if edited is None else orjson.dumps(edited) + b"\n"
        out.append(new_line)
        new_pos += len(new_line)
        boundaries.append((old_pos, new_pos))
    if removed:
        _write_atomically(path, b"".join(out))

    def moved(offset: int) -> int:
        best = 0
        for old, new in boundaries:
            if old <= offset:
                best = new
        return best

    return removed, moved


def _erase_log_files(wh: Warehouse, state_dir: Path, target: ErasureTarget, report: ErasureReport) -> None:
    from .monitoring.logs import PREDICTIONS_DIR, SERVED_DIR
    from .monitoring.logtables import FILES

    keys = set(target.keys)
    marks_rel = wh.relation(META_SCHEMA, FILES) if wh.relation_exists(META_SCHEMA, FILES) else None

    def prediction(obj: dict[str, Any]) -> tuple[dict | None, int]:
        entity = obj.get("entity")
        return (None, 1) if isinstance(entity, dict) and _matches_entity(target.entity, entity, keys) else (obj, 0)

    for kind, folder, pattern, edit in (
            ("served", SERVED_DIR, "served-*.jsonl", lambda o: _served_line_without(o, target.entity, keys)),
            ("predictions", PREDICTIONS_DIR, "predictions-*.jsonl", prediction)):
        directory = state_dir / folder
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob(pattern)):
            removed, moved = _rewrite_jsonl(path, edit)
            if not removed:
                continue
            report.locations[f"log_file:{folder}"] = report.locations.get(f"log_file:{folder}", 0) + removed
            if marks_rel is not None:
                mark = wh.scalar(f"select max(bytes_loaded) from {marks_rel} where kind = ? and file = ?",
                                 [kind, path.name])
                if mark is not None:
                    wh.execute(f"delete from {marks_rel} where kind = ? and file = ?", [kind, path.name])
                    wh.execute(f"insert into {marks_rel} (file, kind, bytes_loaded, loaded_at) values (?, ?, ?, ?)",
                               [path.name, kind, moved(int(mark)), report.erased_at])


def _erase_push_log(state_dir: Path, catalog: Catalog, target: ErasureTarget, report: ErasureReport) -> None:
    from .online.push_log import PushLog, push_dir_for

    log = PushLog(push_dir_for(state_dir))
    keys = set(target.keys)
    names = {fg.name for fg in _groups_of(catalog, target.entity)}
    for group in log.groups():
        if group not in names:
            continue
        n = log.remove_where(group, lambda rec: _matches_entity(target.entity, rec.get("row") or {}, keys))
        if n:
            report.locations[f"push_log:{group}"] = report.locations.get(f"push_log:{group}", 0) + n


def _online_keys(wh: Warehouse, fg: FeatureGroup, key_columns: Sequence[str], target: ErasureTarget) -> list[str]:
    """The online keys (encode_key of the group's lookup key values) of the entity's rows, from the snapshot."""
    from .online.store import encode_key

    if not (fg.snapshot_schema and wh.relation_exists(fg.snapshot_schema, fg.snapshot_name)):
        return []
    where, params = _key_match(wh, target.entity.join_keys, target.keys)
    cols = ", ".join(wh.quote(c) for c in key_columns)
    rows = wh.fetchall(f"select distinct {cols} from {wh.relation(fg.snapshot_schema, fg.snapshot_name)} "
                       f"where {where}", params)
    return [encode_key(list(r)) for r in rows]


def _erase_online(wh: Warehouse, store: Any, catalog: Catalog, target: ErasureTarget, report: ErasureReport) -> None:
    from .online.store import SupersededError

    for fg in _groups_of(catalog, target.entity):
        for _attempt in range(5):
            pointer = store.pointers().get(fg.name)
            if pointer is None:
                break
            keys = _online_keys(wh, fg, list(pointer.spec.keys), target)
            if not keys:
                break
            found = store.read([(fg.name, keys)])[0]
            present = sum(1 for v in (found.values if found else []) if v is not None)
            if not present:
                break
            try:
                store.apply_incremental(fg.name, [], keys, dict(pointer.meta), base=(pointer.gen, pointer.version))
            except SupersededError:
                continue  # a materialization flipped meanwhile: erase from the version serving now
            report.locations[f"online:{fg.name}"] = report.locations.get(f"online:{fg.name}", 0) + present
            break
        else:
            report.warnings.append(f"online store: {fg.name} kept changing; run `fs erase` again")


# -- the whole erasure -------------------------------------------------------------------------------------------------

def default_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (containers): still an auditable event
        return f"uid:{os.getuid()}"


def erase(project: Any, catalog: Catalog, specs: Sequence[str], *, reason: str | None = None,
          actor: str | None = None, store_opener: Callable[[], Any] | None = None) -> ErasureReport:
    """Erase the entities named by `specs` (`ENTITY=KEY`) everywhere (module docstring) and record the event.

    Every key must be known (held by a snapshot or candidate of a group keyed by its entity): an unknown key raises
    FeatureStoreError before anything changes. `store_opener`: opens the online store (None: skip it)."""
    targets = parse_targets(catalog, specs)
    with writer_lock(project):  # not between another writer's audit and publish (fs run), nor beside a materialize
        return _erase_locked(project, catalog, targets, reason, actor, store_opener)


def _erase_locked(project: Any, catalog: Catalog, targets: list[ErasureTarget], reason: str | None,
                  actor: str | None, store_opener: Callable[[], Any] | None) -> ErasureReport:
    report = ErasureReport(erasure_id=uuid.uuid4().hex, actor=actor or default_actor(), erased_at=utcnow(),
                           reason=reason, entities={t.entity.name: len(t.keys) for t in targets})
    state_dir = Path(project.state_dir)
    with project.warehouse(read_only=False) as wh:
        for t in targets:
            if not _groups_of(catalog, t.entity):
                raise FeatureStoreError(f"no feature group is keyed by entity {t.entity.name}",
                                        fix="see `fs list`; nothing was changed")
            unknown = [k for k, n in count_matches(wh, catalog, t).items() if not n]
            if unknown:
                shown = ", ".join(f"{t.entity.name}={','.join(k)}" for k in unknown)
                raise FeatureStoreError(f"{shown}: no published or candidate row of a {t.entity.name} feature group "
                                        "has this key; nothing was changed",
                                        fix="check the key value (as stored, e.g. `42`, not `042`) with `fs read`")
        ensure_erasure_tables(wh)
        with wh.transaction():
            for t in targets:
                _record_keys(wh, t, report)  # first: the next publish redacts them even if a later step fails
                _erase_groups(wh, catalog, t, report)
                _erase_training_datasets(wh, t, report)
                _erase_log_tables(wh, t, report)
                _erase_validation_samples(wh, catalog, t, report)
        store = store_opener() if store_opener is not None else None
        try:
            for t in targets:
                if store is not None:
                    _erase_online(wh, store, catalog, t, report)
                _erase_log_files(wh, state_dir, t, report)
                _erase_push_log(state_dir, catalog, t, report)
        finally:
            if store is not None:
                store.close()
        if report.still_upstream:
            report.warnings.append(
                "the candidates of " + ", ".join(sorted(report.still_upstream)) + " held the erased keys: the upstream "
                "sources still have them. Every later publish redacts erased keys (fs_meta.erased_keys), but delete "
                "them upstream too")
        _record_event(wh, targets, report)
    return report
