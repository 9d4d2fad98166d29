"""Provenance on the real pipeline: model -> training dataset -> feature view -> feature-group commits -> dbt nodes,
the reverse impact of a feature group, and batch scoring through the feature view; on every engine (DuckDB: a copy
of the demo's warehouse file; Postgres: the demo's database, shared with the other modules of the session)."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from registry_support import save_model

from demo.train import TRUSTED_TYPES, build_model
from fs_cli import FeatureStore, training
from fs_cli.cli import main
from fs_cli.registry import model_frame

META = {"owner": "risk", "intended_use": "tests"}
FV = "fv_fraud_detection"


@pytest.fixture(scope="module")
def lineage_project(demo_on_engine, tmp_path_factory):
    """A copy of the published demo (two commits per feature group) with two training datasets: one read as of
    the first commits, one of the latest; a model registered on each."""
    engine, demo_project = demo_on_engine
    d = tmp_path_factory.mktemp("lineage") / "proj"
    shutil.copytree(demo_project, d, ignore=shutil.ignore_patterns("models" if engine == "duckdb" else ".fs"))
    if engine == "duckdb":  # the project's models/ (dbt) is needed; only the store's model blobs are left out
        shutil.copytree(demo_project / "models", d / "models")
    fs = FeatureStore(d)
    assert fs.project.engine == engine
    commits = {fg: fs.commits(fg) for fg in ("fg_customer_transactions", "fg_customer_profile",
                                             "fg_merchant_activity")}
    assert all(len(c) == 2 for c in commits.values())
    first = max(c[0].commit_time for c in commits.values())  # every group at its commit 1
    assert first < min(c[1].commit_time for c in commits.values())
    td1 = training.create(fs.project, fs.catalog, FV, as_of=first, split="random:0.8,0.2:1")
    td2 = training.create(fs.project, fs.catalog, FV, split="random:0.8,0.2:1")
    models = {}
    for td in (td1, td2):
        _, table = training.read(fs.project, FV, td.version, split="train")
        train = table.to_pandas()
        feats = [f["name"] for f in td.features]
        path = d / f"model_{td.version}.skops"
        save_model(build_model(model_frame(train, feats), train[td.labels[0]].astype(int)), path)
        models[td.version] = fs.models.register("fraud_model", path, td.ref, meta=META, trusted_types=TRUSTED_TYPES)
    return d, fs, td1, td2, models, commits


def test_lineage_follows_each_version_to_its_commits(lineage_project):
    d, fs, td1, td2, models, commits = lineage_project
    assert (models[td1.version].version, models[td2.version].version) == (1, 2)
    for mv, td, cid in ((models[td1.version], td1, 1), (models[td2.version], td2, 2)):
        lin = fs.models.lineage(mv.ref)
        assert lin["training_dataset"]["version"] == td.version
        assert lin["training_dataset"]["content_hash"] == td.content_hash == lin["training_dataset"][
            "hash_at_registration"]
        assert lin["feature_view"]["name"] == FV and lin["feature_view"]["in_project"]
        got = {c["feature_group"]: c for c in lin["feature_group_commits"]}
        assert set(got) == set(commits)
        for fg, log in commits.items():
            assert got[fg]["commit_id"] == cid, (mv.ref, fg)
            assert got[fg]["rows"] == log[cid - 1].rows and got[fg]["inserted"] == log[cid - 1].inserted
            assert got[fg]["model"] == f"model.feature_store.{fg}" and got[fg]["upstream"]  # its staging + seeds
        names = {n["name"] for n in lin["dbt_nodes"]}
        assert {"stg_fraud_labels", "fg_customer_transactions", "fg_customer_profile",
                "fg_merchant_activity"} <= names
        assert {"fraud_labels", "transactions"} <= set(lin["sources"])
    # the input schema was derived from the training dataset, types included
    schema = {c["name"]: c["type"].lower() for c in models[td2.version].input_schema}
    assert schema["tx_count_1d"] == "bigint" and schema["segment"] in ("varchar", "text")


def test_impact_lists_training_datasets_and_models(lineage_project):
    d, fs, td1, td2, models, _ = lineage_project
    imp = fs.models.impact("fg_customer_profile")
    assert imp["feature_views"] == [FV]
    tds = {t["training_dataset"]: t["commit_ids"] for t in imp["training_datasets"]}
    assert tds[td1.ref] == [1] and tds[td2.ref] == [2]
    with fs.project.warehouse(read_only=True) as wh:
        assert set(tds) == {t.ref for t in training.list_tds(wh, FV)}  # every TD of the view read the group
    assert {m["model"]: m["commit_ids"] for m in imp["models"]} == {"fraud_model:1": [1], "fraud_model:2": [2]}
    res = CliRunner().invoke(main, ["--project-dir", str(d), "impact", "fg_merchant_activity", "--json"])
    assert res.exit_code == 0, res.output
    assert {m["model"] for m in json.loads(res.stdout)["models"]} == {"fraud_model:1", "fraud_model:2"}
    res = CliRunner().invoke(main, ["--project-dir", str(d), "impact", "fg_nope"])
    assert res.exit_code == 2 and "unknown feature group" in res.output
    res = CliRunner().invoke(main, ["--project-dir", str(d), "model", "lineage", "fraud_model:1", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["model"]["version"] == 1
    assert "feature-group commits read" in CliRunner().invoke(
        main, ["--project-dir", str(d), "model", "lineage", "fraud_model:2"]).stdout


def test_batch_scoring_through_the_feature_view_matches_the_training_rows(lineage_project):
    """Features read through the feature view now are those of the latest training dataset, so the scores must
    equal the model's scores on that dataset's rows."""
    d, fs, td1, td2, models, _ = lineage_project
    ref = models[td2.version].ref
    scored = fs.models.score(ref, since=td2.spine_end.replace(hour=0, minute=0, second=0, microsecond=0))
    assert len(scored) > 0 and scored["model"].eq(ref).all()
    _, table = training.read(fs.project, FV, td2.version)
    rows = table.to_pandas().set_index("transaction_id").loc[scored["transaction_id"]]
    want = fs.models.get(ref).predict_proba(rows.reset_index())[:, 1]
    assert scored["score"].to_numpy() == pytest.approx(want, rel=1e-12)


TF_FV = "fv_tf_registry"
TF_YAML = """
version: 2
models:
  - name: fv_tf_registry
    description: Registry test view with model-dependent transformations.
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
                features: [tx_amount_7d, tx_count_7d]
            transformations:
              - {feature: tx_amount_7d, fn: impute, args: {strategy: median}}
              - {feature: tx_amount_7d, fn: standard_scaler}
              - {feature: tx_count_7d, fn: impute, args: {strategy: median}}
              - {feature: amount, fn: log1p}
"""
TF_SQL = """-- depends_on: {{ ref('stg_fraud_labels') }}
-- depends_on: {{ ref('fg_customer_transactions_snapshot') }}
{{ feature_store.fs_feature_view() }}
"""


def test_model_on_transformed_inputs_is_validated_and_scored_through_the_same_transformations(lineage_project):
    """A model fitted on transformed rows: validation and batch scoring apply the TD version's fitted
    transformations (the same SQL), so their scores equal the model's scores on the transformed training set."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    d, _, _, _, _, _ = lineage_project
    (d / "models" / "feature_views" / "_fv_tf_registry.yml").write_text(TF_YAML)
    (d / "models" / "feature_views" / "fv_tf_registry.sql").write_text(TF_SQL)
    fs = FeatureStore(d)
    td = fs.create_training_dataset(TF_FV, split="random:0.8,0.2:3")
    inputs = ["tx_amount_7d", "tx_count_7d", "amount"]  # "amount": a request-time spine column, log1p'd
    train = fs.training_dataset(TF_FV, td.version, split="train", transformed=True)
    model = LogisticRegression(max_iter=500).fit(model_frame(train, inputs), train.is_fraud)
    save_model(model, d / "tf.skops")
    m = fs.models.register("tf_model", d / "tf.skops", td.ref, meta=META, transformed=True)
    assert m.input_transformed and m.input_columns == inputs
    test = fs.training_dataset(TF_FV, td.version, split="test", transformed=True)
    report = fs.models.validate(m.ref)
    want = roc_auc_score(test.is_fraud, model.predict_proba(model_frame(test, inputs))[:, 1])
    assert report.metrics["auc"] == pytest.approx(want, rel=1e-9)
    # OOD perturbs the raw columns, which then flow through the transformations (imputation answers NULLs)
    assert {o["feature"] for o in report.ood} == {"tx_amount_7d", "tx_count_7d", "amount"}
    # amount has no imputation step: a NULL (or a negative value, which log1p turns into NULL) reaches the model
    failed = [(o["kind"], o["feature"]) for o in report.ood if not o["ok"]]
    assert failed == [("nulls", "amount"), ("below_range", "amount")] and not report.passed
    assert all("NaN" in o["error"] for o in report.ood if not o["ok"])
    # the fix: impute inside the model; version 2 answers everything
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(SimpleImputer(strategy="median"), LogisticRegression(max_iter=500)).fit(
        model_frame(train, inputs), train.is_fraud)
    save_model(model, d / "tf2.skops")
    m = fs.models.register("tf_model", d / "tf2.skops", td.ref, meta=META, transformed=True, validate=True)
    assert m.validation["status"] == "passed"
    scored = fs.models.score(m.ref, since=td.spine_end.replace(hour=0, minute=0, second=0, microsecond=0))
    full = fs.training_dataset(TF_FV, td.version, transformed=True).set_index("transaction_id")
    rows = full.loc[scored["transaction_id"]]
    assert scored["score"].to_numpy() == pytest.approx(model.predict_proba(model_frame(rows, inputs))[:, 1],
                                                       rel=1e-9)
