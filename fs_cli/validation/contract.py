"""Soda (v4) data contracts generated from feature-group metadata, verified in-process on the target warehouse.

Generated checks (each with a `qualifier` so results map back to the declaration):
  dataset: schema (declared columns and types, nothing else), row_count (>= min_rows), duplicate on the snapshot
           key (primary key + event time [+ created time]), failed_rows "event time in the future", freshness of
           event time (when `expectations.freshness` is declared; "now" = dbt var `fs_now` if set, else the clock)
  columns: missing (primary key, event time, `not_null`), invalid with valid_min/valid_max (`range`),
           invalid with valid_values (`allowed_values`)
A hand-written `<model>.contract.yml` next to the model's SQL is merged in: its dataset checks are added, its
column checks are added to the generated ones (a check with the same type and qualifier replaces the generated one),
its other top-level keys (filter, variables, description) win.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from ..declarations.model import FeatureGroup
from ..errors import FeatureStoreError
from ..warehouse import quote_ident
from .expectations import Expectations, parse_expectations
from .results import CheckResult

DATA_SOURCE = "fs"
SAMPLE_ROWS = 5


def contract_path(project_dir: Path, fg: FeatureGroup) -> Path:
    """Where the hand-written extension of `fg`'s contract lives (it need not exist)."""
    declared = fg.meta.get("contract")
    if declared:
        return (project_dir / declared).resolve()
    sql = project_dir / fg.path
    return sql.with_name(f"{fg.model}.contract.yml")


def _soda_type(data_type: str | None) -> str | None:
    return data_type.lower() if data_type else None


def generate_contract(fg: FeatureGroup, exp: Expectations | None = None, dataset: str | None = None,
                      quote: Callable[[str], str] = quote_ident) -> dict[str, Any]:
    """The contract generated from the declaration alone (no hand-written part).

    dataset: Soda's qualifier of the candidate on the target (`Warehouse.soda_dataset`); default
    `fs/<schema>/<table>`. quote: the target's identifier quoting, for SQL expressions in checks."""
    exp = exp or parse_expectations(fg)
    columns = []
    for c in fg.columns:
        ce = exp.columns[c.name]
        col: dict[str, Any] = {"name": c.name}
        if c.data_type:
            col["data_type"] = _soda_type(c.data_type)
        checks: list[dict[str, Any]] = []
        if ce.not_null:
            checks.append({"missing": {"qualifier": "not_null"}})
        if ce.has_range:
            rng: dict[str, Any] = {"qualifier": "range"}
            if ce.min is not None:
                rng["valid_min"] = ce.min
            if ce.max is not None:
                rng["valid_max"] = ce.max
            checks.append({"invalid": rng})
        if ce.allowed_values:
            checks.append({"invalid": {"qualifier": "allowed_values", "valid_values": ce.allowed_values}})
        if checks:
            col["checks"] = checks
        columns.append(col)
    et = quote(fg.event_time)
    checks = [
        {"schema": {"qualifier": "declared", "allow_extra_columns": False, "allow_other_column_order": True}},
        {"row_count": {"qualifier": "min_rows", "threshold": {"must_be_greater_than_or_equal": exp.min_rows}}},
        {"duplicate": {"qualifier": "key", "columns": list(fg.key_columns)}},
        {"failed_rows": {"qualifier": "future_event_time", "name": f"{fg.event_time} is not in the future",
                         "expression": f"{et} > current_timestamp"}},
    ]
    if exp.freshness is not None:
        checks.append({"freshness": {"qualifier": "event_time", "column": fg.event_time, "threshold": {
            "unit": "hour", "must_be_less_than_or_equal": round(exp.freshness.total_seconds() / 3600, 4)}}})
    return {
        "dataset": dataset or f"{DATA_SOURCE}/{fg.schema}/{fg.identifier}",
        "description": f"Feature group {fg.name}: generated from its YAML by fs_cli (fs contract {fg.name}).",
        "columns": columns,
        "checks": checks,
    }


def _key(check: dict[str, Any]) -> tuple[str, str | None]:
    (ctype, body), = check.items()
    return ctype, (body or {}).get("qualifier") if isinstance(body, dict) else None


def _merge_checks(base: list[dict], extra: list[dict]) -> list[dict]:
    keys = {_key(c) for c in extra}
    return [c for c in base if _key(c) not in keys] + list(extra)


def merge_contract(generated: dict[str, Any], manual: dict[str, Any]) -> dict[str, Any]:
    out = dict(generated)
    for k, v in manual.items():
        if k in ("columns", "checks", "dataset"):
            continue
        out[k] = v
    out["checks"] = _merge_checks(generated.get("checks", []), manual.get("checks") or [])
    cols = {c["name"]: dict(c) for c in generated.get("columns", [])}
    order = [c["name"] for c in generated.get("columns", [])]
    for mc in manual.get("columns") or []:
        name = mc.get("name")
        if name not in cols:
            cols[name] = dict(mc)
            order.append(name)
            continue
        merged = dict(cols[name])
        merged.update({k: v for k, v in mc.items() if k != "checks"})
        if mc.get("checks"):
            merged["checks"] = _merge_checks(cols[name].get("checks", []), mc["checks"])
        cols[name] = merged
    out["columns"] = [cols[n] for n in order]
    return out


def build_contract(project_dir: Path, fg: FeatureGroup, exp: Expectations | None = None, dataset: str | None = None,
                   quote: Callable[[str], str] = quote_ident) -> dict[str, Any]:
    """The full contract of `fg`: generated, plus the hand-written file if there is one."""
    contract = generate_contract(fg, exp, dataset=dataset, quote=quote)
    path = contract_path(project_dir, fg)
    if path.is_file():
        try:
            manual = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise FeatureStoreError(f"{path}: not valid YAML: {e}", fix="fix the YAML syntax of the contract file") from None
        if not isinstance(manual, dict):
            raise FeatureStoreError(f"{path}: a contract must be a mapping", fix="start with `columns:` or `checks:`")
        contract = merge_contract(contract, manual)
    elif fg.meta.get("contract"):
        raise FeatureStoreError(f"model {fg.name}: config.meta.fs.contract names {path}, which does not exist",
                                fix="create the file or remove `contract:` to use only the generated contract")
    return contract


def contract_yaml(contract: dict[str, Any]) -> str:
    return yaml.safe_dump(contract, sort_keys=False, default_flow_style=False, width=110)


# -- column types as the engine names them ------------------------------------------------------------------------
# A declared type is a logical one (`double`, `varchar` ...); engines name the same type differently (Postgres:
# `double precision`, `text`; DuckDB: `DOUBLE`, `VARCHAR`) and Soda compares names. A declared type is written into
# the contract as the engine's name of the candidate's column when both are the same logical type; otherwise it is
# kept as declared, and Soda reports the mismatch.
_TYPE_FAMILIES = {
    "text": ("text", "varchar", "string", "character varying", "char", "character", "bpchar"),
    "double": ("double", "double precision", "float8", "float"),
    "real": ("real", "float4"),
    "bigint": ("bigint", "int8", "long"),
    "integer": ("integer", "int", "int4"),
    "smallint": ("smallint", "int2", "short"),
    "boolean": ("boolean", "bool"),
    "timestamp": ("timestamp", "timestamp without time zone", "datetime", "timestamp_ntz"),
    "timestamptz": ("timestamptz", "timestamp with time zone", "timestamp_tz"),
    "date": ("date",),
    "decimal": ("decimal", "numeric"),
}
_FAMILY_OF = {name: family for family, names in _TYPE_FAMILIES.items() for name in names}


def type_family(data_type: str | None) -> str | None:
    """The logical type of a type name (`varchar(20)` -> text, `double precision` -> double); None if unknown."""
    if not data_type:
        return None
    base = data_type.lower().split("(")[0].strip()
    return _FAMILY_OF.get(base)


def engine_column_types(contract: dict[str, Any], actual: dict[str, str]) -> dict[str, Any]:
    """`contract` with each declared column type replaced by the candidate's own type name where they agree."""
    columns = []
    for col in contract.get("columns", []):
        declared, native = col.get("data_type"), actual.get(col.get("name", ""))
        if declared and native and type_family(declared) is not None and type_family(declared) == type_family(native):
            col = {**col, "data_type": native.lower().split("(")[0].strip() if "(" not in declared else native.lower()}
        columns.append(col)
    return {**contract, "columns": columns}


# -- verification ----------------------------------------------------------------------------------------------
def _samples(wh, fg: FeatureGroup, exp: Expectations, ctype: str, column: str | None, qualifier: str | None
             ) -> list[dict[str, Any]]:
    """A few failing rows of a generated check (hand-written checks get none)."""
    rel, q = fg.relation, wh.quote
    where, params = None, []
    if ctype == "missing" and column:
        where = f"{q(column)} is null"
    elif ctype == "invalid" and column and qualifier == "range":
        ce = exp.columns[column]
        parts = []
        if ce.min is not None:
            parts.append(f"{q(column)} < ?")
            params.append(ce.min)
        if ce.max is not None:
            parts.append(f"{q(column)} > ?")
            params.append(ce.max)
        where = " or ".join(parts)
    elif ctype == "invalid" and column and qualifier == "allowed_values":
        vals = exp.columns[column].allowed_values or []
        where = f"{q(column)} not in ({', '.join('?' for _ in vals)})"
        params = list(vals)
    elif ctype == "failed_rows" and qualifier == "future_event_time":
        where = f"{q(fg.event_time)} > current_timestamp"
    elif ctype == "duplicate" and qualifier == "key":
        keys = ", ".join(q(k) for k in fg.key_columns)
        sql = f"select {keys}, count(*) as n_rows from {rel} group by {keys} having count(*) > 1 limit {SAMPLE_ROWS}"
        return _rows(wh, sql, [])
    if not where:
        return []
    return _rows(wh, f"select * from {rel} where {where} limit {SAMPLE_ROWS}", params)


def _rows(wh, sql: str, params: list) -> list[dict[str, Any]]:
    try:
        res = wh.execute(sql, params)
    except Exception:  # a sample is a courtesy: never let it hide the check result itself
        return []
    return [dict(zip(res.columns, r, strict=True)) for r in res.fetchall()]


_OUTCOMES = {"passed": "pass", "failed": "fail", "warned": "warn", "not_evaluated": "error", "excluded": "skipped"}


def verify(wh, project_dir: Path, fg: FeatureGroup, exp: Expectations | None = None,
           now: str | None = None) -> list[CheckResult]:
    """Verify `fg`'s candidate (its dbt model relation) against its contract with Soda, on Warehouse `wh`: Soda's
    own data source for the engine (`wh.soda_data_source`), the dataset named as Soda names it there."""
    os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
    from soda_core.contracts import verify_contract_locally  # imported first: avoids a plugin import cycle

    exp = exp or parse_expectations(fg)
    contract = build_contract(project_dir, fg, exp, dataset=wh.soda_dataset(DATA_SOURCE, fg.schema, fg.identifier),
                              quote=wh.quote)
    contract = engine_column_types(contract, {name: t for name, t in wh.describe(fg.relation)})
    with tempfile.TemporaryDirectory(prefix="fs_contract_") as tmp:
        path = Path(tmp) / f"{fg.name}.contract.yml"
        path.write_text(contract_yaml(contract))
        kwargs: dict[str, Any] = {}
        if now:
            kwargs["data_timestamp"] = now
        with wh.soda_data_source(DATA_SOURCE) as ds:
            session = verify_contract_locally(data_sources=[ds], contract_file_path=str(path), **kwargs)
    results: list[CheckResult] = []
    for cvr in session.contract_verification_results:
        if not cvr.check_results and cvr.has_errors:
            results.append(CheckResult("contract:error", "contract", "error",
                                       message=cvr.get_errors_str()[:1000]))
        for r in cvr.check_results:
            check = r.check
            ctype = check.type
            column = getattr(check, "column_name", None)
            qualifier = getattr(check, "qualifier", None)
            name = ":".join(p for p in ("contract", ctype, column, qualifier) if p)
            outcome = str(r.outcome).split(".")[-1].lower()
            outcome = _OUTCOMES.get(outcome, outcome)
            metrics = {k: v for k, v in (r.diagnostic_metric_values or {}).items()}
            msg = check.name or ctype
            if ctype == "schema" and outcome != "pass":
                msg += _schema_message(r)
            elif outcome == "fail":  # Soda's check name states the pass condition ("No invalid values"): say what failed
                msg = _failure_message(fg, exp, ctype, column, qualifier, metrics) or msg
            res = CheckResult(name, "contract", outcome, column=column, message=msg, metrics=metrics)
            if res.outcome == "fail":
                res.samples = _samples(wh, fg, exp, ctype, column, qualifier)
            results.append(res)
        if cvr.has_errors and cvr.check_results:
            results.append(CheckResult("contract:log_errors", "contract", "error",
                                       message=cvr.get_errors_str()[:1000]))
    return results


def _n_rows(n: Any) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _bound(v: Any, default: str) -> str:
    return default if v is None else str(v)


def _failure_message(fg: FeatureGroup, exp: Expectations, ctype: str, column: str | None, qualifier: str | None,
                     metrics: dict[str, Any]) -> str | None:
    """What a failed generated check found, e.g. "162 rows outside [0, 500]"; None: no better words than Soda's."""
    ce = exp.columns.get(column) if column else None
    if ctype == "missing" and "missing_count" in metrics:
        return f"{_n_rows(metrics['missing_count'])} with NULL {column}"
    if ctype == "invalid" and "invalid_count" in metrics:
        n = _n_rows(metrics["invalid_count"])
        if qualifier == "range" and ce is not None and ce.has_range:
            return f"{n} outside [{_bound(ce.min, '-inf')}, {_bound(ce.max, 'inf')}]"
        if qualifier == "allowed_values" and ce is not None and ce.allowed_values:
            return f"{n} not in the allowed values {ce.allowed_values}"
        return f"{n} invalid"
    if ctype == "duplicate" and "duplicate_count" in metrics:
        return f"{metrics['duplicate_count']} duplicate key values on ({', '.join(fg.key_columns)})"
    if ctype == "failed_rows" and "failed_rows_count" in metrics:
        what = f"{fg.event_time} in the future" if qualifier == "future_event_time" else "failing"
        return f"{_n_rows(metrics['failed_rows_count'])} {what}"
    if ctype == "row_count" and "row_count" in metrics:
        return f"{_n_rows(metrics['row_count'])}, fewer than the {exp.min_rows} required"
    return None


def _schema_message(r) -> str:
    parts = []
    for attr, label in (("expected_column_names_not_actual", "missing columns"),
                        ("actual_column_names_not_expected", "undeclared columns"),
                        ("column_data_type_mismatches", "type mismatches")):
        v = getattr(r, attr, None)
        if v:
            parts.append(f"{label}: {v}")
    return (": " + "; ".join(parts)) if parts else ""
