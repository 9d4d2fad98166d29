"""Soda (v4) data contracts generated from feature-group metadata, verified in-process on the warehouse connection.

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
from pathlib import Path
from typing import Any

import yaml

from ..errors import FeatureStoreError
from ..metadata import FeatureGroup
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


def generate_contract(fg: FeatureGroup, exp: Expectations | None = None) -> dict[str, Any]:
    """The contract generated from the declaration alone (no hand-written part)."""
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
    et = quote_ident(fg.event_time)
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
        "dataset": f"{DATA_SOURCE}/{fg.schema}/{fg.identifier}",
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


def build_contract(project_dir: Path, fg: FeatureGroup, exp: Expectations | None = None) -> dict[str, Any]:
    """The full contract of `fg`: generated, plus the hand-written file if there is one."""
    contract = generate_contract(fg, exp)
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


# -- verification ----------------------------------------------------------------------------------------------
def _samples(con, fg: FeatureGroup, exp: Expectations, ctype: str, column: str | None, qualifier: str | None
             ) -> list[dict[str, Any]]:
    """A few failing rows of a generated check (hand-written checks get none)."""
    rel = fg.relation
    where, params = None, []
    if ctype == "missing" and column:
        where = f"{quote_ident(column)} is null"
    elif ctype == "invalid" and column and qualifier == "range":
        ce = exp.columns[column]
        parts = []
        if ce.min is not None:
            parts.append(f"{quote_ident(column)} < ?")
            params.append(ce.min)
        if ce.max is not None:
            parts.append(f"{quote_ident(column)} > ?")
            params.append(ce.max)
        where = " or ".join(parts)
    elif ctype == "invalid" and column and qualifier == "allowed_values":
        vals = exp.columns[column].allowed_values or []
        where = f"{quote_ident(column)} not in ({', '.join('?' for _ in vals)})"
        params = list(vals)
    elif ctype == "failed_rows" and qualifier == "future_event_time":
        where = f"{quote_ident(fg.event_time)} > current_timestamp"
    elif ctype == "duplicate" and qualifier == "key":
        keys = ", ".join(quote_ident(k) for k in fg.key_columns)
        sql = f"select {keys}, count(*) as n_rows from {rel} group by {keys} having count(*) > 1 limit {SAMPLE_ROWS}"
        return _rows(con, sql, [])
    if not where:
        return []
    return _rows(con, f"select * from {rel} where {where} limit {SAMPLE_ROWS}", params)


def _rows(con, sql: str, params: list) -> list[dict[str, Any]]:
    try:
        cur = con.execute(sql, params)
    except Exception:  # a sample is a courtesy: never let it hide the check result itself
        return []
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def verify(con, project_dir: Path, fg: FeatureGroup, exp: Expectations | None = None,
           now: str | None = None) -> list[CheckResult]:
    """Verify `fg`'s candidate (its dbt model relation) against its contract, on DuckDB connection `con`."""
    os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")
    from soda_core.contracts import verify_contract_locally  # imported first: avoids a plugin import cycle
    from soda_duckdb import DuckDBDataSource

    exp = exp or parse_expectations(fg)
    contract = build_contract(project_dir, fg, exp)
    with tempfile.TemporaryDirectory(prefix="fs_contract_") as tmp:
        path = Path(tmp) / f"{fg.name}.contract.yml"
        path.write_text(contract_yaml(contract))
        ds = DuckDBDataSource.from_existing_cursor(con, name=DATA_SOURCE)
        kwargs: dict[str, Any] = {}
        if now:
            kwargs["data_timestamp"] = now
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
            outcome = {"passed": "pass", "failed": "fail", "warned": "warn",
                       "not_evaluated": "error", "excluded": "skipped"}.get(outcome, outcome)
            metrics = {k: v for k, v in (r.diagnostic_metric_values or {}).items()}
            msg = check.name or ctype
            if ctype == "schema" and outcome != "pass":
                msg += _schema_message(r)
            res = CheckResult(name, "contract", outcome, column=column, message=msg, metrics=metrics)
            if res.failed:
                res.samples = _samples(con, fg, exp, ctype, column, qualifier)
            results.append(res)
        if cvr.has_errors and cvr.check_results:
            results.append(CheckResult("contract:log_errors", "contract", "error",
                                       message=cvr.get_errors_str()[:1000]))
    return results


def _schema_message(r) -> str:
    parts = []
    for attr, label in (("expected_column_names_not_actual", "missing columns"),
                        ("actual_column_names_not_expected", "undeclared columns"),
                        ("column_data_type_mismatches", "type mismatches")):
        v = getattr(r, attr, None)
        if v:
            parts.append(f"{label}: {v}")
    return (": " + "; ".join(parts)) if parts else ""
