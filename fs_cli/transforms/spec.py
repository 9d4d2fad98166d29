"""Model-dependent transformation declarations: parsed and validated before anything is fitted or served.

A feature view declares them under `meta.fs.feature_view.transformations`:

    transformations:
      - {feature: tx_amount_7d, fn: impute, args: {strategy: median}}
      - {feature: tx_amount_7d, fn: standard_scaler}          # applied to the imputed value (same output)
      - {feature: segment, fn: one_hot}
      - {feature: credit_limit, fn: bucketize, args: {boundaries: [1000, 5000]}, output: credit_band}

Declarations that write the same `output` (default: the feature's own name) form a *chain*, applied in the order
declared; the statistics of a step are fitted on the output of the steps before it. See macros/transforms/_transforms.yml
for the exact definition of every function.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import Problems

IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DECL_KEYS = {"feature", "fn", "args", "output"}

# Value kinds a step consumes and produces. "integer" is accepted wherever "numeric" is (and by the category
# encoders, whose categories are then the decimal text of the integer); "onehot" ends a chain (many columns).
NUMERIC, INTEGER, STRING, ONEHOT = "numeric", "integer", "string", "onehot"

_INT_TYPES = {
    "tinyint", "smallint", "integer", "int", "bigint", "hugeint", "int1", "int2", "int4", "int8", "int16", "int32",
    "int64", "utinyint", "usmallint", "uinteger", "ubigint", "uhugeint", "long", "short", "signed", "serial",
    "bigserial", "smallserial",
}
_FLOAT_TYPES = {"float", "real", "double", "double precision", "float4", "float8", "decimal", "numeric", "number"}
_STRING_TYPES = {"varchar", "text", "string", "char", "character", "character varying", "bpchar", "nvarchar", "enum"}


def type_kind(data_type: str | None) -> str | None:
    """numeric | integer | string for a SQL type name (DuckDB, Postgres or Spark spelling); None if neither."""
    if not data_type:
        return None
    t = re.sub(r"\(.*\)$", "", data_type.strip().lower()).strip()
    if t in _INT_TYPES:
        return INTEGER
    if t in _FLOAT_TYPES:
        return NUMERIC
    if t in _STRING_TYPES:
        return STRING
    return None


@dataclass(frozen=True)
class Fn:
    """What a transformation function accepts, produces and which arguments it takes."""

    name: str
    accepts: frozenset[str]
    produces: str  # kind of the output; "same" = same as the input
    args: Mapping[str, str]  # argument -> short description (for error messages)
    summary: str


_NUM = frozenset({NUMERIC, INTEGER})
_CAT = frozenset({STRING, INTEGER})
FUNCTIONS: dict[str, Fn] = {f.name: f for f in [
    Fn("standard_scaler", _NUM, NUMERIC, {}, "(x - mean) / std_pop; std 0 -> 1"),
    Fn("min_max_scaler", _NUM, NUMERIC, {}, "(x - min) / (max - min); range 0 -> 1; not clipped"),
    Fn("robust_scaler", _NUM, NUMERIC, {}, "(x - median) / (q75 - q25); IQR 0 -> 1"),
    Fn("log1p", _NUM, NUMERIC, {}, "ln(1 + x); NULL where x <= -1"),
    Fn("clip", _NUM, NUMERIC, {"min": "lower bound (number)", "max": "upper bound (number)"},
       "x limited to [min, max]"),
    Fn("impute", frozenset({NUMERIC, INTEGER, STRING}), "same",
       {"strategy": "mean | median | most_frequent | constant", "value": "the constant (strategy constant)"},
       "NULL -> a fitted or constant value"),
    Fn("one_hot", _CAT, ONEHOT, {"max_categories": "keep the N most frequent (int)",
                                 "min_frequency": "keep categories seen at least N times (int)"},
       "one 0/1 column per train category + <output>__unseen"),
    Fn("label_encode", _CAT, INTEGER, {"max_categories": "keep the N most frequent (int)",
                                       "min_frequency": "keep categories seen at least N times (int)"},
       "0..n-1 in sorted category order; unseen -> n; NULL -> NULL"),
    Fn("bucketize", _NUM, INTEGER, {"boundaries": "strictly increasing numbers",
                                    "num_buckets": "fit quantile boundaries on train (int >= 2)"},
       "number of boundaries <= x (0..len(boundaries)); NULL -> NULL"),
]}


def step_output_kind(fn: str, input_kind: str) -> str:
    """Kind of a step's output. impute of an integer yields a double (a mean or median need not be whole)."""
    produces = FUNCTIONS[fn].produces
    if produces != "same":
        return produces
    return NUMERIC if input_kind == INTEGER else input_kind


@dataclass
class Step:
    fn: str
    args: dict[str, Any]
    input_kind: str
    declaration: dict[str, Any]  # normalized: feature, fn, args, output


@dataclass
class Chain:
    """All steps writing one output, applied in order to one input feature."""

    output: str
    feature: str
    input_kind: str
    steps: list[Step] = field(default_factory=list)

    @property
    def output_kind(self) -> str:
        kind = self.input_kind
        for s in self.steps:
            kind = step_output_kind(s.fn, kind)
        return kind


@dataclass
class TransformPlan:
    """Validated declarations, grouped into chains (in first-declared order)."""

    chains: list[Chain]
    declarations: list[dict[str, Any]]

    def to_json(self) -> str:
        return json.dumps(self.declarations, sort_keys=True, separators=(",", ":"))


def normalize_declaration(decl: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in, so that two spellings of one declaration compare equal (stats store this form)."""
    return {
        "feature": decl.get("feature"),
        "fn": decl.get("fn"),
        "args": dict(decl.get("args") or {}),
        "output": decl.get("output") or decl.get("feature"),
    }


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def _is_count(v: Any, minimum: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def _check_args(fn: str, args: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    """(problem, fix) pairs for bad arguments of one step whose input is of `kind`."""
    spec = FUNCTIONS[fn]
    out: list[tuple[str, str]] = []
    unknown = sorted(set(args) - set(spec.args))
    if unknown:
        known = ", ".join(f"{k} ({d})" for k, d in spec.args.items()) or "none"
        out.append((f"{fn} has no argument {unknown[0]!r}", f"arguments of {fn}: {known}"))
        return out
    if fn == "clip":
        lo, hi = args.get("min"), args.get("max")
        if lo is None and hi is None:
            out.append(("clip needs min and/or max", "e.g. `args: {min: 0, max: 100}`"))
        for k in ("min", "max"):
            if k in args and not _is_number(args[k]):
                out.append((f"clip {k} is {args[k]!r}, not a finite number", f"give {k} as a number"))
        if _is_number(lo) and _is_number(hi) and lo > hi:
            out.append((f"clip min {lo} is greater than max {hi}", "swap them"))
    elif fn == "impute":
        strategy = args.get("strategy")
        allowed = ["mean", "median", "most_frequent", "constant"] if kind != STRING else ["most_frequent", "constant"]
        if strategy not in allowed:
            out.append((f"impute strategy {strategy!r} is not applicable to a {kind} feature",
                        f"use `args: {{strategy: {allowed[0]}}}`; for this type: {', '.join(allowed)}"))
        elif strategy == "constant":
            v = args.get("value")
            if kind == STRING and not isinstance(v, str):
                out.append((f"impute constant value {v!r} is not a string", "e.g. `args: {strategy: constant, value: unknown}`"))
            if kind != STRING and not _is_number(v):
                out.append((f"impute constant value {v!r} is not a finite number", "e.g. `args: {strategy: constant, value: 0}`"))
        elif "value" in args:
            out.append((f"impute value is only used with strategy constant, not {strategy}", "remove `value`"))
    elif fn in ("one_hot", "label_encode"):
        for k in ("max_categories", "min_frequency"):
            if k in args and not _is_count(args[k], 1):
                out.append((f"{fn} {k} is {args[k]!r}, not an integer >= 1", f"e.g. `args: {{{k}: 20}}`"))
    elif fn == "bucketize":
        b, n = args.get("boundaries"), args.get("num_buckets")
        if (b is None) == (n is None):
            out.append(("bucketize needs exactly one of boundaries or num_buckets",
                        "e.g. `args: {boundaries: [10, 100, 1000]}` or `args: {num_buckets: 4}` (train quantiles)"))
        elif b is not None:
            if not isinstance(b, list) or not b or not all(_is_number(x) for x in b):
                out.append((f"bucketize boundaries {b!r} is not a non-empty list of numbers", "e.g. `[10, 100, 1000]`"))
            elif any(b[i] >= b[i + 1] for i in range(len(b) - 1)):
                out.append((f"bucketize boundaries {b} are not strictly increasing", "sort them and drop duplicates"))
        elif not _is_count(n, 2):
            out.append((f"bucketize num_buckets is {n!r}, not an integer >= 2", "e.g. `args: {num_buckets: 4}`"))
    return out


def parse_transformations(
    declarations: Sequence[Mapping[str, Any]] | None,
    column_types: Mapping[str, str | None],
    where: str = "transformations",
    defer_unknown: bool = False,
) -> TransformPlan:
    """Validate declarations against the feature types (name -> SQL data_type) they will be applied to.

    Raises DeclarationError listing every problem (unknown feature, function or argument, a function not applicable
    to the type, an output name that collides) with its fix. Nothing is fitted or rendered here.
    With defer_unknown, a column whose type is None (e.g. a spine column without a declared data_type) is assumed
    to suit its first step; the check is then repeated with the real types when a training dataset is fitted.
    """
    problems = Problems()
    chains: dict[str, Chain] = {}
    normalized: list[dict[str, Any]] = []
    if declarations is None:
        declarations = []
    if not isinstance(declarations, list | tuple):
        problems.add(f"{where} is a {type(declarations).__name__}, not a list",
                     fix="write a list: `transformations: [{feature: x, fn: standard_scaler}]`")
        problems.raise_if_any()
    for i, decl in enumerate(declarations):
        at = f"{where}[{i}]"
        here = problems.within(at)  # refined with the declaration's name once known
        if not isinstance(decl, Mapping):
            here.add(f"is {decl!r}, not a mapping", "write `{feature: <name>, fn: <function>, args: {...}}`")
            continue
        unknown = sorted(set(decl) - DECL_KEYS)
        if unknown:
            here.add(f"unknown key {unknown[0]!r}", f"keys: {', '.join(sorted(DECL_KEYS))}")
            continue
        d = normalize_declaration(decl)
        feature, fn, args, output = d["feature"], d["fn"], d["args"], d["output"]
        here.where = f"{at} ({feature}: {fn})"
        if not isinstance(feature, str) or feature not in column_types:
            close = difflib.get_close_matches(str(feature), list(column_types), n=3)
            here.add(f"unknown feature {feature!r}",
                     f"did you mean {', '.join(close)}?" if close else
                     f"transform one of the view's features: {', '.join(sorted(column_types)) or '(none)'}")
            continue
        if fn not in FUNCTIONS:
            close = difflib.get_close_matches(str(fn), list(FUNCTIONS), n=2)
            here.add(f"unknown transformation function {fn!r}",
                     f"did you mean {', '.join(close)}?" if close else f"functions: {', '.join(FUNCTIONS)}")
            continue
        if not isinstance(decl.get("args") or {}, Mapping):
            here.add(f"args is {decl.get('args')!r}, not a mapping", "write `args: {name: value}`")
            continue
        if not isinstance(output, str) or not IDENT.match(output):
            here.add(f"output {output!r} is not a plain column name", "use letters, digits and _ (not starting with a digit)")
            continue
        chain = chains.get(output)
        if chain is None:
            if output != feature and output in column_types:
                here.add(f"output {output!r} is already a feature of the view",
                         f"pick a new name, or transform {output} itself with `feature: {output}`")
                continue
            kind = type_kind(column_types[feature])
            if kind is None and defer_unknown and column_types[feature] is None:
                # INTEGER suits every numeric step and the encoders; a string constant says the column is text
                kind = STRING if fn == "impute" and isinstance(args.get("value"), str) else INTEGER
            if kind is None:
                here.add(f"feature {feature} has type {column_types[feature]!r}, which no transformation applies to",
                         "transformations apply to numeric and string features; cast it in the feature group")
                continue
            chain = Chain(output=output, feature=feature, input_kind=kind)
        elif chain.feature != feature:
            here.add(f"output {output!r} is already written from feature {chain.feature}",
                     f"give this one its own `output:` name, or transform {chain.feature}")
            continue
        kind = chain.output_kind
        spec = FUNCTIONS[fn]
        if kind == ONEHOT:
            here.add(f"{output} is one-hot encoded by an earlier step; nothing can follow one_hot",
                     "move one_hot to the end of the chain, or write this step to another `output:`")
            continue
        if kind not in spec.accepts:
            what = "numeric" if spec.accepts == _NUM else "string or integer"
            here.add(f"{fn} is not applicable to {feature}, a {kind} value"
                     + (f" (type {column_types[feature]})" if not chain.steps else " after the steps before it"),
                     f"{fn} needs a {what} input; use "
                     + (", ".join(n for n, f in FUNCTIONS.items() if kind in f.accepts)) + " for it")
            continue
        errs = _check_args(fn, args, kind)
        for problem, fix in errs:
            here.add(problem, fix)
        if errs:
            continue
        chains[output] = chain
        chain.steps.append(Step(fn=fn, args=args, input_kind=kind, declaration=d))
        normalized.append(d)
    problems.raise_if_any()
    return TransformPlan(chains=list(chains.values()), declarations=normalized)
