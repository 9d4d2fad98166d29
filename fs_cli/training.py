"""Training datasets (TDs): immutable, numbered materializations of a feature view over its label spine.

`create` compiles the feature view's model (macro fs_feature_view -> point-in-time join) with var `fs_as_of` set to
the commit time to read at, and materializes it as table fs_training.<fv>_v<N> with a `split` column, plus one row
in fs_meta.training_datasets: the feature-group commits read, the spine's time range, the split, row counts, the
feature list with types, the declaration and a content hash.

Guarantees:
- Immutable: a version is never rewritten; creating again always allocates N+1.
- Atomic: the table is built under a temporary name; renaming it and inserting its metadata row happen in one
  transaction, so a crash leaves no half version visible (only a `__building_*` table, dropped by the next create).
- Reproducible (bitemporal): every TD reads the feature groups as of one commit time (`--as-of`, or the creation
  time), so a TD created later with `--as-of` equal to an earlier TD's read time has the same content hash, given
  the same spine rows.
- Canonical order: rows are stored sorted by (spine timestamp, entity keys, the other columns); the random split
  hashes the row's number in that order with the seed, so it does not depend on how the warehouse scanned the spine.
"""

from __future__ import annotations

import decimal
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .commits import list_commits, sync_commits
from .errors import DeclarationError, FeatureStoreError
from .metadata import Catalog, FeatureView
from .project import Project
from .timeutil import parse_timestamp, utcnow
from .warehouse import META_SCHEMA, Warehouse, quote_ident, relation_exists

if TYPE_CHECKING:  # pyarrow and transforms/ (numpy, DuckDB) are imported by the functions that use them
    import pyarrow as pa

TD_SCHEMA = "fs_training"
TD_META = f"{META_SCHEMA}.training_datasets"  # as DuckDB and Postgres spell it (SQL clients, docs)
SPLIT_COLUMN = "split"
BUILDING_PREFIX = "__building_"
# A `__building_*` table of another process is dropped only once older than this (a live build on a server
# warehouse may take a while; on DuckDB only one process writes, so any table not in _IN_PROGRESS is dead).
ABANDONED_AFTER_S = 6 * 3600
HASH_FORMAT = "fs-td-hash/2"
_IN_PROGRESS: set[str] = set()  # temporary tables this process is building right now
_IN_PROGRESS_LOCK = threading.Lock()

# A step run on the finished (still temporary) table before it is published, e.g. fitting the view's
# transformations on the train split (fs_cli.training_transforms.fit_training_dataset). The caller passes the steps
# to create()/build() (the SDK composes them). f(warehouse, relation, feature_view, metadata) -> dict merged into
# the version's `statistics`, or None.
TDBuildStep = Callable[[Warehouse, str, FeatureView, dict[str, Any]], dict[str, Any] | None]


# -- split -------------------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^\d+(\.\d+)?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DEFAULT_NAMES = {1: ("train",), 2: ("train", "test"), 3: ("train", "validation", "test")}
SPLIT_HELP = ("random:0.8,0.2:SEED (train/test; three fractions add validation; or train=0.7,validation=0.1,"
              "test=0.2), time:CUTOFF (train before, test from CUTOFF; time:C1,C2 adds validation), or none")


@dataclass(frozen=True)
class SplitSpec:
    """How rows are assigned to splits. `none` puts every row in `train`."""

    kind: str  # none | random | time
    names: tuple[str, ...] = ("train",)
    fractions: tuple[float, ...] = ()
    seed: int = 0
    cutoffs: tuple[datetime, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> SplitSpec:
        if text is None or str(text).strip().lower() in ("", "none"):
            return cls("none")
        raw = str(text).strip()
        kind, _, rest = raw.partition(":")
        kind = kind.strip().lower()

        def fail(problem: str) -> FeatureStoreError:
            return FeatureStoreError(f"--split {raw!r}: {problem}", fix=f"use {SPLIT_HELP}")

        if kind == "random":
            parts = rest.split(":")
            if len(parts) > 2 or not parts[0].strip():
                raise fail("expected random:FRACTIONS[:SEED]")
            seed = 0
            if len(parts) == 2:
                if not parts[1].strip().isdigit():
                    raise fail(f"seed {parts[1]!r} is not a whole number")
                seed = int(parts[1])
            names, fractions = [], []
            for item in parts[0].split(","):
                name, eq, value = item.strip().rpartition("=")
                if not eq:
                    name, value = "", item.strip()
                if not _NUMBER.match(value.strip()) or not 0 < float(value) <= 1:
                    raise fail(f"fraction {value.strip()!r} is not a number in (0, 1]")
                if eq and not _NAME.match(name.strip()):
                    raise fail(f"split name {name!r} is not a plain name")
                names.append(name.strip())
                fractions.append(float(value))
            if any(names) and not all(names):
                raise fail("name every fraction or none")
            if not any(names):
                if len(fractions) not in _DEFAULT_NAMES:
                    raise fail("give 1-3 fractions (train,test or train,validation,test) or name them")
                names = list(_DEFAULT_NAMES[len(fractions)])
            if len(set(names)) != len(names):
                raise fail("split names repeat")
            if abs(sum(fractions) - 1.0) > 1e-6:
                raise fail(f"fractions add up to {sum(fractions):g}, not 1")
            return cls("random", tuple(names), tuple(fractions), seed)
        if kind == "time":
            cutoffs = []
            for item in rest.split(","):
                if not item.strip():
                    raise fail("expected time:CUTOFF[,CUTOFF2]")
                cutoffs.append(parse_timestamp(item.strip(), where=f"--split {raw!r}"))
            if len(cutoffs) > 2 or cutoffs != sorted(cutoffs) or len(set(cutoffs)) != len(cutoffs):
                raise fail("give one cutoff (train/test) or two increasing cutoffs (train/validation/test)")
            return cls("time", _DEFAULT_NAMES[len(cutoffs) + 1], (), 0, tuple(cutoffs))
        raise fail(f"unknown split kind {kind!r}")

    def __str__(self) -> str:
        if self.kind == "random":
            return "random:" + ",".join(f"{n}={f:g}" for n, f in zip(self.names, self.fractions, strict=True)) \
                + f":{self.seed}"
        if self.kind == "time":
            return "time:" + ",".join(c.isoformat(sep=" ") for c in self.cutoffs)
        return "none"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "spec": str(self), "names": list(self.names), "fractions": list(self.fractions),
                "seed": self.seed if self.kind == "random" else None,
                "cutoffs": [c.isoformat(sep=" ") for c in self.cutoffs]}

    def draw_sql(self, row_number: str, text: str = "varchar") -> tuple[str, list[Any]]:
        """SQL for the first 8 hex digits of md5('<seed>:<row number>') of the row numbered `row_number` (1-based,
        canonical order); `text` is the engine's text type. uniform_sql turns them into the draw."""
        if self.kind != "random":
            return f"cast(null as {text})", []
        return f"substr(md5(cast(? as {text}) || ':' || cast({row_number} as {text})), 1, 8)", [str(self.seed)]

    @staticmethod
    def uniform_sql(hex8: str, double: str = "double") -> str:
        """The random split's uniform draw in [0, 1) from 8 hex digits: their value / 2^32. Written with position()
        and arithmetic only, so every engine computes the same draw (no hex-cast syntax), stable across versions
        (unlike hash()) and reproducible in Python: split_fraction(seed, n)."""
        digits = " + ".join(
            f"cast(position(substr({hex8}, {i + 1}, 1) in '0123456789abcdef') - 1 as bigint) * {16 ** (7 - i)}"
            for i in range(8))
        return f"(cast(({digits}) as {double}) / cast(4294967296 as {double}))"

    def label_sql(self, ts: str, draw: str, text: str = "varchar") -> tuple[str, list[Any]]:
        """The split label as SQL (and its parameters), from the spine timestamp `ts` and the draw column."""
        if self.kind == "random":
            whens, params, acc = [], [], 0.0
            for name, frac in zip(self.names[:-1], self.fractions[:-1], strict=True):
                acc += frac
                whens.append(f"when {draw} < {acc!r} then ?")
                params.append(name)
            params.append(self.names[-1])
            return f"(case {' '.join(whens)} else ? end)", params
        if self.kind == "time":
            # Rows without a timestamp cannot be placed in time: they go to the last (held-out) split.
            whens, params = [], []
            for name, cutoff in zip(self.names[:-1], self.cutoffs, strict=True):
                whens.append(f"when {ts} < ? then ?")
                params += [cutoff, name]
            params.append(self.names[-1])
            return f"(case {' '.join(whens)} else ? end)", params
        return f"cast(? as {text})", ["train"]


def split_fraction(seed: int, row_number: int) -> float:
    """The random split's uniform draw for a row, in Python (the oracle of SplitSpec.sql)."""
    return int(hashlib.md5(f"{seed}:{row_number}".encode()).hexdigest()[:8], 16) / 2**32


# -- metadata ----------------------------------------------------------------------------------------------------

@dataclass
class TrainingDataset:
    feature_view: str
    version: int
    table: str  # quoted, schema-qualified
    created_at: datetime
    as_of: datetime | None  # the commit time asked for (None: the latest at creation)
    read_at: datetime  # the commit time the feature groups were read at
    fg_commits: list[dict[str, Any]]  # [{feature_group, commit_id, commit_time}]
    spine_model: str
    spine_read: str | None  # "as_of": a snapshot spine read at read_at; "live": read as it was at created_at
    spine_start: datetime | None
    spine_end: datetime | None
    split: dict[str, Any]
    row_counts: dict[str, int]
    rows: int
    content_hash: str
    features: list[dict[str, Any]]  # [{name, type, feature_group, feature}]
    labels: list[str]
    columns: list[dict[str, Any]]  # every column: {name, type, role}
    declaration: dict[str, Any]
    statistics: dict[str, Any] | None = None
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.feature_view}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        d["ref"] = self.ref
        for k in ("created_at", "as_of", "read_at", "spine_start", "spine_end"):
            d[k] = d[k].isoformat(sep=" ") if d[k] is not None else None
        return d


# (name, logical type): JSON documents are stored as text, which every engine has (Spark has no json type).
_META_COLUMNS = [
    ("feature_view", "text"), ("version", "integer"), ("table_name", "text"), ("created_at", "timestamp"),
    ("as_of", "timestamp"), ("read_at", "timestamp"), ("fg_commits", "text"), ("spine_model", "text"),
    ("spine_start", "timestamp"), ("spine_end", "timestamp"), ("split", "text"), ("row_counts", "text"),
    ("rows", "bigint"), ("content_hash", "text"), ("features", "text"), ("labels", "text"), ("columns", "text"),
    ("declaration", "text"), ("statistics", "text"), ("description", "text"), ("spine_read", "text"),
]
# spine_read is NULL on versions made before it was recorded (their spine was read live).
_NULLABLE = {"as_of", "spine_start", "spine_end", "statistics", "description", "spine_read"}
_JSON = {"fg_commits", "split", "row_counts", "features", "labels", "columns", "declaration", "statistics"}


def ensure_td_meta(wh: Warehouse) -> None:
    wh.ensure_schema(META_SCHEMA)
    wh.ensure_schema(TD_SCHEMA)
    if wh.relation_exists(META_SCHEMA, "training_datasets"):
        have = {n for n, _ in wh.describe(_td_meta(wh))}
        for n, t in _META_COLUMNS:  # a table from an older release: add the columns recorded since (nullable)
            if n not in have:
                wh.add_column(_td_meta(wh), n, t)
        return
    cols = ",\n".join(f"{wh.quote(n)} {wh.type(t)}{'' if n in _NULLABLE else ' not null'}"
                      for n, t in _META_COLUMNS)
    try:
        wh.execute(f"create table if not exists {_td_meta(wh)} (\n{cols}"
                   f"{wh.primary_key_clause(['feature_view', 'version'])})")
    except Exception as e:
        if not wh.is_write_conflict(e):  # a concurrent first create made it: fine
            raise


def _td_meta(wh: Warehouse) -> str:
    return wh.relation(META_SCHEMA, "training_datasets")


def table_name(feature_view: str, version: int) -> str:
    return f"{feature_view}_v{version}"


def _row_to_td(row: tuple, quote=quote_ident) -> TrainingDataset:
    d = dict(zip([n for n, _ in _META_COLUMNS], row, strict=True))
    for k in _JSON:
        if isinstance(d[k], str):
            d[k] = json.loads(d[k])
    return TrainingDataset(
        feature_view=d["feature_view"], version=int(d["version"]),
        table=f"{TD_SCHEMA}.{quote(d['table_name'])}", created_at=d["created_at"], as_of=d["as_of"],
        read_at=d["read_at"], fg_commits=d["fg_commits"], spine_model=d["spine_model"],
        spine_read=d["spine_read"] or "live", spine_start=d["spine_start"], spine_end=d["spine_end"], split=d["split"], row_counts=d["row_counts"],
        rows=int(d["rows"]), content_hash=d["content_hash"], features=d["features"], labels=d["labels"],
        columns=d["columns"], declaration=d["declaration"], statistics=d["statistics"], description=d["description"],
    )


def list_tds(wh: Warehouse, feature_view: str | None = None) -> list[TrainingDataset]:
    if not relation_exists(wh, META_SCHEMA, "training_datasets"):
        return []
    have = {n for n, _ in wh.describe(TD_META)}  # an older release's table lacks the newer (nullable) columns
    names = ", ".join(wh.quote(n) if n in have else "null" for n, _ in _META_COLUMNS)  # Spark: `x` a column
    where, params = ("where feature_view = ?", [feature_view]) if feature_view else ("", [])
    rows = wh.execute(f"select {names} from {TD_META} {where} order by feature_view, version", params).fetchall()
    return [_row_to_td(r, wh.quote) for r in rows]


def parse_ref(ref: str) -> tuple[str, int | None]:
    """'fv' (latest) or 'fv:3'."""
    fv, sep, ver = str(ref).partition(":")
    if not fv or (sep and not ver.strip().isdigit()):
        raise FeatureStoreError(f"training dataset {ref!r} is not FEATURE_VIEW or FEATURE_VIEW:VERSION",
                                fix="write e.g. `fv_fraud_detection` (the latest version) or `fv_fraud_detection:2`")
    return fv, int(ver) if sep else None


def get_td(wh: Warehouse, feature_view: str, version: int | None = None) -> TrainingDataset:
    tds = list_tds(wh, feature_view)
    if not tds:
        raise FeatureStoreError(f"feature view {feature_view} has no training datasets",
                                fix=f"create one: `fs training-dataset create {feature_view}`")
    if version is None:
        return tds[-1]
    for td in tds:
        if td.version == version:
            return td
    raise FeatureStoreError(f"training dataset {feature_view}:{version} does not exist",
                            fix=f"existing versions: {', '.join(str(t.version) for t in tds)}")


def info(project: Project, feature_view: str, version: int | None = None) -> TrainingDataset:
    """The metadata of one version (default: the latest), read from the project's target warehouse."""
    with project.warehouse(read_only=True) as wh:
        return get_td(wh, feature_view, version)


# -- creation ----------------------------------------------------------------------------------------------------

def _commits_read(wh: Warehouse, catalog: Catalog, fv: FeatureView, read_at: datetime) -> list[dict[str, Any]]:
    """The commit of each feature group that was current at `read_at`."""
    out = []
    for name in dict.fromkeys(s.feature_group for s in fv.selections):
        fg = catalog.fg(name)
        sync_commits(wh, fg)  # picks up publishes made by plain `dbt snapshot`
        commits = list_commits(wh, fg)
        if not commits:
            raise FeatureStoreError(f"feature view {fv.name} reads feature group {name}, which was never published",
                                    fix=f"publish it first: `fs run --select {fg.model}`")
        current = [c for c in commits if c.commit_time <= read_at]
        if not current:
            raise FeatureStoreError(
                f"feature group {name} was first published at {commits[0].commit_time}, after as_of {read_at}",
                fix=f"use an --as-of at or after {commits[0].commit_time} (see `fs commits {name}`)")
        c = current[-1]
        out.append({"feature_group": name, "commit_id": c.commit_id, "commit_time": c.commit_time.isoformat(sep=" ")})
    return out


def compile_feature_view(project: Project, fv: FeatureView, read_at: datetime | None) -> str:
    """The feature view's SQL as dbt compiles it (the macro), reading the feature groups as of `read_at`.

    dbt compiles it once per project state (fs_cli/manifest_cache.py `compiled_key`: files, profile, target, vars,
    declaration, dbt's versions) with a sentinel read time; later calls put the read time into the sentinel's
    literal without starting dbt."""
    from . import manifest_cache

    extra: dict = {}
    if "fs_resolved_views" not in project.vars:  # the macro joins what fs resolved, not a second reading of the YAML
        extra["fs_resolved_views"] = {fv.name: fv.resolved()}
    sentinel = f"'{manifest_cache.AS_OF_SENTINEL}'"
    key = manifest_cache.compiled_key(project, fv.name, {**extra, "fs_as_of": read_at is not None})
    sql = manifest_cache.cached_compiled(project, key)
    if sql is None:
        as_of = {"fs_as_of": manifest_cache.AS_OF_SENTINEL} if read_at is not None else {}
        sql = _dbt_compile(project, fv, {**extra, **as_of})
        if read_at is None or sentinel in sql:
            manifest_cache.store_compiled(project, key, sql)
    if read_at is None:
        return sql
    if sentinel not in sql:  # a macro that formats the time otherwise: compile with the real one
        return _dbt_compile(project, fv, {**extra, "fs_as_of": read_at.isoformat(sep=" ")})
    return sql.replace(sentinel, f"'{read_at.isoformat(sep=' ')}'")


def _dbt_compile(project: Project, fv: FeatureView, extra: dict[str, Any]) -> str:
    res = project.with_vars(extra).dbt(["compile", "--log-level", "none", "--select", fv.name])
    node = next((r.node for r in res.results if r.node.unique_id == fv.unique_id), None)
    if not res.success or node is None or not node.compiled_code:
        why = res.exception or next((r.message for r in res.results if r.message), None) or "no compiled SQL"
        raise FeatureStoreError(f"dbt could not compile feature view {fv.name}: {str(why).strip()}",
                                fix=f"run `dbt compile --select {fv.name}` to see the full error")
    return node.compiled_code.strip().rstrip(";")


def _check_spine(wh: Warehouse, fv: FeatureView) -> None:
    """The spine's columns, checked against the warehouse (its YAML need not list them)."""
    try:
        have = wh.query_columns(f"select * from {fv.spine_relation}")
    except FeatureStoreError:
        raise
    except Exception as e:  # noqa: BLE001 - any driver's "no such relation"
        raise FeatureStoreError(f"feature view {fv.name}: cannot read spine {fv.spine_model}: {str(e).splitlines()[0]}",
                                fix=f"build it first: `dbt run --select {fv.spine_model}` (or `fs run`)") from None
    missing = [c for c in fv.spine_columns if c not in have]
    if missing:
        raise DeclarationError([FeatureStoreError(
            f"feature view {fv.name} ({fv.path}): config.meta.fs.feature_view.spine uses column(s) "
            f"{', '.join(missing)}, which spine model {fv.spine_model} does not have",
            fix=f"use columns of {fv.spine_model} ({', '.join(have)}) or add them to the model")])


_BUILDING_STAMP = re.compile(r"_(\d{10})_[0-9a-f]{12}$")


def _building_name(feature_view: str) -> str:
    return f"{BUILDING_PREFIX}{feature_view}_{int(time.time())}_{uuid.uuid4().hex[:12]}"


def _drop_abandoned(wh: Warehouse) -> None:
    """Drop `__building_*` tables of builds that died: not this process's, and unstamped or older than
    ABANDONED_AFTER_S (another process may be building on a server warehouse right now)."""
    now = time.time()
    with _IN_PROGRESS_LOCK:
        mine = set(_IN_PROGRESS)
    for name in wh.tables(TD_SCHEMA):
        if not name.startswith(BUILDING_PREFIX) or name in mine:
            continue
        stamp = _BUILDING_STAMP.search(name)
        if stamp is None or now - int(stamp.group(1)) > ABANDONED_AFTER_S:
            wh.drop_table(wh.relation(TD_SCHEMA, name))


def _roles(fv: FeatureView) -> dict[str, dict[str, Any]]:
    roles: dict[str, dict[str, Any]] = {c: {"role": "key"} for c in fv.key_columns}
    roles[fv.spine_timestamp] = {"role": "timestamp"}
    for c in fv.spine_extra:
        roles.setdefault(c, {"role": "spine"})
    for c in fv.labels:
        roles[c] = {"role": "label"}
    for out, fg, f in fv.feature_columns:
        roles[out] = {"role": "feature", "feature_group": fg, "feature": f}
    for d in fv.on_demand:
        if isinstance(d, dict) and d.get("name"):
            roles[str(d["name"])] = {"role": "on_demand", "feature_group": None, "feature": str(d["name"])}
    roles[SPLIT_COLUMN] = {"role": "split"}
    return roles


def canonical_order(fv: FeatureView, columns: list[str]) -> list[str]:
    """Spine timestamp, entity keys, then every other column: a total order up to identical rows."""
    first = [fv.spine_timestamp, *fv.key_columns]
    return [*first, *(c for c in columns if c not in first)]


# -- engine-independent types and content hash ---------------------------------------------------------------------

def logical_type(type_name: str) -> str:
    """An engine's column type name -> boolean | number | timestamp | date | text | other. Integers, floats and
    decimals are all `number`: engines pick different numeric types for the same data (a seed's 1.5 is DOUBLE on
    DuckDB and numeric on Postgres), and a training dataset's content does not depend on that choice."""
    from .transforms.spec import INTEGER, NUMERIC, STRING, type_kind

    t = re.sub(r"\(.*\)$", "", (type_name or "").strip().lower()).strip()
    kind = type_kind(t)
    if kind in (NUMERIC, INTEGER):
        return "number"
    if kind == STRING:
        return "text"
    if t.startswith(("timestamp", "datetime")):
        return "timestamp"
    if t in ("bool", "boolean", "date"):
        return "boolean" if t.startswith("bool") else "date"
    return t


def _number_text(v: Any) -> str:
    """Integers exactly; other numbers at 12 significant digits, so the last-bit differences between engines'
    float arithmetic (summation order of an average) do not change a hash."""
    if isinstance(v, int):
        return str(v)
    f = float(v)
    if f != f or f in (float("inf"), float("-inf")):
        return repr(f)
    if f.is_integer() and abs(f) < 2**53:
        return str(int(f))
    return format(f, ".12g")


def _value_text(v: Any, kind: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if kind == "number" or isinstance(v, int | float | decimal.Decimal):
        return _number_text(v)
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        return v.isoformat(sep=" ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def _encode(v: Any, kind: str) -> str:
    # 'n' for NULL, 'v<length>:<text>' for a value: no two different rows encode alike
    if v is None:
        return "n"
    text = _value_text(v, kind)
    return f"v{len(text)}:{text}"


def hash_rows(table: pa.Table, types: list[tuple[str, str]]) -> str:
    """sha256 of a canonical text form of `table` (rows in the order given): the column names with their logical
    types, then one line per row. Computed in Python from the values, so the same rows hash the same on every
    engine (no engine's cast-to-text, timestamp or float formatting is involved)."""
    kinds = [logical_type(t) for _, t in types]
    h = hashlib.sha256(json.dumps([HASH_FORMAT, [[n, k] for (n, _), k in zip(types, kinds, strict=True)]]).encode())
    for batch in table.select([n for n, _ in types]).to_batches(max_chunksize=50_000):
        cols = [[_encode(v, k) for v in col.to_pylist()] for col, k in zip(batch.columns, kinds, strict=True)]
        h.update("".join("|".join(row) + "\n" for row in zip(*cols, strict=True)).encode())
    return h.hexdigest()


def order_by(wh: Warehouse, order: list[str], types: dict[str, str]) -> str:
    """ORDER BY items for `order`: NULLs last, text by code point (the same order on every engine)."""
    items = []
    for c in order:
        expr = wh.quote(c)
        if logical_type(types.get(c, "")) == "text":
            expr = wh.text_sort(expr)
        items.append(f"{expr} asc nulls last")
    return ", ".join(items)


def content_hash(wh: Warehouse, relation: str, order: list[str], types: list[tuple[str, str]]) -> str:
    """The content hash of a stored table: its rows in canonical `order`, hashed by hash_rows."""
    cols = ", ".join(wh.quote(n) for n, _ in types)
    table = wh.arrow(f"select {cols} from {relation} order by {order_by(wh, order, dict(types))}")
    return hash_rows(table, types)


# -- build and publish -----------------------------------------------------------------------------------------------

def build(wh: Warehouse, fv: FeatureView, sql: str, meta: dict[str, Any], split: SplitSpec,
          steps: Sequence[TDBuildStep] = ()) -> TrainingDataset:
    """Materialize compiled feature-view SQL as the next version of `fv`'s training dataset (see module doc)."""
    ensure_td_meta(wh)
    _drop_abandoned(wh)
    tmp = _building_name(fv.name)
    tmp_rel = wh.relation(TD_SCHEMA, tmp)
    with _IN_PROGRESS_LOCK:
        _IN_PROGRESS.add(tmp)
    try:
        out_types = dict(wh.describe(f"({sql})"))
        out_cols = list(out_types)
        missing = [c for c in fv.output_columns if c not in out_cols]
        if missing or SPLIT_COLUMN in out_cols:
            raise FeatureStoreError(f"feature view {fv.name} compiled to columns {out_cols}, expected {fv.output_columns}",
                                    fix="the model must be `{{ feature_store.fs_feature_view() }}`; rerun `dbt parse`")
        order = canonical_order(fv, out_cols)
        text, double = wh.type("text"), wh.type("double")
        draw_sql, draw_params = split.draw_sql("__fs_row", text)
        label_sql, label_params = split.label_sql(wh.quote(fv.spine_timestamp), "__fs_u", text)
        cols = ", ".join(wh.quote(c) for c in out_cols)
        wh.execute(
            f"""create table {tmp_rel} as
            with __fs_fv as ({sql}),
            __fs_numbered as (select *, row_number() over (order by {order_by(wh, order, out_types)}) as __fs_row
                              from __fs_fv),
            __fs_hashed as (select *, {draw_sql} as __fs_h from __fs_numbered),
            __fs_drawn as (select *, {SplitSpec.uniform_sql("__fs_h", double)} as __fs_u from __fs_hashed)
            select {cols}, {label_sql} as {wh.quote(SPLIT_COLUMN)}
            from __fs_drawn order by __fs_row""",
            [*draw_params, *label_params],
        )
        types = wh.describe(tmp_rel)
        split_col = wh.quote(SPLIT_COLUMN)
        counts = dict(wh.fetchall(f"select {split_col}, count(*) from {tmp_rel} group by {split_col}"))
        row_counts = {n: int(counts.get(n, 0)) for n in split.names}
        row_counts.update({k: int(v) for k, v in counts.items() if k not in row_counts})
        ts = wh.quote(fv.spine_timestamp)
        start, end = wh.fetchone(f"select min({ts}), max({ts}) from {tmp_rel}")
        roles = _roles(fv)
        columns = [{"name": n, "type": t, **roles.get(n, {"role": "spine"})} for n, t in types]
        meta = dict(meta)
        meta.update(
            split=split.to_dict(), row_counts=row_counts, rows=sum(row_counts.values()),
            spine_start=start, spine_end=end, columns=columns,
            features=[c for c in columns if c["role"] in ("feature", "on_demand")],
            labels=list(fv.labels),
            content_hash=content_hash(wh, tmp_rel, [*order, SPLIT_COLUMN], types),
        )
        stats: dict[str, Any] = {}
        for step in steps:
            stats.update(step(wh, tmp_rel, fv, meta) or {})
        meta["statistics"] = stats or None
        return _publish(wh, fv, tmp, meta)
    except BaseException:
        wh.drop_table(tmp_rel)
        raise
    finally:
        with _IN_PROGRESS_LOCK:
            _IN_PROGRESS.discard(tmp)


def _next_version(wh: Warehouse, feature_view: str) -> int:
    """One past the highest version in the metadata or among the tables (a table never gets overwritten)."""
    meta_max = wh.scalar(f"select coalesce(max(version), 0) from {TD_META} where feature_view = ?", [feature_view])
    pat = re.compile(rf"^{re.escape(feature_view)}_v(\d+)$")
    table_max = max((int(m.group(1)) for t in wh.tables(TD_SCHEMA) if (m := pat.match(t))), default=0)
    return max(int(meta_max), table_max) + 1


def _publish(wh: Warehouse, fv: FeatureView, tmp: str, meta: dict[str, Any]) -> TrainingDataset:
    """Allocate the version, rename the table and record it, in one transaction; retry when a concurrent writer
    took the same version (its table name or metadata key: the warehouse reports a write conflict)."""
    last_error: Exception | None = None
    placeholders = ", ".join("?" for _ in _META_COLUMNS)
    names = ", ".join(wh.quote(n) for n, _ in _META_COLUMNS)
    for attempt in range(20):
        try:
            with wh.transaction():
                version = _next_version(wh, fv.name)
                name = table_name(fv.name, version)
                wh.rename_table(TD_SCHEMA, tmp, name)
                row = {**meta, "feature_view": fv.name, "version": version, "table_name": name}
                values = [json.dumps(row[n], default=str) if n in _JSON and row.get(n) is not None else row.get(n)
                          for n, _ in _META_COLUMNS]
                wh.execute(f"insert into {TD_META} ({names}) values ({placeholders})", values)
            return get_td(wh, fv.name, version)
        except Exception as e:
            if not wh.is_write_conflict(e):
                raise
            last_error = e
            time.sleep(0.01 * (attempt + 1))
    raise FeatureStoreError(f"could not allocate a version of {fv.name}'s training dataset: {last_error}",
                            fix="another process keeps creating versions; retry")


def create(project: Project, catalog: Catalog, feature_view: str, as_of: str | datetime | None = None,
           split: str | None = None, description: str | None = None,
           steps: Sequence[TDBuildStep] = ()) -> TrainingDataset:
    """Create the next version of a feature view's training dataset (see module doc)."""
    fv = catalog.fv(feature_view)
    spec = SplitSpec.parse(split)
    now = utcnow()
    asked = parse_timestamp(as_of, where="--as-of") if as_of is not None else None
    if asked is not None and asked > now:
        raise FeatureStoreError(f"--as-of {asked} is in the future (now {now:%Y-%m-%d %H:%M:%S} UTC)",
                                fix="a training dataset can read only commits that exist: use a past commit time")
    # Read at one instant even without --as-of: a commit landing during the build cannot leak in, and the
    # version is reproducible later with --as-of read_at.
    read_at = asked or now
    with project.warehouse() as wh:
        commits = _commits_read(wh, catalog, fv, read_at)
        _check_spine(wh, fv)
    sql = compile_feature_view(project, fv, read_at)  # dbt holds its own connection: ours is closed meanwhile
    meta = {"created_at": now, "as_of": asked, "read_at": read_at, "fg_commits": commits,
            "spine_model": fv.spine_model, "spine_read": "as_of" if fv.spine_versioned else "live",
            "declaration": fv.spec, "description": description}
    with project.warehouse() as wh:
        return build(wh, fv, sql, meta, spec, steps)


# -- reading -----------------------------------------------------------------------------------------------------

def td_order(td: TrainingDataset) -> list[str]:
    """The canonical row order of a stored training dataset (see canonical_order), split last."""
    names = [c["name"] for c in td.columns]
    first = [c["name"] for c in td.columns if c["role"] == "timestamp"]
    first += [c["name"] for c in td.columns if c["role"] == "key"]
    rest = [n for n in names if n not in first and n != SPLIT_COLUMN]
    return [*first, *rest, SPLIT_COLUMN]


def td_order_by(wh: Warehouse, td: TrainingDataset) -> str:
    """ORDER BY items of a stored version's canonical order on `wh`."""
    return order_by(wh, td_order(td), {c["name"]: c.get("type") or "" for c in td.columns})


def decimals_as_double(table: pa.Table) -> pa.Table:
    """DECIMAL / numeric columns as float64: what pandas and models expect (not Python Decimal objects), and the
    same Arrow type whichever engine chose a decimal for the column."""
    import pyarrow as pa

    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            # Through the decimal's text: pyarrow's direct cast can land one ulp off (84.96 -> 84.96000000000001),
            # while parsing the exact decimal text gives the double nearest to it, as every engine's cast does.
            exact = table.column(i).cast(pa.string()).cast(pa.float64())
            table = table.set_column(i, pa.field(f.name, pa.float64(), f.nullable), exact)
    return table


def read_rows(wh: Warehouse, td: TrainingDataset, split: str | None = None) -> pa.Table:
    """A version's rows (one split or all) in canonical order, decimals as doubles."""
    if split is not None and split not in td.row_counts:
        raise FeatureStoreError(f"training dataset {td.ref} has no split {split!r}",
                                fix=f"its splits: {', '.join(td.row_counts)} (split {td.split['spec']})")
    where, params = (f"where {wh.quote(SPLIT_COLUMN)} = ?", [split]) if split is not None else ("", [])
    # Stored in canonical order; ordering again keeps it so for any reader and engine.
    return decimals_as_double(wh.arrow(f"select * from {td.table} {where} order by {td_order_by(wh, td)}", params))


def read(project: Project, feature_view: str, version: int | None = None,
         split: str | None = None) -> tuple[TrainingDataset, pa.Table]:
    with project.warehouse(read_only=True) as wh:
        td = get_td(wh, feature_view, version)
        return td, read_rows(wh, td, split)


def export(project: Project, feature_view: str, version: int | None, out: str | Path,
           fmt: str | None = None, split: str | None = None) -> tuple[TrainingDataset, int]:
    path = Path(out)
    suffix = path.suffix.lower().lstrip(".")
    fmt = (fmt or suffix or "").lower()
    if fmt not in ("parquet", "csv"):
        raise FeatureStoreError(f"cannot tell the export format of {out}", fix="pass --format parquet or --format csv")
    if suffix in ("parquet", "csv") and suffix != fmt:
        raise FeatureStoreError(f"--out {out} ends in .{suffix} but --format is {fmt}", fix="make them agree")
    td, table = read(project, feature_view, version, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, path)
    return td, table.num_rows
