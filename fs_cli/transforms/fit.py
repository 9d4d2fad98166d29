"""Fitting: statistics of each transformation computed in SQL over the TRAIN split only.

Exact definitions (the same in every engine; values that are NULL, NaN or +-infinity are ignored by every statistic):
- mean = avg(x); std = stddev_pop(x) (population, divisor n, as scikit-learn's StandardScaler);
- median, q25, q75 and quantile bucket boundaries = `percentile_cont(p) within group (order by x)`, i.e. DuckDB's
  `quantile_cont` and Postgres' percentile_cont: linear interpolation between order statistics,
  h = (n - 1) * p, x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)]) (numpy's method="linear");
- most_frequent = the value with the highest count, ties broken by the smallest value;
- categories = distinct non-NULL train values (kept by min_frequency, then the max_categories most frequent, ties
  by value), sorted by Unicode code point in Python (never by the warehouse collation, which differs by engine).
The result is a JSON-serializable dict (format 1) that a training dataset version stores verbatim.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import FeatureStoreError
from .spec import NUMERIC, STRING, TransformPlan, parse_transformations
from .sql import TransformSQL

FORMAT = 1
PARAM = "\x00fs_param\x00"  # placeholder for the one bound parameter (the train split value)


def _is_warehouse(con: Any) -> bool:
    """A `fs_cli.warehouse.Warehouse`, recognised by its interface: this library does not import the warehouse
    layer (it sits below it)."""
    return all(callable(getattr(con, m, None)) for m in ("fetchall", "query_columns", "describe"))


class _Runner:
    """Runs a query with bound parameters on a `Warehouse` (fs_cli.warehouse), a DuckDB connection (in-process
    compute over data already in Python) or a DB-API connection (psycopg2)."""

    def __init__(self, con: Any):
        self.con = con
        self.wh = _is_warehouse(con)
        self.duck = not self.wh and type(con).__module__.startswith(("duckdb", "_duckdb"))

    @property
    def engine(self) -> str:
        """dbt's adapter type of the connection (the transformation macros are rendered for it)."""
        return self.con.engine if self.wh else "duckdb" if self.duck else "postgres"

    @property
    def knows_types(self) -> bool:
        return self.wh or self.duck

    def rows(self, sql: str, params: Sequence[Any]) -> list[tuple]:
        if self.wh:
            return self.con.fetchall(sql.replace(PARAM, "?"), list(params))
        if self.duck:
            return self.con.execute(sql.replace(PARAM, "?"), list(params)).fetchall()
        cur = self.con.cursor()
        try:
            cur.execute(sql.replace("%", "%%").replace(PARAM, "%s"), list(params))
            return cur.fetchall()
        finally:
            cur.close()

    def columns(self, relation: str) -> list[str]:
        if self.wh:
            return self.con.query_columns(f"select * from {relation}")
        if self.duck:
            return [d[0] for d in self.con.execute(f"select * from {relation} limit 0").description]
        cur = self.con.cursor()
        try:
            cur.execute(f"select * from {relation} limit 0")
            return [d[0] for d in cur.description]
        finally:
            cur.close()


def column_types(con: Any, relation: str) -> dict[str, str]:
    """name -> SQL type of a relation's columns (a `Warehouse` or a DuckDB connection)."""
    if _is_warehouse(con):
        return dict(con.describe(relation))
    rel = con.sql(f"select * from {relation} limit 0")
    return {n: str(t) for n, t in zip(rel.columns, rel.types, strict=True)}


def _slug(value: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", value.lower()).strip("_") or "empty"


def one_hot_columns(output: str, categories: Sequence[str], taken: set[str]) -> tuple[list[str], str]:
    """`<output>__<slug>` per category (lower-case, non-alphanumerics -> _), then `<output>__unseen`; a collision
    gets `_2`, `_3`, ... in category order. `taken` (existing column names) is updated."""
    def unique(base: str) -> str:
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        return name

    cols = [unique(f"{output}__{_slug(c)}") for c in categories]
    return cols, unique(f"{output}__unseen")


def _finite(v: Any, what: str) -> float:
    f = float(v)
    if not math.isfinite(f):
        raise FeatureStoreError(f"the fitted {what} is {f}: the train values are too large to fit it",
                                fix="clip or log1p the feature first (declare that step before this one)")
    return f


def _aggregates(fn: str, args: Mapping[str, Any], f: str) -> list[str]:
    """SQL aggregates a numeric step needs, over the finite-only expression `f`; the first is always count(f)."""
    pct = "percentile_cont({p}) within group (order by {f})"
    if fn == "standard_scaler" or (fn == "impute" and args.get("strategy") == "mean"):
        return [f"count({f})", f"avg({f})", f"stddev_pop({f})"]
    if fn == "min_max_scaler":
        return [f"count({f})", f"min({f})", f"max({f})"]
    if fn == "robust_scaler":
        return [f"count({f})", *(pct.format(p=p, f=f) for p in ("0.5", "0.25", "0.75"))]
    if fn == "impute" and args.get("strategy") == "median":
        return [f"count({f})", pct.format(p="0.5", f=f)]
    if fn == "bucketize" and "num_buckets" in args:
        n = args["num_buckets"]
        return [f"count({f})", *(pct.format(p=repr(i / n), f=f) for i in range(1, n))]
    return []


def _needs_counts(fn: str, args: Mapping[str, Any]) -> bool:
    return fn in ("one_hot", "label_encode") or (fn == "impute" and args.get("strategy") == "most_frequent")


def _params(fn: str, args: Mapping[str, Any], agg: list[Any] | None, counts: list[tuple[Any, int]] | None,
            output: str, taken: set[str]) -> dict[str, Any]:
    """Fitted parameters of one step from its aggregates / value counts (or from its arguments alone)."""
    what = f"{fn} of {output}"
    if agg is not None and not agg[0] or counts is not None and not counts:
        raise FeatureStoreError(
            f"cannot fit {what}: the feature has no non-NULL (finite) value in the train split",
            fix="check the feature view's join (TTL, keys) and the split, or drop this transformation",
        )
    if fn == "standard_scaler":
        mean, std = _finite(agg[1], f"mean ({what})"), _finite(agg[2] or 0.0, f"std ({what})")
        return {"count": agg[0], "mean": mean, "std": std, "scale": std if std > 0 else 1.0}
    if fn == "min_max_scaler":
        lo, hi = _finite(agg[1], f"min ({what})"), _finite(agg[2], f"max ({what})")
        rng = hi - lo
        return {"count": agg[0], "min": lo, "max": hi, "scale": rng if 0 < rng < math.inf else 1.0}
    if fn == "robust_scaler":
        med, q25, q75 = (_finite(v, f"quantile ({what})") for v in agg[1:4])
        iqr = q75 - q25
        return {"count": agg[0], "median": med, "q25": q25, "q75": q75, "scale": iqr if 0 < iqr < math.inf else 1.0}
    if fn == "log1p":
        return {}
    if fn == "clip":
        return {k: float(args[k]) for k in ("min", "max") if args.get(k) is not None}
    if fn == "impute":
        strategy = args["strategy"]
        if strategy == "constant":
            v = args["value"]
            return {"fill": v if isinstance(v, str) else float(v)}
        if strategy == "most_frequent":
            value, n = min(counts, key=lambda vc: (-vc[1], vc[0]))
            return {"fill": value if isinstance(value, str) else float(value), "count": n}
        return {"fill": _finite(agg[1], f"{strategy} ({what})"), "count": agg[0]}
    if fn == "bucketize":
        if "boundaries" in args:
            return {"boundaries": [float(b) for b in args["boundaries"]]}
        bounds = sorted({_finite(v, f"quantile ({what})") for v in agg[1:]})
        return {"boundaries": bounds, "count": agg[0]}
    if fn in ("one_hot", "label_encode"):
        kept = [(v, n) for v, n in counts if n >= args.get("min_frequency", 1)]
        if "max_categories" in args:
            kept = sorted(kept, key=lambda vc: (-vc[1], vc[0]))[: args["max_categories"]]
        cats = sorted(v for v, _ in kept)
        if fn == "label_encode":
            return {"categories": cats, "unseen_code": len(cats)}
        cols, unseen = one_hot_columns(output, cats, taken)
        return {"categories": cats, "columns": cols, "unseen_column": unseen}
    raise AssertionError(fn)


def fingerprint(stats: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the statistics (without the fingerprint itself)."""
    body = {k: v for k, v in stats.items() if k != "fingerprint"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def fit(
    con: Any,
    relation: str,
    transformations: TransformPlan | Sequence[Mapping[str, Any]],
    *,
    split_column: str | None = "split",
    train_value: Any = "train",
    types: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """Fit `transformations` on the rows of `relation` where `split_column = train_value` (a bound parameter).

    `con` is a `Warehouse`, a DuckDB connection or a DB-API connection (psycopg2). `relation` is SQL text from code (a quoted
    name or `(select ...) as t`). Declarations (not yet a plan) are validated against `types`, or against the
    relation's own column types (Warehouse, DuckDB). With split_column=None every row of `relation` is a train row.
    Steps of one chain are fitted in order, each on the output of the steps before it (one query per depth); the
    SQL of those steps is the macros' (macros/transforms/apply.sql), rendered for the connection's engine.
    """
    runner = _Runner(con)
    sql = TransformSQL(runner.engine)
    input_columns = runner.columns(relation)
    if isinstance(transformations, TransformPlan):
        plan = transformations
    else:
        if types is None:
            if not runner.knows_types:
                raise FeatureStoreError("fit() needs the feature types on a DB-API connection",
                                        fix="pass types={column: data_type} or a parsed TransformPlan")
            types = column_types(con, relation)
        plan = parse_transformations(list(transformations), types)
    missing = sorted({c.feature for c in plan.chains} - set(input_columns))
    if missing:
        raise FeatureStoreError(f"cannot fit transformations: {relation} has no column {', '.join(missing)}",
                                fix="fit on the training dataset relation that holds every transformed feature")
    if split_column is not None:
        if split_column not in input_columns:
            raise FeatureStoreError(f"cannot fit transformations: {relation} has no split column {split_column!r}",
                                    fix="pass split_column= the column that marks train rows")
        where, params = f" where {sql.ident(split_column)} = {PARAM}", [train_value]
    else:
        where, params = "", []

    chains: list[dict[str, Any]] = [
        {"output": c.output, "feature": c.feature, "input_kind": c.input_kind, "output_kind": c.output_kind,
         "steps": [{"fn": s.fn, "args": s.args, "params": None} for s in c.steps]}
        for c in plan.chains
    ]
    taken = set(input_columns) | {c["output"] for c in chains}
    train_rows = runner.rows(f"select count(*) from {relation}{where}", params)[0][0]
    for depth in range(max((len(c["steps"]) for c in chains), default=0)):
        selects: list[str] = []
        pending: list[tuple[dict, dict, slice | None, list | None]] = []
        for chain in chains:
            if depth >= len(chain["steps"]):
                continue
            step = chain["steps"][depth]
            fn, args = step["fn"], step["args"]
            e, reads_text = sql.step_operand(chain, depth)
            v = e if reads_text else sql.finite(e)  # statistics ignore NaN and +-infinity
            counts = None
            if _needs_counts(fn, args):
                counts = runner.rows(
                    f"select v, count(*) from (select {v} as v from {relation}{where}) as t "
                    f"where v is not null group by v", params)
            aggs = _aggregates(fn, args, v) if not counts else []
            sl = slice(len(selects), len(selects) + len(aggs)) if aggs else None
            selects.extend(aggs)
            pending.append((chain, step, sl, counts))
        row: tuple = ()
        if selects:
            cols = ", ".join(f"{a} as a{i}" for i, a in enumerate(selects))
            row = runner.rows(f"select {cols} from {relation}{where}", params)[0]
        for chain, step, sl, counts in pending:
            agg = list(row[sl]) if sl is not None else None
            if counts is not None:
                counts = [(v if isinstance(v, str) else float(v), int(n)) for v, n in counts]
            step["params"] = _params(step["fn"], step["args"], agg, counts, chain["output"], taken)
    for chain in chains:
        last = chain["steps"][-1]
        chain["outputs"] = ([*last["params"]["columns"], last["params"]["unseen_column"]]
                            if last["fn"] == "one_hot" else [chain["output"]])
    stats: dict[str, Any] = {
        "format": FORMAT,
        "declarations": plan.declarations,
        "input_columns": input_columns,
        "fitted_on": {"relation": relation, "split_column": split_column,
                      "train_value": train_value if split_column else None, "train_rows": int(train_rows)},
        "chains": chains,
    }
    stats["fingerprint"] = fingerprint(stats)
    return json.loads(json.dumps(stats, default=str))  # plain JSON types only (what a TD version stores and reads back)


# kinds re-exported for callers that branch on a chain's output kind
__all__ = ["FORMAT", "NUMERIC", "STRING", "column_types", "fingerprint", "fit", "one_hot_columns"]
