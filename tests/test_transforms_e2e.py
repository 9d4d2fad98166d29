"""Transformations on the demo, end to end: a feature view declaring on-demand features and transformations ->
a training dataset version whose statistics are fitted on its train split -> the transformed training set (SQL
path) equals apply_row over its raw rows (Python path) -> the online side applies the same statistics."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from fs_cli import FeatureStore, training
from fs_cli.errors import DeclarationError
from fs_cli.online.td_statistics import attach_to_views
from fs_cli.training_transforms import read_transformed, transform_frame
from fs_cli.transforms import apply_row, fit
from fs_cli.transforms.served_vector import ViewServing
from fs_cli.transforms.view import td_statistics, validate_feature_view

FV = "fv_tf_demo"
FV_YAML = """
version: 2
models:
  - name: fv_tf_demo
    description: Test view for transformations and on-demand features.
    config:
      meta:
        fs:
          feature_view:
            spine:
              model: stg_fraud_labels
              timestamp: transaction_at
              entities: {customer: customer_id}
              label: is_fraud
              columns: [transaction_id, amount]
            features:
              - feature_group: fg_customer_transactions
                features: [tx_amount_7d, tx_count_7d, tx_avg_amount_30d]
              - feature_group: fg_customer_profile
                features: [segment, credit_limit]
            on_demand:
              - name: amount_to_avg_basket
                expr: "amount / nullif(tx_avg_amount_30d, 0)"
                inputs: [amount, tx_avg_amount_30d]
                request: [amount]
            transformations:
              - {feature: tx_amount_7d, fn: impute, args: {strategy: median}}
              - {feature: tx_amount_7d, fn: standard_scaler}
              - {feature: tx_count_7d, fn: robust_scaler}
              - {feature: segment, fn: impute, args: {strategy: constant, value: unknown}}
              - {feature: segment, fn: one_hot}
              - {feature: credit_limit, fn: bucketize, args: {boundaries: [1000, 3000, 6000]}, output: credit_band}
              - {feature: amount, fn: log1p}
              - {feature: amount_to_avg_basket, fn: clip, args: {min: 0, max: 50}}
              - {feature: amount_to_avg_basket, fn: min_max_scaler}
"""
FV_SQL = """-- depends_on: {{ ref('stg_fraud_labels') }}
-- depends_on: {{ ref('fg_customer_transactions_snapshot') }}
-- depends_on: {{ ref('fg_customer_profile_snapshot') }}
{{ feature_store.fs_feature_view() }}
"""


@pytest.fixture(scope="module")
def demo(demo_copy_on_engine) -> dict:
    """The demo plus fv_tf_demo on each warehouse (a private copy of the run's shared demo build: its groups are
    published, its spine built), with TD version 1 of fv_tf_demo fitted."""
    engine, d = demo_copy_on_engine
    (d / "models" / "feature_views" / "_fv_tf_demo.yml").write_text(FV_YAML)
    (d / "models" / "feature_views" / "fv_tf_demo.sql").write_text(FV_SQL)
    fs = FeatureStore(d)
    assert fs.project.engine == engine
    assert fs.project.dbt(["build", "--select", FV]).success  # the new view, over the published groups
    td = fs.create_training_dataset(FV, split="random:0.7,0.3:11")
    return {"dir": d, "fs": fs, "td": td, "engine": engine}


def test_statistics_are_fitted_on_the_train_split_only(demo):
    fs, td = demo["fs"], demo["td"]
    stats = td_statistics(td)
    assert stats["fitted_on"]["train_value"] == "train"
    assert td.statistics["on_demand"][0]["name"] == "amount_to_avg_basket"
    with fs.project.warehouse() as wh:  # a session-private table of the train rows (no aliased subquery: portable)
        train_rows = wh.create_temp_table("fs_test_train_rows", f"select * from {td.table} where split = 'train'")
        refit = fit(wh, train_rows, stats["declarations"], split_column=None)
        everything = fit(wh, td.table, stats["declarations"], split_column=None)
    assert [c["steps"] for c in refit["chains"]] == [c["steps"] for c in stats["chains"]]
    assert [c["steps"] for c in everything["chains"]] != [c["steps"] for c in stats["chains"]]  # test rows differ


def test_transformed_training_set_equals_python_path(demo):
    fs, td = demo["fs"], demo["td"]
    stats = td_statistics(td)
    _, raw = training.read(fs.project, FV, td.version)
    _, transformed = read_transformed(fs.project, FV, td.version)
    assert transformed.num_rows == raw.num_rows == td.rows
    cols = transformed.column_names
    assert "segment__gold" in cols and "segment__unseen" in cols and "credit_band" in cols and "segment" not in cols
    for r, t in zip(raw.to_pylist(), transformed.to_pylist(), strict=True):
        py = apply_row(r, stats)
        assert list(py) == cols
        for k in cols:
            a, b = t[k], py[k]
            assert (a is None and b is None) or a == b or (
                isinstance(a, float) and math.isclose(a, b, rel_tol=1e-12, abs_tol=0)), (k, a, b)
    assert fs.training_dataset(FV, split="train", transformed=True, format="arrow").num_rows == td.row_counts["train"]
    # batch scoring of an arbitrary frame goes through the same SQL
    frame = raw.slice(0, 5).to_pandas().drop(columns=["is_fraud", "split"])
    scored = fs.transform(frame, FV, version=td.version)
    assert scored.equals(transform_frame(fs.project, frame, FV, td.version))
    assert list(scored["tx_amount_7d"]) == pytest.approx([r["tx_amount_7d"] for r in transformed.slice(0, 5)
                                                          .to_pylist()], rel=1e-12)


def test_online_serving_applies_the_td_statistics(demo):
    """What the service does for /feature-views/fv_tf_demo/vector?customer_id=..&amount=..: same values."""
    from fs_cli.online.from_warehouse import online_specs

    fs, td = demo["fs"], demo["td"]
    _, views, _ = online_specs(fs.catalog)
    with fs.project.warehouse(read_only=True) as wh:
        spec = attach_to_views(wh, fs.catalog, views)[FV]
        # the TD's numbers as the service sees them (Decimal -> float: JSON has no decimals)
        raw = wh.arrow(f"select * from {td.table} where tx_avg_amount_30d > 0 and segment is not null "
                       "order by transaction_id limit 1").to_pylist()[0]
    raw = {k: float(v) if hasattr(v, "as_tuple") else v for k, v in raw.items()}
    serving = ViewServing(FV, spec.extra["transforms"], spec.keys)
    assert serving.request_params == ["amount"]
    online_names = {"tx_amount_7d", "tx_count_7d", "tx_avg_amount_30d", "segment", "credit_limit"}
    answer = {"vectors": [{"entity": {"customer_id": raw["customer_id"]},
                           "values": {k: raw[k] for k in online_names}}]}
    out = serving.apply(answer, [{"amount": raw["amount"]}], None)["vectors"][0]["values"]
    expected = apply_row(raw, td_statistics(td))
    for k, v in out.items():
        assert v == pytest.approx(expected[k], rel=1e-12) if isinstance(v, float) else v == expected[k], k
    assert answer["training_dataset_version"] == td.version
    assert "customer_id" not in out and "amount" in out  # keys are not features; amount is transformed
    plain = serving.apply({"vectors": [{"entity": {"customer_id": 1}, "values": {k: raw[k] for k in online_names}}]},
                          [{"amount": raw["amount"]}], None, transformed=False)["vectors"][0]["values"]
    assert plain["amount_to_avg_basket"] == pytest.approx(raw["amount_to_avg_basket"], rel=1e-12)


def test_bad_declarations_fail_when_the_catalog_loads(demo):
    cat = demo["fs"].catalog
    fv = cat.fv(FV)
    bad = dataclasses.replace(fv, transformations=[{"feature": "segment", "fn": "standard_scaler"},
                                                   {"feature": "tx_amount_7dd", "fn": "log1p"}],
                              on_demand=[{"name": "r", "expr": "amount / avg_basket", "inputs": ["amount"],
                                          "request": ["amount"]}])
    with pytest.raises(DeclarationError) as e:
        validate_feature_view(cat, bad)
    text = str(e.value)
    assert "3 invalid" in text and "references avg_basket" in text and "standard_scaler is not applicable" in text
    assert "unknown feature 'tx_amount_7dd'" in text and "fv_tf_demo" in text


def test_project_files_are_untouched():
    repo = Path(__file__).resolve().parent.parent
    assert not (repo / "models" / "feature_views" / "fv_tf_demo.sql").exists()


def test_http_service_serves_transformed_vectors(demo, tmp_path):
    """fs materialize publishes the TD statistics with the view; the service applies them (default: latest TD)."""
    from fastapi.testclient import TestClient

    from fs_cli.online.backends import open_store
    from fs_cli.online.from_warehouse import default_store_url, materialize_project
    from fs_cli.server.app import create_app

    fs, td = demo["fs"], demo["td"]
    store = open_store(default_store_url(fs.project))  # where `fs materialize` / `fs serve` look
    try:
        # published by plain dbt build (no gate run): served on purpose (issue 17.2 withholds it otherwise)
        _, warnings = materialize_project(fs.project, fs.catalog, store=store, allow_unvalidated=True)
        assert not [w for w in warnings if "transformations" in w], warnings
        client = TestClient(create_app(store, api_keys="", log_dir=None))
        raw = client.get(f"/feature-views/{FV}/vector", params={"customer_id": 7, "amount": 42.5, "transformed": "false"})
        assert raw.status_code == 200, raw.text
        got = client.get(f"/feature-views/{FV}/vector", params={"customer_id": 7, "amount": 42.5})
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["training_dataset_version"] == td.version and body["transformed"] is True
        row = {"customer_id": 7, "amount": 42.5, **raw.json()["values"]}
        expected = {k: v for k, v in apply_row(row, td_statistics(td)).items() if k != "customer_id"}
        assert body["values"].keys() == expected.keys()
        for k, v in expected.items():
            assert body["values"][k] == (pytest.approx(v, rel=1e-12) if isinstance(v, float) else v), k
        # the same through the batch endpoint, pinned to the version
        many = client.post(f"/feature-views/{FV}/vectors", json={
            "entities": [{"customer_id": 7}], "request": [{"amount": 42.5}], "training_dataset_version": td.version})
        assert many.status_code == 200 and many.json()["vectors"][0]["values"] == body["values"]
        # clear request errors
        missing = client.get(f"/feature-views/{FV}/vector", params={"customer_id": 7})
        assert missing.status_code == 400 and "request parameter amount is missing" in missing.json()["error"]
        bad = client.get(f"/feature-views/{FV}/vector", params={"customer_id": 7, "amount": 1,
                                                                 "training_dataset_version": 99})
        assert bad.status_code == 400 and "version 99" in bad.json()["error"]
        # a new TD version is servable right away: creating it publishes its statistics to the online store
        td2 = fs.create_training_dataset(FV, split="random:0.5,0.5:3")
        assert not td2.extra.get("warnings")
        client.app.state.reader.refresh()
        v2 = client.get(f"/feature-views/{FV}/vector", params={"customer_id": 7, "amount": 42.5})
        assert v2.json()["training_dataset_version"] == td2.version
        v1 = client.get(f"/feature-views/{FV}/vector", params={"customer_id": 7, "amount": 42.5,
                                                                "training_dataset_version": td.version})
        assert v1.json()["values"] == body["values"] and v2.json()["values"] != body["values"]
    finally:
        store.close()


def test_plain_dbt_batch_scoring_reads_the_td_statistics(demo):
    """A dbt model can score in SQL with a TD's statistics: fs_td_statistics + fs_apply_transformations render
    exactly the SQL fs_cli renders from the same macros (render_select) over the same relation."""
    from fs_cli.transforms import render_select

    fs, td = demo["fs"], demo["td"]
    inline = (f"{{{{ fs_apply_transformations('{td.table}', stats=fs_td_statistics('{FV}', {td.version})) }}}}")
    res = fs.project.dbt(["compile", "--quiet", "--inline", inline])
    assert res.success, res.exception
    rendered = render_select(td.table, td_statistics(td), engine=fs.project.engine)
    assert res.results[0].node.compiled_code.strip() == rendered
    res = fs.project.dbt(["compile", "--quiet", "--inline", "{{ fs_td_statistics('fv_nope') }}"])
    assert not res.success
