"""`fs plan --state`: the project against a deployed manifest (issue 16, item 7).

"Production" is a copy of the built demo (`demo_project`: published groups, training dataset fv_fraud_detection:1)
with a model registered on that training dataset and aliased `production`, and the online store materialized (so
fv_fraud_detection is a served view). Its target/manifest.json is saved as the deployed state; each case edits the
YAML of the copy, plans against the saved manifest, and puts the YAML back.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import joblib
import pytest
from click.testing import CliRunner

from fs_cli import FeatureStore
from fs_cli.cli import main

FV = "fv_fraud_detection"
MODEL = "fraud_plan"
MODEL_INPUTS = ["tx_amount_1d", "credit_limit"]  # fg_customer_transactions.tx_amount_1d, fg_customer_profile.credit_limit
FG_YML = Path("models/feature_groups/_feature_groups.yml")
SNAP_YML = Path("snapshots/feature_groups.yml")


@pytest.fixture(scope="module")
def prod(demo_project: Path, tmp_path_factory) -> tuple[Path, Path]:
    """(project copy, state folder holding its deployed manifest.json)."""
    from sklearn.tree import DecisionTreeClassifier

    root = tmp_path_factory.mktemp("plan")
    d = shutil.copytree(demo_project, root / "proj")
    state = root / "prod-manifest"
    state.mkdir()
    shutil.copy(d / "target" / "manifest.json", state / "manifest.json")

    fs = FeatureStore(d)
    train = fs.training_dataset(FV, version=1, split="train")
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(train[MODEL_INPUTS], train["is_fraud"].astype(int))
    joblib.dump(model, d / "model.joblib")
    fs.models.register(MODEL, d / "model.joblib", f"{FV}:1", meta={"owner": "t", "intended_use": "test"},
                       trust_pickle=True)
    fs.models.alias(MODEL, 1, "production", force=True)  # validation is not what is tested
    fs.materialize(end="2026-01-20 00:00:00")  # publishes the served views
    return d, state


def plan(d: Path, *args: str):
    return CliRunner().invoke(main, ["--project-dir", str(d), "plan", *args], catch_exceptions=False)


def said(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


@contextmanager
def edited(d: Path, path: Path, old: str, new: str, count: int = 1) -> Iterator[None]:
    """`old` replaced by `new` in the copy's `path` while the block runs."""
    f = d / path
    text = f.read_text()
    assert text.count(old) >= count, (path, old)
    f.write_text(text.replace(old, new, count))
    try:
        yield
    finally:
        f.write_text(text)


def test_the_setup_serves_the_view_and_aliases_the_model(prod):
    d, _ = prod
    fs = FeatureStore(d)
    m = fs.models.info(f"{MODEL}@production")
    assert m.input_columns == MODEL_INPUTS and m.aliases == ["production"]
    from fs_cli.online.backends import open_store

    with open_store(fs.online_store_url()) as store:
        assert "fg_merchant_activity:merchant_online_share_7d" in store.views()[FV].features


def test_no_change_exits_0(prod):
    d, state = prod
    r = plan(d, "--state", str(state), "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["changes"] == [] and out["breaking"] is False
    assert out["summary"] == {"added": 0, "changed": 0, "removed": 0, "breaking": 0}
    sdk = FeatureStore(d).plan(state)  # the SDK's answer is the command's
    assert sdk.exit_code == 0 and sdk.to_dict() == out


NEW_FG_SQL = "select customer_id, profile_updated_at as feature_time, credit_limit * 2 as double_limit " \
             "from {{ ref('fg_customer_profile') }}\n"
NEW_FG_YML = """
  - name: fg_customer_limits
    description: Twice the credit limit.
    config: {meta: {fs: {entities: [customer], event_time: feature_time, ttl: null, owner: a@example.com}}}
    columns:
      - {name: customer_id, data_type: bigint, description: The card holder.}
      - {name: feature_time, data_type: timestamp, description: When.}
      - {name: double_limit, data_type: double, description: Twice the limit.}
"""
NEW_SNAPSHOT = """
  - name: fg_customer_limits_snapshot
    relation: ref('fg_customer_limits')
    config:
      unique_key: [customer_id, feature_time]
"""
NEW_FEATURE = """      - name: tenure_days
        data_type: integer
        description: Days since sign-up when the version took effect.
        config: {meta: {fs: {range: [0, null]}}}
      - name: tenure_years
        data_type: double
        description: Years since sign-up.
"""


def test_added_group_and_feature_are_listed_and_exit_0(prod):
    d, state = prod
    sql = d / "models" / "feature_groups" / "fg_customer_limits.sql"
    fg_yml, snap_yml = (d / FG_YML).read_text(), (d / SNAP_YML).read_text()
    tenure = NEW_FEATURE.split("      - name: tenure_years")[0]
    try:
        sql.write_text(NEW_FG_SQL)
        (d / FG_YML).write_text(fg_yml.replace(tenure, NEW_FEATURE) + NEW_FG_YML)
        (d / SNAP_YML).write_text(snap_yml + NEW_SNAPSHOT)
        r = plan(d, "--state", str(state), "--json")
    finally:
        sql.unlink()
        (d / FG_YML).write_text(fg_yml)
        (d / SNAP_YML).write_text(snap_yml)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    got = {(c["kind"], c["name"], c["change"]) for c in out["changes"]}
    assert got == {("feature_group", "fg_customer_limits", "added"),
                   ("feature", "fg_customer_profile.tenure_years", "added")}, out["changes"]
    added = next(c for c in out["changes"] if c["name"] == "fg_customer_profile.tenure_years")
    assert added["detail"] == "type double" and added["breaking"] == []
    assert out["summary"] == {"added": 2, "changed": 0, "removed": 0, "breaking": 0}


def test_removing_a_feature_an_aliased_model_uses_exits_1_naming_model_and_alias(prod):
    d, state = prod
    dropped = """      - name: tx_amount_1d
        data_type: double
        description: Amount spent on the day.
        config: {meta: {fs: {range: [0, null]}}}
"""
    with edited(d, FG_YML, dropped, ""):
        r = plan(d, "--state", str(state))
        rj = plan(d, "--state", str(state), "--json")
    assert r.exit_code == 1, r.output
    assert "fg_customer_transactions.tx_amount_1d" in r.stdout and "BREAKING" in r.stdout
    breaking = [ln for ln in r.stdout.splitlines() if ln.startswith("breaking:")]
    assert any(f"{MODEL}:1 @production" in ln and "tx_amount_1d" in ln for ln in breaking), r.stdout

    assert rj.exit_code == 1
    out = json.loads(rj.stdout)
    feat = next(c for c in out["changes"] if c["name"] == "fg_customer_transactions.tx_amount_1d")
    assert feat["change"] == "removed" and feat["models"] == [f"{MODEL}:1 @production"]
    assert feat["training_datasets"] == [f"{FV}:1"] and feat["served_views"] == [FV]
    assert f"model {MODEL}:1 @production uses it as input tx_amount_1d" in " ".join(feat["breaking"])
    # the view loses that output column, which the model takes and the served view serves
    view = next(c for c in out["changes"] if c["name"] == FV)
    assert view["change"] == "changed" and "columns dropped: tx_amount_1d" in view["detail"]
    assert view["breaking"] and view["models"] == [f"{MODEL}:1 @production"]
    assert {c["name"] for c in out["changes"]} == {feat["name"], FV}


def test_retyping_a_feature_a_served_view_serves_exits_1(prod):
    d, state = prod
    old = """      - name: merchant_online_share_7d
        data_type: double"""
    with edited(d, FG_YML, old, old.replace("double", "varchar")):
        r = plan(d, "--state", str(state), "--json")
    assert r.exit_code == 1, r.output
    out = json.loads(r.stdout)
    assert [(c["name"], c["change"], c["detail"]) for c in out["changes"]] == [
        ("fg_merchant_activity.merchant_online_share_7d", "changed", "type double -> varchar")]
    (c,) = out["changes"]
    assert c["served_views"] == [FV] and c["models"] == []  # the model does not take it
    assert c["breaking"] == ["fg_merchant_activity.merchant_online_share_7d is retyped (double -> varchar) and "
                             f"served view {FV} serves it"]


def test_changing_a_published_groups_key_exits_1(prod):
    """event_time moves to another column (the snapshot's unique_key follows, so the declaration is valid): the
    published snapshot's key changes in place."""
    d, state = prod
    new_col = """      - name: window_end
        data_type: timestamp
        description: End of the window.
      - name: merchant_tx_count_7d"""
    with edited(d, FG_YML, "          ttl: 7d\n", "          ttl: 7d\n          event_time: window_end\n"), \
            edited(d, FG_YML, "          entities: [merchant]\n          event_time: feature_time\n",
                   "          entities: [merchant]\n"), \
            edited(d, FG_YML, "      - name: merchant_tx_count_7d", new_col), \
            edited(d, SNAP_YML, "unique_key: [merchant_id, feature_time]", "unique_key: [merchant_id, window_end]"):
        r = plan(d, "--state", str(state), "--json")
    assert r.exit_code == 1, r.output
    out = json.loads(r.stdout)
    fg = next(c for c in out["changes"] if c["name"] == "fg_merchant_activity")
    assert fg["change"] == "changed" and "event_time: feature_time -> window_end" in fg["detail"]
    assert len(fg["breaking"]) == 1 and "key of published feature group fg_merchant_activity" in fg["breaking"][0]
    assert fg["feature_views"] == [FV] and fg["training_datasets"] == [f"{FV}:1"] and fg["served_views"] == [FV]
    # feature_time is no longer part of the key: it now reads as a feature; nothing that used it is broken
    assert {c["name"] for c in out["changes"] if c["breaking"]} == {"fg_merchant_activity"}


@pytest.mark.parametrize("args, says", [
    ([], "needs the deployed manifest"),
    (["--state", "no-such-dir"], "no such file or folder"),
])
def test_missing_state_exits_2_with_a_clear_message(prod, args, says):
    d, _ = prod
    r = plan(d, *args)
    assert r.exit_code == 2, r.output
    assert says in said(r.stderr) and "fix:" in r.stderr and "--state" in r.stderr


def test_a_folder_without_a_manifest_or_a_non_manifest_exits_2(prod, tmp_path):
    d, _ = prod
    r = plan(d, "--state", str(tmp_path))
    assert r.exit_code == 2 and "holds no manifest.json" in said(r.stderr)
    (tmp_path / "manifest.json").write_text('{"nodes": {}}')
    r = plan(d, "--state", str(tmp_path / "manifest.json"))
    assert r.exit_code == 2 and "is not a dbt manifest" in said(r.stderr)
