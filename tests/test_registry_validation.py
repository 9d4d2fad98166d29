"""Model validation: metrics and per-slice metrics checked against numpy, OOD robustness, threshold gates; the
module's project runs on every engine (the tests that make their own small project stay on DuckDB)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from conftest import ENGINES
from registry_support import (
    crafted_frame,
    engine_database,
    load_model,
    registry_project,
    save_model,
    train_pipeline,
    write_td,
)

from fs_cli import FeatureStore
from fs_cli.errors import FeatureStoreError
from fs_cli.registry import model_frame


# -- numpy oracles ------------------------------------------------------------------------------------------------
def np_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos * n_neg), with average ranks for ties."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    s = score[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def np_metrics(y: np.ndarray, pred: np.ndarray, p1: np.ndarray) -> dict[str, float | None]:
    tp = np.sum((pred == 1) & (y == 1))
    fp = np.sum((pred == 1) & (y == 0))
    fn = np.sum((pred == 0) & (y == 1))
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0
    p = np.clip(p1, 1e-15, 1 - 1e-15)
    return {
        "accuracy": float(np.mean(pred == y)),
        "f1": float(f1),
        "auc": np_auc(y, p1) if 0 < y.sum() < len(y) else None,
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
    }


@pytest.fixture(scope="module", params=ENGINES)
def setup(request, tmp_path_factory):
    with engine_database(request.param) as db:
        yield _setup(tmp_path_factory, request.param, db)


def _setup(tmp_path_factory, engine: str, db: str | None):
    base = tmp_path_factory.mktemp("val")
    d = registry_project(base / "proj", engine, db)
    df = crafted_frame(n=600, seed=3)
    df.loc[df.row_id % 17 == 0, "segment"] = None  # NULL is a slice of its own
    write_td(d, df)
    write_td(d, df, fv="fv_reg", label="target")
    arts = {"good": train_pipeline(df, base / "good.skops"),
            "fragile": train_pipeline(df, base / "fragile.skops", robust=False),
            "reg": train_pipeline(df, base / "reg.skops", label="target")}
    # a pipeline that imputes numbers but refuses unseen categories
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    strict = Pipeline([("pre", ColumnTransformer([
        ("num", SimpleImputer(), ["x1", "x2"]),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                              OneHotEncoder(handle_unknown="error")), ["cat"])])), ("est", LogisticRegression())])
    train = df[df.split == "train"]
    strict.fit(model_frame(train, ["x1", "x2", "cat"]), train.is_fraud)
    save_model(strict, base / "strict.skops")
    arts["strict"] = base / "strict.skops"
    return d, df, arts


def test_slice_metrics_match_numpy(setup):
    d, df, arts = setup
    fs = FeatureStore(d, vars={"fs_model_min_slice_rows": 8})
    m = fs.models.register("clf", arts["good"], "fv_test:1")
    r = fs.models.validate(m.ref, slices=["segment"])
    test = df[df.split == "test"].reset_index(drop=True)
    est = load_model(arts["good"])
    X = model_frame(test, ["x1", "x2", "cat"])
    y, pred, p1 = test.is_fraud.to_numpy(), est.predict(X), est.predict_proba(X)[:, 1]
    want = np_metrics(y, pred, p1)
    assert r.n_test == len(test)
    for k, v in want.items():
        assert r.metrics[k] == pytest.approx(v, rel=1e-9, abs=1e-12), k
    seg = test.segment.fillna("(null)").to_numpy()
    got = {s["slice"]: s for s in r.slices if s["column"] == "segment"}
    assert set(got) == set(seg) and "(null)" in got
    per = {}
    for k in set(seg):
        mask = seg == k
        per[k] = np_metrics(y[mask], pred[mask], p1[mask])
        assert got[k]["n"] == mask.sum() and got[k]["counted"] == (mask.sum() >= 8)
        for metric, v in per[k].items():
            if v is None:
                assert got[k][metric] is None
            else:
                assert got[k][metric] == pytest.approx(v, rel=1e-9, abs=1e-12), (k, metric)
    counted = [k for k in per if (seg == k).sum() >= 8]
    assert len(counted) < len(per)  # the tiny slice is reported but kept out of worst/gap
    for metric, higher_better in [("accuracy", True), ("auc", True), ("f1", True), ("log_loss", False)]:
        vals = {k: per[k][metric] for k in counted if per[k][metric] is not None}
        worst = min(vals, key=vals.get) if higher_better else max(vals, key=vals.get)
        assert r.metrics[f"worst_slice.{metric}"] == pytest.approx(vals[worst], rel=1e-9)
        assert r.metrics[f"worst_slice.{metric}.where"] == f"segment={worst}"
        assert r.metrics[f"slice_gap.{metric}"] == pytest.approx(max(vals.values()) - min(vals.values()), rel=1e-9)
    # numeric slice column: quartile bins covering every row
    r2 = fs.models.validate(m.ref, slices=["x2"])
    bins = [s for s in r2.slices if s["column"] == "x2"]
    assert len(bins) == 4 and sum(b["n"] for b in bins) == len(test)
    # the report is stored with the version and queryable
    with fs.project.warehouse(read_only=True) as wh:
        rows = wh.fetchall("select validation_id, status, metrics, slices "
                           "from fs_meta.model_validations where name = 'clf' order by 1")
    assert rows[0][:2] == (1, "passed") and json.loads(rows[0][2])["accuracy"] == pytest.approx(want["accuracy"])
    assert len(json.loads(rows[0][3])) == len(got) and len(rows) == 2


def test_regression_metrics_match_numpy(setup):
    d, df, arts = setup
    fs = FeatureStore(d)
    m = fs.models.register("reg", arts["reg"], "fv_reg:1")
    assert m.task == "regression" and m.output_schema["prediction"]["type"] == "double"
    r = fs.models.validate(m.ref)
    test = df[df.split == "test"]
    pred = load_model(arts["reg"]).predict(model_frame(test, ["x1", "x2", "cat"]))
    err = test.target.to_numpy() - pred
    assert r.metrics["rmse"] == pytest.approx(np.sqrt(np.mean(err ** 2)), rel=1e-9)
    assert r.metrics["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-9)
    ss_tot = np.sum((test.target - test.target.mean()) ** 2)
    assert r.metrics["r2"] == pytest.approx(1 - np.sum(err ** 2) / ss_tot, rel=1e-9)
    assert r.passed


def test_ood_catches_a_model_that_crashes_on_nulls(setup):
    d, df, arts = setup
    reg = FeatureStore(d).models
    fragile = reg.register("fragile", arts["fragile"], "fv_test:1")
    # on ordinary test rows it works: only the robustness check exposes it
    assert len(reg.get(fragile.ref).predict(df[df.split == "test"])) == (df.split == "test").sum()
    r = reg.validate(fragile.ref)
    assert not r.passed
    nulls = [o for o in r.ood if o["kind"] == "nulls"]
    assert {o["feature"] for o in nulls} == {"x1", "x2", "cat"} and not any(o["ok"] for o in nulls)
    assert any("NaN" in o["error"] for o in nulls)
    assert r.metrics["ood.failures"] == 3
    gate = [c for c in r.checks if c["metric"] == "ood.failures"]
    assert gate and not gate[0]["passed"]
    # unseen categories crash the strict encoder (a NULL imputed as "missing" is unseen too: training had none);
    # the numeric features are imputed and answer
    s = reg.validate(reg.register("strict", arts["strict"], "fv_test:1").ref)
    failed = [(o["kind"], o["feature"]) for o in s.ood if not o["ok"]]
    assert failed == [("nulls", "cat"), ("unseen_category", "cat")] and not s.passed
    assert "unknown categories" in s.ood[-1]["error"]
    # the robust pipeline answers everything; values were pushed beyond the training range
    g = reg.validate(reg.register("robust", arts["good"], "fv_test:1").ref)
    assert g.passed and all(o["ok"] for o in g.ood)
    train = df[df.split == "train"]
    above = {o["feature"]: o["value"] for o in g.ood if o["kind"] == "above_range"}
    below = {o["feature"]: o["value"] for o in g.ood if o["kind"] == "below_range"}
    assert set(above) == {"x1", "x2"} and all(above[f] > train[f].max() and below[f] < train[f].min() for f in above)
    assert all(0 <= o["changed_fraction"] <= 1 for o in g.ood)
    assert g.metrics["ood.max_changed_fraction"] == max(o["changed_fraction"] for o in g.ood)


def test_thresholds_gate_validation(setup, tmp_path):
    d, df, arts = setup
    p = registry_project(tmp_path / "p")
    write_td(p, df)
    cfg = yaml.safe_load((p / "dbt_project.yml").read_text())
    cfg["vars"]["fs_model_thresholds"] = {
        "strict_bar": {"auc": {"min": 0.99}, "log_loss": {"max": 5}},
        "fair_bar": {"auc": {"min": 0.55}, "slice_gap.accuracy": {"max": 1.0}, "rmse": {"max": 1}},
        "lenient": {"auc": {"min": 0.5}, "ood.failures": {"max": 10}},
    }
    (p / "dbt_project.yml").write_text(yaml.safe_dump(cfg))
    reg = FeatureStore(p).models
    r = reg.validate(reg.register("strict_bar", arts["good"], "fv_test:1").ref)
    assert not r.passed
    by = {c["metric"]: c for c in r.checks}
    assert not by["auc"]["passed"] and by["auc"]["threshold"] == 0.99 and by["log_loss"]["passed"]
    r = reg.validate(reg.register("fair_bar", arts["good"], "fv_test:1", slices=["segment"]).ref)
    by = {c["metric"]: c for c in r.checks}
    assert by["auc"]["passed"] and by["slice_gap.accuracy"]["passed"]
    assert not by["rmse"]["passed"] and "not computed" in by["rmse"]["note"]  # a classifier has no RMSE
    # a project may relax the built-in OOD gate for a model explicitly
    assert reg.validate(reg.register("lenient", arts["fragile"], "fv_test:1").ref).passed
    stored = reg.validations("strict_bar:1")
    assert stored[0]["status"] == "failed" and json.dumps(stored[0]["checks"])
    cfg["vars"]["fs_model_thresholds"] = {"x": {"auc": 0.6}}
    (p / "dbt_project.yml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(FeatureStoreError, match="fs_model_thresholds.x.auc"):
        reg.validate("strict_bar:1")


def test_unknown_slice_column_is_a_clear_error(setup):
    d, _, arts = setup
    reg = FeatureStore(d).models
    m = reg.register("clf_slices", arts["good"], "fv_test:1")
    with pytest.raises(FeatureStoreError, match="slice column\\(s\\) nope") as e:
        reg.validate(m.ref, slices=["nope"])
    assert "segment" in e.value.fix


def test_validation_needs_a_held_out_split(setup, tmp_path):
    _, df, arts = setup
    p = registry_project(tmp_path / "p")
    write_td(p, df.assign(split="train"), fv="fv_all_train")
    reg = FeatureStore(p).models
    m = reg.register("clf", arts["good"], "fv_all_train:1")
    with pytest.raises(FeatureStoreError, match="no rows in split 'test'") as e:
        reg.validate(m.ref)
    assert "--split random" in e.value.fix
    with pytest.raises(FeatureStoreError, match="not been validated"):
        reg.alias("clf", 1, "champion")


def test_multiclass_metrics(setup, tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    _, df, _ = setup
    p = registry_project(tmp_path / "p")
    df = df.assign(tier=np.select([df.x1 < -0.5, df.x1 < 0.5], ["low", "mid"], "high"))
    write_td(p, df, fv="fv_multi", label="tier")
    train, test = df[df.split == "train"], df[df.split == "test"]
    model = LogisticRegression(max_iter=500).fit(train[["x1", "x2"]], train.tier)
    save_model(model, tmp_path / "multi.skops")
    reg = FeatureStore(p).models
    m = reg.register("tiers", tmp_path / "multi.skops", "fv_multi:1")
    assert m.output_schema["classes"] == ["high", "low", "mid"]
    r = reg.validate(m.ref)
    pred = model.predict(test[["x1", "x2"]])
    y = test.tier.to_numpy()
    f1s = []
    for c in ["high", "low", "mid"]:
        tp, fp, fn = np.sum((pred == c) & (y == c)), np.sum((pred == c) & (y != c)), np.sum((pred != c) & (y == c))
        f1s.append(2 * tp / (2 * tp + fp + fn))
    assert r.metrics["accuracy"] == pytest.approx(np.mean(pred == y), rel=1e-12)
    assert r.metrics["f1"] == pytest.approx(np.mean(f1s), rel=1e-9)
    assert r.metrics["auc"] == pytest.approx(
        roc_auc_score(y, model.predict_proba(test[["x1", "x2"]]), multi_class="ovr"), rel=1e-9)
    # a bare LogisticRegression cannot answer NULLs: the only failures
    assert sorted((o["kind"], o["feature"]) for o in r.ood if not o["ok"]) == [("nulls", "x1"), ("nulls", "x2")]
