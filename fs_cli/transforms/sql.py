"""SQL of fitted transformations (training datasets, batch scoring, fitting), rendered from the one definition: the
dbt macros of macros/transforms/apply.sql (`fs_apply_transformations` and its `fs_tf_*` helpers), for an engine.

The macros keep the SQL portable and bit-for-bit equal to the per-row path (apply_row.py): casts to the engine's
double type, CASE instead of greatest/least (which skip NULLs on Postgres), ln instead of log1p, every fitted number
as `cast('<repr>' as double precision)` (a bare `0.1` is a DECIMAL literal in DuckDB); identifiers and text literals
are spelled per engine through `adapter.dispatch` (Spark: backticks, backslash escapes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .spec import STRING

RAW = "raw"  # the state of an expression that is still the untouched input column
SUBDIRS = ("transforms", "drift")  # apply.sql and the type macros it uses (fs_type_double, fs_type_string)


def q(ident: str) -> str:
    """Standard SQL quoting of an identifier (the on-demand expressions of ondemand.py, DuckDB/Postgres)."""
    return '"' + ident.replace('"', '""') + '"'


def consumes_text(fn: str, state: str, input_kind: str) -> bool:
    """Whether step `fn` reads text (encoders; impute of a string) rather than a double: the per-row path's
    mirror of the macro fs_tf_reads_text."""
    kind = input_kind if state == RAW else state
    return fn in ("one_hot", "label_encode") or (fn == "impute" and kind == STRING)


class TransformSQL:
    """The transformation macros rendered for one engine (`duckdb`, `postgres`, `spark`: dbt's adapter type)."""

    def __init__(self, engine: str = "duckdb", macro_dir: Path | None = None):
        from .macros import FS_MACRO_DIR  # Jinja: imported by what renders SQL, not by what only quotes

        self.engine = engine
        self.macro_dir = FS_MACRO_DIR if macro_dir is None else Path(macro_dir)

    def _render(self, name: str, *args: Any) -> Any:
        from .macros import render_macro

        return render_macro(self.macro_dir, self.engine, name, *args, subdirs=SUBDIRS)

    def select(self, relation: str, stats: Mapping[str, Any], columns: Sequence[str] | None = None,
               declarations: Sequence[Mapping[str, Any]] | None = None) -> str:
        """fs_apply_transformations: `select <columns with transformed ones replaced> from <relation>`."""
        return self._render("fs_apply_transformations", relation,
                            None if declarations is None else list(declarations), stats,
                            None if columns is None else list(columns))

    def step_operand(self, chain: Mapping[str, Any], i: int) -> tuple[str, bool]:
        """(expression, reads_text): the input of step `i` of a (partly fitted) chain, as step `i` consumes it."""
        expr, reads_text = self._render("fs_tf_step_operand", chain, i)
        return expr, bool(reads_text)

    def finite(self, expr: str) -> str:
        """`expr` where finite, else NULL: what every fitted statistic is computed over."""
        return self._render("fs_tf_finite", expr)

    def ident(self, name: str) -> str:
        return self._render("fs_tf_ident", name)


def render_select(
    relation: str,
    stats: Mapping[str, Any],
    columns: Sequence[str] | None = None,
    declarations: Sequence[Mapping[str, Any]] | None = None,
    *,
    engine: str = "duckdb",
    macro_dir: Path | None = None,
) -> str:
    """`select <columns with transformed ones replaced> from <relation>`: the macro fs_apply_transformations
    rendered for `engine`.

    `relation` is SQL text (a quoted relation name or a parenthesized subquery with an alias) supplied by code,
    never by a request. `columns` defaults to the columns of the relation the statistics were fitted on.
    A transformed column keeps its place (a one-hot column is replaced by its 0/1 columns); chains writing a new
    `output:` name are appended after the input columns. `declarations` (the feature view's): the statistics must
    have been fitted for exactly these (else the training dataset is stale: FeatureStoreError).
    """
    return TransformSQL(engine, macro_dir).select(relation, stats, columns, declarations)
