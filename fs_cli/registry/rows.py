"""The registry's rows: reading and appending fs_meta model tables (schema.py declares them).

Values are bound parameters; JSON documents are stored as text and decoded here. Writes that allocate a number run
inside `in_transaction` (fs_cli/warehouse/retry.py), called by the registry.
"""

from __future__ import annotations

import getpass
import json
import os
from typing import Any

from ..timeutil import utcnow
from ..warehouse import META_SCHEMA, Warehouse, relation_exists
from .schema import ALIAS_HISTORY, ALIASES, MODELS, TOMBSTONES, VALIDATIONS, VERSIONS
from .version import ModelVersion

VERSION_COLS = ("name, version, created_at, created_by, artifact_sha256, artifact_bytes, artifact_format, "
                "artifact_path, estimator_class, task, training_dataset, training_dataset_version, "
                "training_dataset_hash, fg_commits, input_schema, output_schema, metrics, description, tags, meta, "
                "input_transformed, artifact_trust")
ALIAS_HISTORY_COLS = ["name", "alias", "seq", "action", "old_version", "new_version", "changed_at", "changed_by",
                      "reason"]
VALIDATION_COLS = ["validation_id", "validated_at", "status", "training_dataset", "training_dataset_version",
                   "task", "n_test", "metrics", "slices", "ood", "checks"]


def current_user() -> str:
    try:
        return os.environ.get("FS_USER") or getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"


def loads(v: Any) -> Any:
    return json.loads(v) if isinstance(v, str) else v


def _version_columns() -> list[str]:
    return [c.strip() for c in VERSION_COLS.split(",")]


def has_registry(wh: Warehouse) -> bool:
    return relation_exists(wh, META_SCHEMA, "model_versions")


def latest_validations(wh: Warehouse, name: str | None = None) -> dict[tuple[str, int], tuple]:
    """(name, version) -> the row (validation_id, validated_at, status, metrics) of its latest validation."""
    where, params = ("where name = ?", [name]) if name is not None else ("", [])
    latest: dict[tuple[str, int], tuple] = {}
    for n, v, i, t, st, m in wh.fetchall(
            f"select name, version, validation_id, validated_at, status, metrics from {VALIDATIONS} {where}", params):
        if (n, v) not in latest or i > latest[(n, v)][0]:
            latest[(n, v)] = (i, t, st, m)
    return latest


def read_versions(con: Warehouse, where: str, params: list) -> list[ModelVersion]:
    """The versions matching `where`, each with its tombstone, aliases and latest validation summary."""
    # A registry written by an older release lacks the columns added since (they are added by the next write):
    # read them as NULL, so read-only commands keep working on it.
    have = {c for c, _ in con.describe(VERSIONS)}
    cols = ", ".join(c if c in have else f"null as {c}" for c in _version_columns())
    rows = con.execute(f"select {cols} from {VERSIONS} where {where} order by name, version",
                       params).fetchall()
    tomb = {(n, v): (t, r) for n, v, t, r in con.execute(
        f"select name, version, deleted_at, reason from {TOMBSTONES}").fetchall()}
    aliases: dict[tuple[str, int], list[str]] = {}
    for n, a, v in con.execute(f"select name, alias, version from {ALIASES} order by alias").fetchall():
        aliases.setdefault((n, v), []).append(a)
    vals = {k: {"validation_id": i, "validated_at": t, "status": st}
            for k, (i, t, st, _) in latest_validations(con).items()}
    out = []
    for r in rows:
        d = dict(zip(_version_columns(), r, strict=True))
        for k in ("fg_commits", "input_schema", "output_schema", "metrics", "tags", "meta"):
            d[k] = loads(d[k]) if d[k] is not None else ({} if k != "fg_commits" else [])
        d["artifact_trust"] = loads(d["artifact_trust"])
        key = (d["name"], d["version"])
        mv = ModelVersion(**d)
        if key in tomb:
            mv.status, mv.deleted_at, mv.deleted_reason = "deleted", *tomb[key]
        mv.aliases = aliases.get(key, [])
        mv.validation = vals.get(key)
        out.append(mv)
    return out


def insert_version(con: Warehouse, row: dict[str, Any]) -> int:
    """Append the next version of row["name"] (and its models row on first registration); `row` holds every
    version column but `version`. Run it inside `in_transaction`: a concurrent writer of the same number retries."""
    name = row["name"]
    con.execute(f"insert into {MODELS} (name, created_at, created_by, description) "
                f"select ?, ?, ?, ? where not exists (select 1 from {MODELS} where name = ?)",
                [name, row["created_at"], row["created_by"], row["description"], name])
    version = con.execute(f"select coalesce(max(version), 0) + 1 from {VERSIONS} where name = ?",
                          [name]).fetchall()[0][0]
    cols = _version_columns()
    con.execute(f"insert into {VERSIONS} ({VERSION_COLS}) values ({', '.join('?' for _ in cols)})",
                [version if c == "version" else row[c] for c in cols])
    return int(version)


def model_exists(con: Warehouse, name: str) -> bool:
    return bool(con.execute(f"select 1 from {MODELS} where name = ?", [name]).fetchall())


def model_names(con: Warehouse) -> list[str]:
    return [r[0] for r in con.execute(f"select name from {MODELS} order by 1").fetchall()]


def alias_version(con: Warehouse, name: str, alias: str) -> int | None:
    """The version `alias` of `name` points at, or None when it is not set."""
    rows = con.execute(f"select version from {ALIASES} where name = ? and alias = ?", [name, alias]).fetchall()
    return rows[0][0] if rows else None


def alias_names(con: Warehouse, name: str) -> list[str]:
    return [r[0] for r in con.execute(f"select alias from {ALIASES} where name = ? order by 1", [name]).fetchall()]


def alias_history_rows(con: Warehouse, name: str, alias: str | None = None) -> list[dict[str, Any]]:
    where, params = ("name = ? and alias = ?", [name, alias]) if alias is not None else ("name = ?", [name])
    rows = con.execute(f"select {', '.join(ALIAS_HISTORY_COLS)} from {ALIAS_HISTORY} where {where} "
                       "order by changed_at, alias, seq", params).fetchall()
    return [dict(zip(ALIAS_HISTORY_COLS, r, strict=True)) for r in rows]


def validation_rows(con: Warehouse, name: str, version: int) -> list[dict[str, Any]]:
    rows = con.execute(f"select {', '.join(VALIDATION_COLS)} from {VALIDATIONS} where name = ? and version = ? "
                       "order by validation_id", [name, version]).fetchall()
    out = []
    for r in rows:
        d = dict(zip(VALIDATION_COLS, r, strict=True))
        for k in ("metrics", "slices", "ood", "checks"):
            d[k] = loads(d[k])
        out.append(d)
    return out


def insert_tombstone(con: Warehouse, name: str, version: int, reason: str | None) -> None:
    con.execute(f"insert into {TOMBSTONES} values (?, ?, ?, ?, ?)", [name, version, utcnow(), current_user(), reason])
