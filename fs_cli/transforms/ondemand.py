"""On-demand features: a SQL expression declared once, compiled into the training dataset SQL offline and evaluated
online by in-process DuckDB over the request row, the same expression on the same engine.

Declared in a feature view (`meta.fs.feature_view.on_demand`):

    on_demand:
      - name: amount_to_avg_basket
        expr: "amount / nullif(tx_avg_amount_30d, 0)"
        inputs: [amount, tx_avg_amount_30d]      # every column the expression reads
        request: [amount]                        # inputs sent with the request (typed from the spine), or
                                                 # {amount: double} to give their types explicitly

Validation at declare time (`parse_on_demand`): the expression must parse as ONE scalar SQL expression (no
subquery, window, aggregate or parameter), reference only its declared inputs, and bind against a typed empty
relation of those inputs, which also yields its output type.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from ..errors import FeatureStoreError, Problems
from .sql import q

OD_KEYS = {"name", "expr", "inputs", "request", "description"}
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TYPE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?(\[\])?$")
ROWID = "__fs_rowid"
_FORBIDDEN = {"SUBQUERY": "a subquery", "WINDOW": "a window function", "PARAMETER": "a parameter placeholder",
              "STAR": "a *", "COLUMNS": "a COLUMNS(...) expression"}


@dataclass(frozen=True)
class OnDemandFeature:
    name: str
    expr: str
    inputs: tuple[str, ...]
    request: tuple[str, ...]
    input_types: tuple[tuple[str, str], ...]  # (input, DuckDB type) in `inputs` order
    data_type: str  # the expression's type, as DuckDB binds it ("" while input types are not known yet)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "expr": self.expr, "inputs": list(self.inputs), "request": list(self.request),
                "input_types": dict(self.input_types), "data_type": self.data_type, "description": self.description}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OnDemandFeature:
        types = d["input_types"]
        return cls(d["name"], d["expr"], tuple(d["inputs"]), tuple(d["request"]),
                   tuple((i, types[i]) for i in d["inputs"]), d["data_type"], d.get("description", ""))


def _walk(node: Any) -> Iterator[dict]:
    if isinstance(node, dict):
        if "class" in node:
            yield node
        for v in node.values():
            yield from _walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v)


def _sandbox() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that cannot touch files or the network: an expression only sees its inputs."""
    return duckdb.connect(config={"threads": 1, "enable_external_access": False})


def expression_columns(con: duckdb.DuckDBPyConnection, expr: str) -> tuple[list[str], str | None]:
    """(column names the expression references, problem or None), from DuckDB's own parser."""
    tree = json.loads(con.execute("select json_serialize_sql(?)", [f"select ({expr}) as v"]).fetchall()[0][0])
    if tree.get("error"):
        return [], f"does not parse: {tree.get('error_message', 'syntax error')}"
    stmts = tree["statements"]
    node = stmts[0]["node"] if len(stmts) == 1 else {}
    if (len(stmts) != 1 or node.get("type") != "SELECT_NODE" or len(node["select_list"]) != 1
            or node["from_table"]["type"] != "EMPTY" or node.get("where_clause") or node.get("group_expressions")
            or node.get("having") or node.get("modifiers") or node["cte_map"]["map"]):
        return [], "is not a single scalar expression"
    cols: list[str] = []
    for n in _walk(node["select_list"]):
        if n["class"] in _FORBIDDEN:
            return [], f"contains {_FORBIDDEN[n['class']]}, which an on-demand feature cannot use"
        if n["class"] == "COLUMN_REF":
            names = n["column_names"]
            if len(names) != 1:
                return [], f"references {'.'.join(names)}; use the bare input name"
            if names[0] not in cols:
                cols.append(names[0])
    return cols, None


def parse_on_demand(
    declarations: Sequence[Mapping[str, Any]] | None,
    feature_types: Mapping[str, str | None],
    request_types: Mapping[str, str | None] | None = None,
    where: str = "on_demand",
    defer_unknown: bool = False,
) -> list[OnDemandFeature]:
    """Validate on-demand declarations. `feature_types`: the view's columns (name -> type); `request_types`: the
    columns a training spine provides for request parameters. Raises DeclarationError listing every problem.
    With defer_unknown, inputs whose type is not known yet (None) skip the binding check (references are still
    checked); the result then has data_type None and the full check runs when a training dataset is built."""
    problems = Problems()
    out: list[OnDemandFeature] = []
    request_types = request_types or {}
    con = _sandbox()
    try:
        for i, decl in enumerate(declarations or []):
            at = f"{where}[{i}]"
            here = problems.within(at)  # refined with the declaration's name once known
            if not isinstance(decl, Mapping):
                here.add(f"is {decl!r}, not a mapping", "write `{name: ..., expr: ..., inputs: [...], request: [...]}`")
                continue
            unknown = sorted(set(decl) - OD_KEYS)
            if unknown:
                here.add(f"unknown key {unknown[0]!r}", f"keys: {', '.join(sorted(OD_KEYS))}")
                continue
            name, expr = decl.get("name"), decl.get("expr")
            here.where = f"{at} ({name})"
            if not isinstance(name, str) or not IDENT.match(name):
                here.add(f"name {name!r} is not a plain column name", "use letters, digits and _")
                continue
            if name in feature_types or any(o.name == name for o in out):
                here.add(f"name {name} is already a feature of the view", "pick another name")
                continue
            if not isinstance(expr, str) or not expr.strip():
                here.add("has no expr", 'write the SQL expression, e.g. `expr: "amount / nullif(avg_amount, 0)"`')
                continue
            inputs = decl.get("inputs") or []
            req = decl.get("request") or []
            if not isinstance(inputs, list) or not all(isinstance(x, str) and IDENT.match(x) for x in inputs):
                here.add(f"inputs {inputs!r} is not a list of column names", "e.g. `inputs: [amount, tx_avg_amount_30d]`")
                continue
            req_types: dict[str, Any] = dict(req) if isinstance(req, Mapping) else {r: None for r in req} \
                if isinstance(req, list) else {}
            if not isinstance(req, list | Mapping) or not all(isinstance(r, str) for r in req_types):
                here.add(f"request {req!r} is neither a list of names nor a mapping name -> type",
                         "e.g. `request: [amount]` or `request: {amount: double}`")
                continue
            types: dict[str, str] = {}
            for r, t in req_types.items():
                if r not in inputs:
                    here.add(f"request parameter {r} is not among its inputs", f"add {r} to `inputs`")
                t = t or request_types.get(r) or feature_types.get(r)
                if not t and defer_unknown:
                    types[r] = ""  # unknown until the spine is read
                elif not t:
                    here.add(f"request parameter {r} has no type", f"declare it: `request: {{{r}: double}}`")
                elif not TYPE_RE.match(str(t)):
                    here.add(f"request parameter {r} has type {t!r}, not a SQL type name", "e.g. double, bigint, varchar")
                else:
                    types[r] = str(t)
            for x in inputs:
                if x in req_types:
                    continue
                if x not in feature_types:
                    here.add(f"input {x} is neither a feature of the view nor a request parameter",
                             f"add {x} to the view's features, or to `request:` if the caller sends it")
                elif not feature_types[x] and defer_unknown:
                    types[x] = ""
                elif not feature_types[x] or not TYPE_RE.match(str(feature_types[x])):
                    here.add(f"input {x} has no usable data_type ({feature_types[x]!r})",
                             f"declare data_type for {x} in its feature group's YAML")
                else:
                    types[x] = str(feature_types[x])
            refs, problem = expression_columns(con, expr)
            if problem:
                here.add(f"expression {expr!r} {problem}", "write one SQL expression over the declared inputs")
                continue
            missing = [c for c in refs if c not in inputs]
            if missing:
                here.add(f"expression references {', '.join(missing)}, not declared in its inputs {inputs}",
                         f"add {', '.join(missing)} to `inputs` (and to `request` if the caller sends it)")
                continue
            if len(types) != len(inputs):
                continue  # an input problem was reported above
            if any(not t for t in types.values()):  # deferred: references checked, binding waits for real types
                out.append(OnDemandFeature(name, expr, tuple(inputs), tuple(req_types),
                                           tuple((x, types[x]) for x in inputs), "", str(decl.get("description") or "")))
                continue
            cols = ", ".join([f"{ROWID} integer", *(f"{q(x)} {types[x]}" for x in inputs)])
            try:
                con.execute(f"create or replace temp table __fs_input ({cols})")
                desc = con.execute(f"describe select {ROWID}, ({expr}) as v from __fs_input").fetchall()
            except duckdb.Error as e:
                msg = str(e).split("\n")[0]
                if ROWID in msg:
                    msg = "aggregates over rows; an on-demand feature is computed per row"
                here.add(f"expression {expr!r} does not bind: {msg}",
                         "fix the expression or the input types (check each input's data_type)")
                continue
            out.append(OnDemandFeature(name, expr, tuple(inputs), tuple(req_types), tuple((x, types[x]) for x in inputs),
                                       str(desc[1][1]), str(decl.get("description") or "")))
    finally:
        con.close()
    problems.raise_if_any()
    return out


def render_on_demand_columns(features: Sequence[OnDemandFeature]) -> list[str]:
    """`(expr) as "name"` select items for the offline (training dataset) SQL; the macro fs_on_demand_columns
    renders the same text."""
    return [f"({f.expr}) as {q(f.name)}" for f in features]


class OnDemandEvaluator:
    """Evaluates on-demand features online with in-process DuckDB, on the same SQL the TD was built with.

    The statement is parsed once per thread (DuckDB's Python API re-binds a parsed statement per execute; it has no
    persistent prepared statement with parameters). A DuckDB connection must not be shared between threads, so each
    thread uses its own cursor of one sandboxed in-memory database. Request values are bound parameters, cast to
    the input types; one query evaluates a whole batch of rows (`evaluate_many`), cost ~0.3 ms per query here.
    """

    def __init__(self, features: Sequence[OnDemandFeature]):
        self.features = list(features)
        self.names = [f.name for f in self.features]
        types: dict[str, str] = {}
        for f in self.features:
            for x, t in f.input_types:
                types.setdefault(x, t)
        self.inputs = list(types)
        self.input_types = types
        items = ", ".join(f"({f.expr}) as {q(f.name)}" for f in self.features) or "1 as __fs_none"
        cols = ", ".join(f"unnest(cast(${i + 1} as {t}[])) as {q(x)}" for i, (x, t) in enumerate(types.items()))
        self.sql = f"select {items} from (select {cols or '1 as __fs_none'}) as __fs_input"
        self._db = _sandbox()
        self._local = threading.local()
        self._lock = threading.Lock()

    def _statement(self) -> tuple[duckdb.DuckDBPyConnection, Any]:
        st = getattr(self._local, "st", None)
        if st is None:
            with self._lock:  # cursor() on the shared parent connection
                cur = self._db.cursor()
            st = (cur, cur.extract_statements(self.sql)[0])
            self._local.st = st
        return st

    def evaluate_many(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The on-demand values for each row (a mapping holding every input; missing -> NULL)."""
        if not self.features or not rows:
            return [{} for _ in rows]
        cur, st = self._statement()
        params = [[r.get(x) for r in rows] for x in self.inputs]
        try:
            result = cur.execute(st, params).fetchall()
        except duckdb.Error as e:
            raise FeatureStoreError(
                f"on-demand features {', '.join(self.names)} could not be computed: {str(e).splitlines()[0]}",
                fix="send request parameters of the declared types: "
                + ", ".join(f"{x} {t}" for x, t in self.input_types.items()),
            ) from None
        if not self.inputs:  # constant expressions: one row from the empty-input select
            result = result * len(rows)
        return [dict(zip(self.names, r, strict=True)) for r in result]

    def evaluate(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return self.evaluate_many([values])[0]

    def close(self) -> None:
        self._db.close()
