"""Fast unit tests of the validation gate: PII detectors, pii lineage, expectation parsing, contract merging."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fs_cli.declarations.model import Column, FeatureGroup
from fs_cli.errors import DeclarationError
from fs_cli.validation.contract import generate_contract, merge_contract
from fs_cli.validation.drift import evaluate
from fs_cli.validation.expectations import parse_expectations
from fs_cli.validation.pii import find_pii, iban_ok, lineage_check, luhn_ok, mask


def luhn_complete(body: str) -> str:
    for d in "0123456789":
        if luhn_ok(body + d):
            return body + d
    raise AssertionError


@given(st.text("0123456789", min_size=12, max_size=18))
def test_luhn_valid_numbers_are_cards_and_one_digit_off_are_not(body):
    card = luhn_complete(body)
    assert "card_number" in find_pii(f"paid with {card} yesterday")
    wrong = card[:-1] + str((int(card[-1]) + 1) % 10)
    assert "card_number" not in find_pii(wrong)


@pytest.mark.parametrize("value,kinds", [
    ("jane.doe+fs@mail.example.co.uk", ["email"]),
    ("call +44 20 7946 0958", ["phone"]),
    ("(030) 1234-5678", ["phone"]),
    ("4111-1111-1111-1111", ["card_number"]),
    ("GB82 WEST 1234 5698 7654 32", ["iban"]),
    ("DE89370400440532013000", ["iban"]),
    ("DE89370400440532013001", []),  # mod-97 fails
    ("2026-01-31 12:00:00", []),
    ("12345.678", []),
    ("gold", []),
    ("ES", []),
    ("order 1234567", []),
])
def test_pii_detectors(value, kinds):
    assert find_pii(value) == kinds


def test_iban_and_mask():
    assert iban_ok("NL91ABNA0417164300") and not iban_ok("NL91ABNA0417164301")
    assert mask("jane.doe@example.org") == "ja************rg"
    assert "doe" not in mask("jane.doe@example.org")


def _node(uid, sql="", pii=(), parents=()):
    cols = {c: SimpleNamespace(meta={"pii": True}, config=None) for c in pii}
    return SimpleNamespace(unique_id=uid, name=uid.split(".")[-1], raw_code=sql, columns=cols,
                           depends_on=SimpleNamespace(nodes=list(parents)))


def _fg(columns: list[Column], meta: dict | None = None, uid="model.p.fg") -> FeatureGroup:
    return FeatureGroup(
        name="fg", model="fg", version=None, unique_id=uid, relation='"db"."main"."fg"', schema="main",
        identifier="fg", entities=["customer"], primary_key=["customer_id"], event_time="ts", created_time=None,
        online=False, ttl=None, owner="", tags=[], description="", policy="strict", columns=columns,
        meta=meta or {}, path="models/feature_groups/fg.sql", depends_on=[], snapshot_name="fg_snapshot")


COLS = [Column("customer_id", "bigint"), Column("ts", "timestamp"), Column("amount", "double"),
        Column("segment", "varchar")]


def test_lineage_taint_propagates_only_through_sql_that_uses_the_column():
    stg = _node("model.p.stg", "select id, email, phone from {{ source('s', 'c') }}", pii=["email", "phone"])
    mid_clean = _node("model.p.mid", "-- email is dropped here\nselect id as customer_id from {{ ref('stg') }}",
                      parents=["model.p.stg"])
    fg_clean = _node("model.p.fg", "select customer_id, ts from {{ ref('mid') }}", parents=["model.p.mid"])
    manifest = SimpleNamespace(nodes={n.unique_id: n for n in (stg, mid_clean, fg_clean)}, sources={})
    assert lineage_check(manifest, _fg(COLS)).outcome == "pass"

    mid_leak = _node("model.p.mid", "select id as customer_id, lower(email) as email from {{ ref('stg') }}",
                     parents=["model.p.stg"])
    fg_leak = _node("model.p.fg", "select customer_id, ts, length(email) as amount from {{ ref('mid') }}",
                    parents=["model.p.mid"])
    manifest = SimpleNamespace(nodes={n.unique_id: n for n in (stg, mid_leak, fg_leak)}, sources={})
    r = lineage_check(manifest, _fg(COLS))
    assert r.outcome == "fail" and r.metrics["columns"] == ["email"]
    assert r.samples[0]["pii_in"] == "stg"

    marked = [*COLS[:2], Column("amount", "double", pii=True)]
    manifest = SimpleNamespace(nodes={n.unique_id: n for n in (stg, mid_clean, fg_clean)}, sources={})
    assert lineage_check(manifest, _fg(marked)).outcome == "fail"


def test_expectations_parse_and_reject_bad_declarations():
    cols = [*COLS[:2], Column("amount", "double", meta={"fs": {"range": [0, None], "drift": {"psi": 0.4}}}),
            Column("segment", "varchar", meta={"fs": {"allowed_values": ["a", "b"], "not_null": True}})]
    exp = parse_expectations(_fg(cols, {"expectations": {"freshness": "2d"}, "drift": {"reference": {"commit": 3}}}))
    assert exp.columns["customer_id"].not_null and exp.columns["ts"].not_null  # implied by the key
    assert exp.columns["amount"].min == 0 and exp.columns["amount"].max is None
    assert exp.columns["amount"].drift_thresholds == {"psi": 0.4}
    assert exp.freshness.total_seconds() == 2 * 86400
    assert (exp.drift.reference, exp.drift.reference_commit) == ("commit", 3)

    bad = [*COLS[:2], Column("amount", "double", meta={"fs": {"range": [5, 1], "rnage": 1}}),
           Column("segment", "varchar", meta={"fs": {"allowed_values": "a", "drift": {"psx": 1}}})]
    with pytest.raises(DeclarationError) as e:
        parse_expectations(_fg(bad, {"drift": {"reference": "yesterday"}}))
    text = str(e.value)
    for needle in ("min 5 > max 1", "rnage is not a known expectation", "allowed_values must be a non-empty list",
                   "psx is not a drift statistic", "reference = 'yesterday'"):
        assert needle in text, needle


def test_generated_contract_and_merge():
    cols = [*COLS[:2], Column("amount", "double", meta={"fs": {"range": [0, 100]}}), COLS[3]]
    c = generate_contract(_fg(cols))
    assert c["dataset"] == "fs/main/fg"
    by_name = {col["name"]: col for col in c["columns"]}
    assert by_name["customer_id"]["checks"] == [{"missing": {"qualifier": "not_null"}}]
    assert by_name["amount"]["checks"] == [{"invalid": {"qualifier": "range", "valid_min": 0, "valid_max": 100}}]
    assert {"duplicate": {"qualifier": "key", "columns": ["customer_id", "ts"]}} in c["checks"]
    merged = merge_contract(c, {
        "filter": "ts > '2026-01-01'",
        "columns": [{"name": "amount", "checks": [{"invalid": {"qualifier": "range", "valid_max": 50}}]},
                    {"name": "segment", "checks": [{"missing": None}]}],
        "checks": [{"row_count": {"qualifier": "min_rows", "threshold": {"must_be_greater_than": 10}}}],
    })
    mb = {col["name"]: col for col in merged["columns"]}
    assert mb["amount"]["checks"] == [{"invalid": {"qualifier": "range", "valid_max": 50}}]
    assert mb["segment"]["checks"] == [{"missing": None}]
    assert merged["filter"] == "ts > '2026-01-01'"
    assert [k for ch in merged["checks"] for k in ch].count("row_count") == 1


def test_drift_thresholds_evaluate():
    fd = evaluate("x", True, {"psi": 0.3, "ks_d": 0.1, "wasserstein_norm": None, "missing_change": -0.2},
                  {"psi": 0.25, "ks_d": 0.25, "wasserstein_norm": 0.5, "missing_change": 0.1, "jensen_shannon": 0.1})
    assert fd.exceeded == ["psi", "missing_change"] and "jensen_shannon" not in fd.thresholds


def test_declared_types_take_the_engines_name_only_when_they_agree():
    """Soda compares type names; a declared logical type is written as the engine's name of the same type."""
    from fs_cli.validation.contract import engine_column_types, type_family

    assert type_family("VARCHAR") == type_family("text") == type_family("character varying(20)") == "text"
    assert type_family("double precision") == type_family("DOUBLE") == "double"
    assert type_family("integer") != type_family("bigint")
    c = generate_contract(_fg(COLS))
    pg = {"customer_id": "bigint", "ts": "timestamp without time zone", "amount": "double precision",
          "segment": "text"}
    got = {col["name"]: col.get("data_type") for col in engine_column_types(c, pg)["columns"]}
    assert got == pg
    duck = {"customer_id": "INTEGER", "ts": "TIMESTAMP", "amount": "DOUBLE", "segment": "VARCHAR"}
    got = {col["name"]: col.get("data_type") for col in engine_column_types(c, duck)["columns"]}
    assert got == {"customer_id": "bigint", "ts": "timestamp", "amount": "double", "segment": "varchar"}, \
        "a real mismatch (integer vs declared bigint) keeps the declared type, so Soda reports it"


def test_contract_dataset_and_quoting_follow_the_engine():
    from fs_cli.warehouse.base import Warehouse
    from fs_cli.warehouse.postgres import PostgresWarehouse

    pg = PostgresWarehouse.__new__(PostgresWarehouse)
    pg.credentials = {"dbname": "shop"}
    assert pg.soda_dataset("fs", "fs_dev", "fg") == "fs/shop/fs_dev/fg"
    assert Warehouse.soda_dataset(pg, "fs", "main", "fg") == "fs/main/fg"  # the portable default (DuckDB's)
    c = generate_contract(_fg(COLS), dataset="fs/shop/main/fg", quote=lambda n: f"`{n}`")
    assert c["dataset"] == "fs/shop/main/fg"
    future = next(ch["failed_rows"] for ch in c["checks"] if "failed_rows" in ch)
    assert future["expression"] == "`ts` > current_timestamp"


def test_gate_lines_unpack_as_a_pair_and_carry_errors():
    from fs_cli.validation import ERROR_PREFIX, GateLines, is_gate_error

    lines = GateLines(["bad: x", ERROR_PREFIX + "broken: y"], ["w"], [ERROR_PREFIX + "broken: y"])
    failures, warnings = lines
    assert failures == lines.failures and warnings == ["w"] and lines.blocking
    assert [is_gate_error(f) for f in failures] == [False, True]
    assert not GateLines(["bad"], [], []).blocking


def test_dispatch_picks_the_engine_variant_then_default(tmp_path):
    from fs_cli.errors import FeatureStoreError
    from fs_cli.transforms.macros import render_macro

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "x.sql").write_text(
        "{% macro f(c) %}{{ return(adapter.dispatch('f', 'feature_store')(c)) }}{% endmacro %}\n"
        "{% macro default__f(c) %}default {{ adapter.quote(c) }}{% endmacro %}\n"
        "{% macro postgres__f(c) %}pg {{ adapter.quote(c) }}{% endmacro %}\n"
        "{% macro g() %}{{ return(adapter.dispatch('g', 'feature_store')()) }}{% endmacro %}\n")
    assert render_macro(tmp_path, "postgres", "f", "a", subdirs=("m",)) == 'pg "a"'
    assert render_macro(tmp_path, "duckdb", "f", "a", subdirs=("m",)) == 'default "a"'
    assert render_macro(tmp_path, "spark", "f", "a", subdirs=("m",), quote=lambda n: f"`{n}`") == "default `a`"
    with pytest.raises(FeatureStoreError, match="no implementation of macro g for duckdb"):
        render_macro(tmp_path, "duckdb", "g", subdirs=("m",))


def test_drift_false_on_the_group_disables_drift():
    assert parse_expectations(_fg(COLS, meta={"drift": False})).drift.enabled is False
    assert parse_expectations(_fg(COLS, meta={"drift": {"enabled": False}})).drift.enabled is False
    assert parse_expectations(_fg(COLS)).drift.enabled is True
    with pytest.raises(DeclarationError, match="drift"):
        parse_expectations(_fg(COLS, meta={"drift": "off"}))


def test_max_reference_rows_is_a_row_count_of_at_least_a_thousand():
    assert parse_expectations(_fg(COLS)).drift.max_reference_rows is None  # default: the exact check
    exp = parse_expectations(_fg(COLS, meta={"drift": {"max_reference_rows": 200_000}}))
    assert exp.drift.max_reference_rows == 200_000
    for bad in (10, True, "200k", 1.5e5, -1):
        with pytest.raises(DeclarationError, match=r"(?s)drift\.max_reference_rows = .*use a whole number of rows >= 1000"):
            parse_expectations(_fg(COLS, meta={"drift": {"max_reference_rows": bad}}))
