"""Feature-view declarations are validated when the catalog loads: each problem names the view, the field and the fix."""

from __future__ import annotations

import copy

import pytest

from fs_cli import FeatureStore
from fs_cli.declarations.feature_views import parse_feature_view as _parse_fv
from fs_cli.declarations.load import load_catalog
from fs_cli.errors import DeclarationError

FV = "fv_fraud_detection"


@pytest.fixture(scope="module")
def catalog(demo_project):
    return FeatureStore(demo_project).catalog


@pytest.fixture
def decl(catalog) -> dict:
    return copy.deepcopy(catalog.fv(FV).spec)


def _problems(catalog, decl) -> list[str]:
    fv, errs = _parse_fv(catalog.manifest.nodes[catalog.fv(FV).unique_id], decl, catalog.feature_groups,
                         catalog.entities, catalog.manifest)
    for e in errs:  # every problem names the view and comes with a fix
        assert FV in e.message and e.fix
    return [f"{e.message} | {e.fix}" for e in errs]


def test_demo_view_parses(catalog):
    fv = catalog.fv(FV)
    assert fv.spine_model == "stg_fraud_labels" and fv.labels == ["is_fraud"] and fv.boundary == "inclusive"
    assert fv.key_columns == ["customer_id", "merchant_id"]
    assert [s.join_keys for s in fv.selections] == [{"customer_id": "customer_id"}] * 2 + [
        {"merchant_id": "merchant_id"}]
    assert fv.selections[0].features == [f.name for f in catalog.fg("fg_customer_transactions").features]
    assert len(fv.feature_columns) == 17


def _edit(decl, path, value):
    *head, last = path
    d = decl
    for k in head:
        d = d[k]
    if value is KeyError:
        del d[last]
    else:
        d[last] = value
    return decl


@pytest.mark.parametrize("path,value,expect", [
    (("features", 0, "feature_group"), "fg_customer_transaction", "features[0].feature_group names unknown feature "
                                                                  "group 'fg_customer_transaction' | did you mean"),
    (("features", 1, "features"), ["segment", "credit_score"], "selects 'credit_score', which feature group"),
    (("features", 1, "features"), ["customer_id"], "key/time column"),
    (("features", 1, "features"), "segment", "features[1].features is 'segment'"),
    (("features", 1, "prefix"), "bad prefix", "features[1].prefix"),
    (("features",), [], "features is missing or empty"),
    (("spine", "timestamp"), KeyError, "spine.timestamp is missing"),
    (("spine", "model"), "stg_fraud_label", "spine.model names 'stg_fraud_label'"),
    (("spine", "entities"), {"shop": "merchant_id"}, "spine.entities.shop is not a declared entity"),
    (("spine", "entities"), {"merchant": {"shop_id": "merchant_id"}}, "spine.entities.merchant is"),
    (("spine", "labels"), ["segment"], "outputs column 'segment' from fg_customer_profile and from the spine"),
    (("spine", "columns"), ["split"], "reserve"),
    (("boundary",), "exclusive", "boundary is 'exclusive'"),
    (("transformations",), {"x": 1}, "transformations is not a list"),
    (("label",), "is_fraud", "feature_view.label is not a known field"),
])
def test_bad_declarations(catalog, decl, path, value, expect):
    problems = _problems(catalog, _edit(decl, path, value))
    assert any(expect in p for p in problems), problems


def test_clash_without_prefix_and_the_prefix_fix(catalog, decl):
    decl["features"].append({"feature_group": "fg_customer_profile", "features": ["segment"]})
    problems = _problems(catalog, decl)
    assert len(problems) == 1 and "outputs column 'segment' from fg_customer_profile" in problems[0]
    assert "prefix" in problems[0].split("|")[1]
    decl["features"][-1]["prefix"] = "profile_"
    assert _problems(catalog, decl) == []


def test_transformations_and_on_demand_pass_through(catalog, decl):
    decl["transformations"] = [{"feature": "credit_limit", "fn": "log1p"}]
    decl["on_demand"] = [{"name": "amount_ratio", "expr": "amount / nullif(tx_avg_amount_30d, 0)"}]
    fv, errs = _parse_fv(catalog.manifest.nodes[catalog.fv(FV).unique_id], decl, catalog.feature_groups,
                         catalog.entities, catalog.manifest)
    assert not errs and fv.transformations == decl["transformations"] and fv.on_demand == decl["on_demand"]
    assert fv.output_columns[-1] == "amount_ratio"


def test_load_catalog_rejects_a_bad_view(demo_project, catalog):
    node = catalog.manifest.nodes[catalog.fv(FV).unique_id]
    saved = node.config.meta
    node.config.meta = copy.deepcopy(saved)
    node.config.meta["fs"]["feature_view"]["features"][0]["feature_group"] = "fg_nope"
    try:
        with pytest.raises(DeclarationError, match="fg_nope"):
            load_catalog(catalog.manifest, demo_project)
    finally:
        node.config.meta = saved
