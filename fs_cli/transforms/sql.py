"""SQL rendering of fitted transformations: the offline path (training datasets, batch scoring).

`render_select` renders the same SQL as the dbt macro `fs_apply_transformations` (macros/transforms/apply.sql);
tests/test_transforms_macros.py holds them to it. The SQL is portable between DuckDB and Postgres: casts to
`double precision`/`varchar`, CASE instead of greatest/least (which skip NULLs on Postgres), ln instead of log1p,
and every fitted number as `cast('<repr>' as double precision)` so that it round-trips bit for bit (a bare `0.1`
is a DECIMAL literal in DuckDB).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import FeatureStoreError
from .spec import INTEGER, STRING, step_output_kind

NAN = "cast('NaN' as double precision)"
RAW = "raw"  # the state of an expression that is still the untouched input column


def q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def num(v: float) -> str:
    return f"cast('{float(v)!r}' as double precision)"


def text(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def as_double(expr: str, state: str) -> str:
    """The value as a double; NaN in the raw input counts as missing."""
    if state == RAW:
        return f"nullif(cast({expr} as double precision), {NAN})"
    if state == INTEGER:
        return f"cast({expr} as double precision)"
    return expr


def as_text(expr: str, state: str) -> str:
    return expr if state == STRING else f"cast({expr} as varchar)"


def consumes_text(fn: str, state: str, input_kind: str) -> bool:
    """Whether step `fn` reads text (encoders; impute of a string) rather than a double."""
    kind = input_kind if state == RAW else state
    return fn in ("one_hot", "label_encode") or (fn == "impute" and kind == STRING)


def step_input(fn: str, expr: str, state: str, input_kind: str) -> str:
    """Coerce the running expression to what step `fn` consumes. `input_kind` is the chain's raw input kind."""
    if consumes_text(fn, state, input_kind):
        return as_text(expr, state)
    return as_double(expr, state)


def render_step(fn: str, e: str, p: Mapping[str, Any]) -> str | list[tuple[str, str]]:
    """One fitted step over its (coerced) input `e`; one_hot returns (column, expression) pairs."""
    if fn == "standard_scaler":
        return f"(({e} - {num(p['mean'])}) / {num(p['scale'])})"
    if fn == "min_max_scaler":
        return f"(({e} - {num(p['min'])}) / {num(p['scale'])})"
    if fn == "robust_scaler":
        return f"(({e} - {num(p['median'])}) / {num(p['scale'])})"
    if fn == "log1p":
        return f"(case when {e} > -1 then ln(1 + {e}) end)"
    if fn == "clip":
        whens = ""
        if p.get("min") is not None:
            whens += f" when {e} < {num(p['min'])} then {num(p['min'])}"
        if p.get("max") is not None:
            whens += f" when {e} > {num(p['max'])} then {num(p['max'])}"
        return f"(case{whens} else {e} end)"
    if fn == "impute":
        fill = p["fill"]
        return f"coalesce({e}, {text(fill) if isinstance(fill, str) else num(fill)})"
    if fn == "bucketize":
        whens = "".join(f" when {e} < {num(b)} then {i}" for i, b in enumerate(p["boundaries"]))
        return f"(case when {e} is null then null{whens} else {len(p['boundaries'])} end)"
    if fn == "label_encode":
        whens = "".join(f" when {e} = {text(c)} then {i}" for i, c in enumerate(p["categories"]))
        return f"(case when {e} is null then null{whens} else {p['unseen_code']} end)"
    if fn == "one_hot":
        cols = [(col, f"(case when {e} = {text(c)} then 1 else 0 end)")
                for c, col in zip(p["categories"], p["columns"], strict=True)]
        if p["categories"]:
            known = ", ".join(text(c) for c in p["categories"])
            unseen = f"(case when {e} is null then 0 when {e} in ({known}) then 0 else 1 end)"
        else:
            unseen = f"(case when {e} is null then 0 else 1 end)"
        return [*cols, (p["unseen_column"], unseen)]
    raise FeatureStoreError(f"unknown transformation function {fn!r} in fitted statistics",
                            fix="refit the training dataset with this version of fs_cli")


def chain_expressions(chain: Mapping[str, Any], upto: int | None = None) -> tuple[str, str] | list[tuple[str, str]]:
    """The SQL of a fitted chain: (expression, state) after `upto` steps (all by default), or for a chain ending in
    one_hot the list of (column, expression)."""
    expr, state, kind = q(chain["feature"]), RAW, chain["input_kind"]
    steps = chain["steps"] if upto is None else chain["steps"][:upto]
    for step in steps:
        e = step_input(step["fn"], expr, state, chain["input_kind"])
        out = render_step(step["fn"], e, step["params"])
        if isinstance(out, list):
            return out
        kind = step_output_kind(step["fn"], kind)
        expr, state = out, kind
    return expr, state


def check_declarations(stats: Mapping[str, Any], declarations: Sequence[Mapping[str, Any]] | None) -> None:
    """The statistics must have been fitted for exactly these declarations (else the TD is stale)."""
    if declarations is None:
        return
    from .spec import normalize_declaration

    if [normalize_declaration(d) for d in declarations] != stats["declarations"]:
        raise FeatureStoreError(
            "the fitted statistics were computed for other transformation declarations than the feature view's",
            fix="create a new training dataset version so the statistics are refitted for the current declarations",
        )


def output_columns(stats: Mapping[str, Any], columns: Sequence[str] | None = None) -> list[str]:
    """Columns of the transformed relation, in order (see `render_select`)."""
    return [name for name, _ in _select_items(stats, columns)]


def _select_items(stats: Mapping[str, Any], columns: Sequence[str] | None) -> list[tuple[str, str]]:
    columns = list(stats["input_columns"] if columns is None else columns)
    by_output = {c["output"]: c for c in stats["chains"]}
    missing = sorted({c["feature"] for c in stats["chains"]} - set(columns))
    if missing:
        raise FeatureStoreError(
            f"cannot apply transformations: input column(s) {', '.join(missing)} missing",
            fix="pass a relation/DataFrame with every transformed feature (see the training dataset's columns)",
        )
    items: list[tuple[str, str]] = []

    def emit(chain: Mapping[str, Any]) -> None:
        out = chain_expressions(chain)
        if isinstance(out, list):
            items.extend(out)
        else:
            items.append((chain["output"], out[0]))

    for col in columns:
        if col in by_output:
            emit(by_output.pop(col))
        else:
            items.append((col, q(col)))
    for chain in by_output.values():  # chains writing a new column come last, in declaration order
        emit(chain)
    return items


def render_select(
    relation: str,
    stats: Mapping[str, Any],
    columns: Sequence[str] | None = None,
    declarations: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """`select <columns with transformed ones replaced> from <relation>`.

    `relation` is SQL text (a quoted relation name or a parenthesized subquery with an alias) supplied by code,
    never by a request. `columns` defaults to the columns of the relation the statistics were fitted on.
    A transformed column keeps its place (a one-hot column is replaced by its 0/1 columns); chains writing a new
    `output:` name are appended after the input columns.
    """
    check_declarations(stats, declarations)
    body = ",\n    ".join(f"{expr} as {q(name)}" if expr != q(name) else expr
                          for name, expr in _select_items(stats, columns))
    return f"select\n    {body}\nfrom {relation}"
