"""`fs run` with nothing changed: the inputs of the last clean run, compared before anything is built.

A scheduled `fs run` mostly finds nothing new, yet a full run imports dbt, parses the project and rebuilds and tests
every model before the audit can conclude "unchanged" (fs_cli/unchanged.py): ~10 s of CPU on the demo, minutes on
Spark. dbt's own answer (`state:modified+` and `source_status:fresher+`) needs a saved manifest, a `loaded_at`
column on every source, and still starts dbt. Here the run compares what its result depends on, and skips dbt
entirely when all of it is what the last clean run saw:

- the project: a fingerprint of every file dbt's parse reads (path, size, modification time), the target, the vars,
  the FS_/DBT_ environment (fs_cli/manifest_cache.fingerprint), and the dbt and adapter versions;
- the data: the content token (`Warehouse.content_token`: row count and an order-independent sum of 64-bit row
  hashes) of every source the build reads, taken *before* that build (a source written during the run is seen as
  changed next time), and of every table the build left: seeds, models, the published snapshots, pushed rows;
- the push log: the byte size of each group's log (a new push is a change).

A clean run (every group ok, no warning, nothing else failing, no `--select`) records those inputs in
`fs_meta.run_inputs`, and only when the result provably depends on nothing else:
- every compiled node (models and tests) parses (sqlglot, in the target's dialect) and reads only relations in the
  record: a hard-coded table, `read_parquet(...)` or another table function makes the run ineligible;
- no compiled node calls the clock or a random generator (`now()`, `current_timestamp`, `random()`, ...), and no
  model's Jinja, through the macros it may call, reads `run_started_at`, `invocation_id`, the time
  (`modules.datetime...now()`) or `env_var`: those change the result with no input changing;
- every feature group is one the next full run would skip as unchanged (fs_cli/unchanged.py: published, its latest
  commit validated by a passing gate run, no freshness expectation -- the clock again; its candidate equals its
  published version after any clean run).
Every full run first deletes the record, so a run that dies midway leaves none. `fs run --rebuild` (SDK
`run(rebuild=True)`) always takes the full path.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import manifest_cache
from .declarations.model import Catalog
from .online.push_log import PushLog, push_dir_for
from .project import Project
from .push_publish import PUSH_SCHEMA
from .timeutil import utcnow
from .unchanged import validated_latest_commit
from .warehouse import META_SCHEMA, Warehouse

TABLE = "run_inputs"
#: What `dbt build` leaves out in `fs run` (fs_cli/pipeline.py): part of the fingerprint, like the files.
FEATURE_VIEWS_PATH = "models/feature_views"
#: Jinja names whose value changes from run to run with no input changing.
_VOLATILE_JINJA = re.compile(r"\b(run_started_at|invocation_id|env_var|(?:now|utcnow|today)(?=\s*\())")
#: SQL functions whose value changes from run to run (sqlglot's class names and plain function names).
_VOLATILE_SQL = {"currenttimestamp", "currentdate", "currenttime", "currentdatetime", "currenttimestampltz",
                 "localtimestamp", "localtime", "now", "getdate", "sysdate", "systimestamp", "transaction_timestamp",
                 "statement_timestamp", "clock_timestamp", "timeofday", "rand", "randn", "random", "uuid",
                 "gen_random_uuid", "uuid_generate_v4", "unix_timestamp", "current_timestamp", "current_date"}
#: Table functions that generate rows from their arguments alone (a time grid, an array): no input of their own.
_GENERATED_TABLES = {"generateseries", "generate_series", "explodinggenerateseries", "range", "unnest", "explode", "posexplode", "sequence",
                     "generatedateseries", "generatetimestampseries"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Recorded:
    """The last clean run whose inputs this run found unchanged."""

    run_id: str | None
    recorded_at: Any
    relations: int

    def to_dict(self) -> dict[str, Any]:
        at = self.recorded_at.isoformat(sep=" ", timespec="seconds") if hasattr(self.recorded_at, "isoformat") else self.recorded_at
        return {"run_id": self.run_id, "recorded_at": at, "relations_compared": self.relations}


def _kind(node: Any) -> str:
    return str(getattr(node, "resource_type", "")).split(".")[-1].lower()


def fingerprint(project: Project) -> str:
    """The project as this run parses it (files, target, vars, environment) and the tools that build it."""
    payload = json.dumps({"project": manifest_cache.fingerprint(project), "tools": manifest_cache.tool_versions(),
                          "excluded": FEATURE_VIEWS_PATH}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _built_by_run(node: Any) -> bool:
    return not str(getattr(node, "original_file_path", "")).startswith(FEATURE_VIEWS_PATH + "/")


def source_tokens(wh: Warehouse, manifest: Any) -> dict[str, str | None]:
    """Content tokens of the sources the build reads (those the nodes it builds depend on); None for a source that
    does not exist yet (looked up in the catalog first: a failing query would log an error on Spark)."""
    sources = getattr(manifest, "sources", None) or {}
    used = {uid for node in (getattr(manifest, "nodes", None) or {}).values() if _built_by_run(node)
            for uid in (getattr(node.depends_on, "nodes", None) or []) if uid.startswith("source.")}
    pairs = sorted({(sources[u].schema, sources[u].identifier) for u in used if u in sources})
    existing = {schema: set(wh.tables(schema)) for schema in {s for s, _ in pairs}}
    present = [wh.relation(s, n) for s, n in pairs if n in existing[s]]
    return {**{wh.relation(s, n): None for s, n in pairs if n not in existing[s]}, **tokens(wh, present)}


def tokens(wh: Warehouse, relations: Iterable[str]) -> dict[str, str | None]:
    """Content tokens of the relations; None for one that cannot be read (missing, no permission)."""
    relations = list(relations)
    try:
        return dict(wh.content_tokens(relations))  # all in one statement
    except Exception:  # noqa: BLE001 - one cannot be read: find which, one by one
        pass
    out: dict[str, str | None] = {}
    for rel in relations:
        try:
            out[rel] = wh.content_token(rel)
        except Exception:  # noqa: BLE001 - an unreadable input is a changed one
            out[rel] = None
    return out


def _empty(token: str | None) -> bool:
    return token is not None and token.split(":", 1)[0] == "0"


def _push_log_sizes(project: Project) -> dict[str, int]:
    log = PushLog(push_dir_for(project.state_dir))
    out = {}
    for group in log.groups():
        try:
            out[group] = log.path(group).stat().st_size
        except OSError:
            out[group] = -1
    return out


def _ensure_table(wh: Warehouse) -> str:
    rel = wh.relation(META_SCHEMA, TABLE)
    wh.ensure_schema(META_SCHEMA)
    text = wh.type("text")
    wh.execute(f"create table if not exists {rel} (fingerprint {text} not null, inputs {text} not null, "
               f"run_id {text}, recorded_at {wh.type('timestamp')} not null)")
    return rel


def forget(wh: Warehouse) -> None:
    """A full run starts: the record of the previous one no longer describes the warehouse."""
    if wh.relation_exists(META_SCHEMA, TABLE):
        wh.execute(f"delete from {wh.relation(META_SCHEMA, TABLE)}")


def unchanged_since(project: Project, catalog: Catalog, fp: str) -> Recorded | None:
    """The last clean run, if this run's inputs are exactly its inputs (see the module docstring); else None."""
    with project.warehouse() as wh:
        if not wh.relation_exists(META_SCHEMA, TABLE):
            return None
        row = wh.fetchone(f"select fingerprint, inputs, run_id, recorded_at from {wh.relation(META_SCHEMA, TABLE)}")
        if row is None or row[0] != fp:
            return None
        inputs = json.loads(row[1])
        if sorted(inputs["groups"]) != sorted(catalog.feature_groups):
            return None
        if inputs["push_log"] != _push_log_sizes(project):
            return None
        recorded = inputs["relations"]
        if tokens(wh, recorded) != recorded:  # every token was readable when recorded: None never matches
            return None
        return Recorded(run_id=row[2], recorded_at=row[3], relations=len(recorded))


def record(project: Project, catalog: Catalog, fp: str, sources: dict[str, str | None], results: Iterable[Any],
           run_id: str | None) -> str | None:
    """After a clean full run: record its inputs when the result depends on nothing else. Returns why not (None:
    recorded), for the debug log. `sources`: their tokens before the build (None: the source did not exist)."""
    results = list(results)
    manifest = catalog.manifest
    with project.warehouse() as wh:
        # A source the build created (the monitoring models' pre-hook creates the empty log tables) was read empty.
        missing = [rel for rel, token in sources.items() if token is None]
        created = tokens(wh, missing)
        if not all(_empty(t) for t in created.values()):
            return "a source appeared with rows during the run"
        sources = {**sources, **created}
        # every seed and model the build made or kept (a seed it did not reload is still read by the models)
        outputs = [wh.relation(n.schema, n.alias or n.name) for n in (getattr(manifest, "nodes", None) or {}).values()
                   if _kind(n) in ("model", "seed") and _built_by_run(n)
                   and getattr(n.config, "materialized", None) != "ephemeral"]
        outputs += [fg.snapshot_relation for fg in catalog.feature_groups.values()]
        outputs += [wh.relation(PUSH_SCHEMA, name) for name in catalog.feature_groups
                    if wh.relation_exists(PUSH_SCHEMA, name)]
        known = set(sources) | set(outputs)
        why = _volatile_or_unknown_reads(wh, manifest, results, known)
        if why is None:
            why = next((f"feature group {fg.name} would be audited again" for fg in catalog.feature_groups.values()
                        if not _skipped_when_unchanged(wh, fg)), None)
        if why is not None:
            return why
        after = tokens(wh, sorted(set(outputs)))
        if None in after.values():
            return "a table the run built cannot be read"
        inputs = {"relations": {**sources, **after}, "groups": sorted(catalog.feature_groups),
                  "push_log": _push_log_sizes(project)}
        rel = _ensure_table(wh)
        with wh.transaction():
            wh.execute(f"delete from {rel}")
            wh.execute(f"insert into {rel} (fingerprint, inputs, run_id, recorded_at) values (?, ?, ?, ?)",
                       [fp, json.dumps(inputs, sort_keys=True), run_id, utcnow()])
    return None


def _skipped_when_unchanged(wh: Warehouse, fg: Any) -> bool:
    """Whether a full run over this clean run's state would leave `fg` alone (fs_cli/unchanged.py's rule, given
    that its candidate equals its published version, which a clean run guarantees: it either found them equal or
    published the audited candidate): published, its latest commit validated by a passing run, no freshness
    expectation. (An incremental group's next batch is empty: nothing ingested after the published watermark.)"""
    return validated_latest_commit(wh, fg) is not None


def _normalized(relation: str) -> str:
    """`"main"."fg_x"`, main.fg_x, `fs_dev`.`fg_x` -> main.fg_x (schema.name, unquoted, lower case)."""
    parts = [p.strip('"`[] ').lower() for p in re.split(r"\.(?=(?:[^\"`]*[\"`][^\"`]*[\"`])*[^\"`]*$)", relation)]
    return ".".join(parts[-2:])


def _volatile_or_unknown_reads(wh: Warehouse, manifest: Any, results: list[Any], known: set[str]) -> str | None:
    """Why the built nodes' result may change with no recorded input changing, or None."""
    if wh.SQL_DIALECT is None:
        return "no SQL dialect to read the compiled nodes with"
    import sqlglot
    from sqlglot import exp

    allowed = {_normalized(r) for r in known}
    for r in results:
        node = r.node
        if _kind(node) not in ("model", "test"):
            continue
        sql = getattr(node, "compiled_code", None)
        if not sql:
            return f"{node.unique_id} has no compiled SQL"
        try:
            statements = sqlglot.parse(sql, read=wh.SQL_DIALECT)
        except Exception as e:  # noqa: BLE001 - SQL we cannot read might read anything
            return f"{node.unique_id}: compiled SQL not understood ({type(e).__name__})"
        for stmt in statements:
            if stmt is None:
                continue
            ctes = {c.alias_or_name.lower() for c in stmt.find_all(exp.CTE)}
            for t in stmt.find_all(exp.Table):
                if not isinstance(t.this, exp.Identifier):
                    fn = (t.this.name if isinstance(t.this, exp.Anonymous) else type(t.this).__name__).lower()
                    if fn in _GENERATED_TABLES:
                        continue
                    return f"{node.unique_id} reads a table function ({t.this.sql()[:60]})"
                name = f"{t.db}.{t.name}".lower() if t.db else t.name.lower()
                if name in ctes or name in allowed:
                    continue
                return f"{node.unique_id} reads {name}, which is not a source, seed or model of the project"
            for f in stmt.find_all(exp.Func):
                fname = (f.name if isinstance(f, exp.Anonymous) else type(f).__name__).lower()
                if fname in _VOLATILE_SQL:
                    return f"{node.unique_id} calls {fname}(): its result changes with the clock or at random"
    return _volatile_jinja(manifest, [r.node for r in results if _kind(r.node) == "model"])


def _volatile_jinja(manifest: Any, models: list[Any]) -> str | None:
    """A model whose Jinja (or a macro it may call, by name or through adapter.dispatch) reads the run's clock, its
    id or the environment: its compiled SQL changes with no input changing."""
    macros = getattr(manifest, "macros", None) or {}
    by_name: dict[str, list[str]] = {}
    for m in macros.values():
        by_name.setdefault(m.name, []).append(m.macro_sql)
        if "__" in m.name:  # duckdb__fs_x is reached through adapter.dispatch('fs_x')
            by_name.setdefault(m.name.split("__", 1)[1], []).append(m.macro_sql)
    for model in models:
        seen: set[str] = set()
        todo = [getattr(model, "raw_code", "") or ""]
        while todo:
            text = todo.pop()
            if hit := _VOLATILE_JINJA.search(text):
                return f"{model.unique_id} reads {hit.group(1)} (through its Jinja)"
            words = set(_WORD.findall(text))
            for w in words - seen:
                seen.add(w)
                todo += by_name.get(w, [])
    return None
