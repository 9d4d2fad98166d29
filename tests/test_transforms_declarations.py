"""Bad declarations fail at declare time with a clear message; on-demand features compute the same value offline
(the SQL compiled into a training dataset) and online (the in-process DuckDB evaluator)."""

from __future__ import annotations

import datetime as dt
import math
import threading

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fs_cli.errors import DeclarationError, FeatureStoreError
from fs_cli.transforms import (
    OnDemandEvaluator,
    OnDemandFeature,
    parse_on_demand,
    parse_transformations,
    render_on_demand_columns,
)

TYPES = {"amount": "double", "cnt": "bigint", "segment": "varchar", "seen_at": "timestamp", "flag": "boolean",
         "price": "decimal(18,2)"}


@pytest.mark.parametrize("decl, message", [
    ({"feature": "amont", "fn": "standard_scaler"}, "unknown feature 'amont'.*did you mean amount"),
    ({"feature": "segment", "fn": "standard_scaler"}, "standard_scaler is not applicable to segment, a string"),
    ({"feature": "amount", "fn": "one_hot"}, "one_hot is not applicable to amount, a numeric"),
    ({"feature": "flag", "fn": "one_hot"}, "type 'boolean', which no transformation applies to"),
    ({"feature": "amount", "fn": "standard_scale"}, "unknown transformation function.*did you mean standard_scaler"),
    ({"feature": "amount", "fn": "clip"}, "clip needs min and/or max"),
    ({"feature": "amount", "fn": "clip", "args": {"min": 5, "max": 1}}, "clip min 5 is greater than max 1"),
    ({"feature": "amount", "fn": "clip", "args": {"min": "zero"}}, "clip min is 'zero', not a finite number"),
    ({"feature": "amount", "fn": "clip", "args": {"lo": 1}}, "clip has no argument 'lo'"),
    ({"feature": "amount", "fn": "impute"}, "impute strategy None is not applicable"),
    ({"feature": "segment", "fn": "impute", "args": {"strategy": "mean"}},
     "impute strategy 'mean' is not applicable to a string feature"),
    ({"feature": "amount", "fn": "impute", "args": {"strategy": "constant", "value": "x"}}, "not a finite number"),
    ({"feature": "segment", "fn": "impute", "args": {"strategy": "constant", "value": 3}}, "is not a string"),
    ({"feature": "amount", "fn": "bucketize", "args": {"boundaries": [3, 1]}}, "not strictly increasing"),
    ({"feature": "amount", "fn": "bucketize", "args": {}}, "exactly one of boundaries or num_buckets"),
    ({"feature": "amount", "fn": "bucketize", "args": {"num_buckets": 1}}, "num_buckets is 1"),
    ({"feature": "segment", "fn": "one_hot", "args": {"max_categories": 0}}, "max_categories is 0"),
    ({"feature": "amount", "fn": "log1p", "output": "cnt"}, "output 'cnt' is already a feature"),
    ({"feature": "amount", "fn": "log1p", "output": "bad name"}, "not a plain column name"),
    ({"feature": "amount", "function": "log1p"}, "unknown key 'function'"),
])
def test_bad_declaration_fails_clearly(decl, message):
    with pytest.raises(DeclarationError, match="(?s)" + message) as e:
        parse_transformations([decl], TYPES, where="feature view fv_fraud: transformations")
    assert "feature view fv_fraud: transformations[0]" in str(e.value)
    assert all(p.fix for p in e.value.problems)  # every problem says how to fix it


def test_chain_rules():
    with pytest.raises(DeclarationError, match="nothing can follow one_hot"):
        parse_transformations([{"feature": "segment", "fn": "one_hot"}, {"feature": "segment", "fn": "one_hot"}], TYPES)
    with pytest.raises(DeclarationError, match="already written from feature amount"):
        parse_transformations([{"feature": "amount", "fn": "log1p", "output": "z"},
                               {"feature": "cnt", "fn": "log1p", "output": "z"}], TYPES)
    with pytest.raises(DeclarationError, match="standard_scaler is not applicable to segment.*after the steps"):
        parse_transformations([{"feature": "segment", "fn": "impute", "args": {"strategy": "constant", "value": "u"}},
                               {"feature": "segment", "fn": "standard_scaler"}], TYPES)
    # every problem is reported at once
    with pytest.raises(DeclarationError, match="2 invalid"):
        parse_transformations([{"feature": "nope", "fn": "log1p"}, {"feature": "amount", "fn": "nope"}], TYPES)
    plan = parse_transformations([
        {"feature": "price", "fn": "impute", "args": {"strategy": "median"}},
        {"feature": "price", "fn": "robust_scaler"},
        {"feature": "cnt", "fn": "label_encode", "output": "cnt_code"},  # integers are categories too
        {"feature": "cnt", "fn": "bucketize", "args": {"boundaries": [1, 5]}, "output": "cnt_band"},
        {"feature": "cnt", "fn": "one_hot", "output": "cnt_band"},
    ], TYPES)
    assert [(c.output, [s.fn for s in c.steps]) for c in plan.chains] == [
        ("price", ["impute", "robust_scaler"]), ("cnt_code", ["label_encode"]), ("cnt_band", ["bucketize", "one_hot"])]


OD = [
    {"name": "amount_to_avg", "expr": "amount / nullif(avg_amount, 0)", "inputs": ["amount", "avg_amount"],
     "request": ["amount"]},
    {"name": "hours_since_seen", "expr": "date_diff('second', seen_at, request_ts) / 3600.0",
     "inputs": ["seen_at", "request_ts"], "request": {"request_ts": "timestamp"}},
    {"name": "is_big", "expr": "coalesce(amount > 3 * avg_amount, false)", "inputs": ["amount", "avg_amount"],
     "request": ["amount"]},
    {"name": "seg_upper", "expr": "upper(segment) || ':' || cast(cnt as varchar)", "inputs": ["segment", "cnt"]},
]
OD_TYPES = {**TYPES, "avg_amount": "double"}


@pytest.mark.parametrize("decl, message", [
    ({"name": "r", "expr": "amount / avg_basket", "inputs": ["amount"], "request": ["amount"]},
     r"references avg_basket, not declared in its inputs \['amount'\]"),
    ({"name": "r", "expr": "amount / x", "inputs": ["amount", "x"], "request": ["amount"]},
     "input x is neither a feature of the view nor a request parameter"),
    ({"name": "r", "expr": "amount", "inputs": ["amount"], "request": ["amount2"]}, "not among its inputs"),
    ({"name": "r", "expr": "q", "inputs": ["q"], "request": ["q"]}, "request parameter q has no type"),
    ({"name": "r", "expr": "amount + segment", "inputs": ["amount", "segment"], "request": ["amount"]},
     "does not bind"),
    ({"name": "r", "expr": "sum(amount)", "inputs": ["amount"], "request": ["amount"]}, "aggregates over rows"),
    ({"name": "r", "expr": "(select max(amount) from t)", "inputs": ["amount"], "request": ["amount"]},
     "subquery"),
    ({"name": "r", "expr": "amount) as a, (1", "inputs": ["amount"], "request": ["amount"]},
     "not a single scalar expression"),
    ({"name": "r", "expr": "1; drop table t", "inputs": []}, "does not parse"),
    ({"name": "r", "expr": "amount +", "inputs": ["amount"], "request": ["amount"]}, "does not parse"),
    ({"name": "amount", "expr": "1", "inputs": []}, "name amount is already a feature"),
])
def test_bad_on_demand_declaration_fails_clearly(decl, message):
    with pytest.raises(DeclarationError, match="(?s)" + message):
        parse_on_demand([decl], OD_TYPES, {"amount": "double"})


def test_on_demand_types_and_round_trip():
    ods = parse_on_demand(OD, OD_TYPES, {"amount": "double"})
    assert [o.data_type for o in ods] == ["DOUBLE", "DOUBLE", "BOOLEAN", "VARCHAR"]
    assert [OnDemandFeature.from_dict(o.to_dict()) for o in ods] == ods


req = st.floats(allow_nan=False, allow_infinity=False, width=32) | st.none()


@settings(max_examples=25, deadline=None)
@given(rows=st.lists(st.tuples(req, req, st.sampled_from(["gold", "Ünï", None]), st.integers(-99, 99) | st.none(),
                               st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2030, 1, 1))),
                     min_size=1, max_size=15))
def test_on_demand_offline_sql_and_online_evaluator_agree(rows):
    ods = parse_on_demand(OD, OD_TYPES, {"amount": "double"})
    ev = _evaluator(ods)
    ref = dt.datetime(2026, 1, 31, 12)
    dicts = [{"amount": a, "avg_amount": b, "segment": s, "cnt": c, "seen_at": t, "request_ts": ref}
             for a, b, s, c, t in rows]
    online = ev.evaluate_many(dicts)
    with duckdb.connect() as con:  # offline: the training-dataset SQL over a typed relation
        con.execute("create table spine (amount double, avg_amount double, segment varchar, cnt bigint, "
                    "seen_at timestamp, request_ts timestamp)")
        con.executemany("insert into spine values (?, ?, ?, ?, ?, ?)", [list(d.values()) for d in dicts])
        cur = con.execute(f"select {', '.join(render_on_demand_columns(ods))} from spine")
        offline = [dict(zip([d[0] for d in cur.description], r, strict=True)) for r in cur.fetchall()]
    assert online == offline
    assert [ev.evaluate(d) for d in dicts] == offline


_EV: dict[int, OnDemandEvaluator] = {}


def _evaluator(ods: list[OnDemandFeature]) -> OnDemandEvaluator:
    return _EV.setdefault(0, OnDemandEvaluator(ods))


def test_on_demand_evaluator_threads_and_bad_request_values():
    ev = OnDemandEvaluator(parse_on_demand(OD[:1], OD_TYPES, {"amount": "double"}))
    results: list[float] = []
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for i in range(50):
                results.append(ev.evaluate({"amount": float(k * 1000 + i), "avg_amount": 2.0})["amount_to_avg"])
        except BaseException as e:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and sorted(results) == sorted((k * 1000 + i) / 2.0 for k in range(4) for i in range(50))
    assert ev.evaluate({"amount": 3, "avg_amount": 0})["amount_to_avg"] is None
    assert math.isclose(ev.evaluate({"amount": "3.5", "avg_amount": 1})["amount_to_avg"], 3.5)
    with pytest.raises(FeatureStoreError, match="could not be computed") as e:
        ev.evaluate({"amount": "three", "avg_amount": 1.0})
    assert "amount double" in e.value.fix
