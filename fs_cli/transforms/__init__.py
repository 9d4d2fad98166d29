"""Transformations defined once, applied identically offline (SQL) and online (Python).

    plan  = parse_transformations(decls, {"amount": "double", "segment": "varchar"})   # validate at declare time
    stats = fit(con, '"td"', plan, split_column="split", train_value="train")         # SQL, train rows only
    sql   = render_select('"td"', stats, engine="duckdb")  # the dbt macro fs_apply_transformations, rendered
    row   = apply_row({"amount": 12.0, "segment": "gold"}, stats)                     # online request path
    df2   = transform_dataframe(df, stats)          # SDK batch scoring: the SQL path over a DataFrame

    ods   = parse_on_demand(view_on_demand, feature_types, spine_types)                 # validate expressions
    OnDemandEvaluator(ods).evaluate({"amount": 12.0, "tx_avg_amount_30d": 3.0})         # online, same SQL
Definitions of every function: macros/transforms/_transforms.yml; their SQL is defined once, as the dbt macros of
macros/transforms/apply.sql, which Python renders (sql.py) to fit and to apply them.
"""

from __future__ import annotations

from typing import Any

from .apply_row import Transformer, apply_row, transformer
from .fit import column_types, fingerprint, fit
from .ondemand import OnDemandEvaluator, OnDemandFeature, parse_on_demand, render_on_demand_columns
from .spec import FUNCTIONS, TransformPlan, parse_transformations, type_kind
from .sql import TransformSQL, render_select


def transform_dataframe(df: Any, stats: dict[str, Any], con: Any = None) -> Any:
    """Transform a pandas DataFrame (or Arrow table) with fitted statistics through the SQL path, in DuckDB.

    Batch scoring thus runs the very SQL a training dataset was transformed with. Returns a pandas DataFrame.
    """
    import duckdb

    own = con is None
    con = duckdb.connect() if own else con
    try:
        con.register("__fs_transform_input", df)
        cols = list(df.columns) if hasattr(df, "columns") else list(df.column_names)
        return con.sql(render_select('"__fs_transform_input"', stats, columns=[str(c) for c in cols])).df()
    finally:
        con.unregister("__fs_transform_input")
        if own:
            con.close()


__all__ = [
    "FUNCTIONS", "OnDemandEvaluator", "OnDemandFeature", "TransformPlan", "Transformer", "apply_row", "column_types", "fingerprint", "fit",
    "TransformSQL", "parse_on_demand", "parse_transformations", "render_on_demand_columns", "render_select", "transform_dataframe", "transformer", "type_kind",
]
