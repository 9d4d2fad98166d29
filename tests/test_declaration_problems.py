"""The one problem collector (fs_cli.errors.Problems): every problem of a declaration is reported, together, in one
DeclarationError, wherever the declaration is checked (feature groups, feature views, expectations, transformations,
on-demand features). Fast: no dbt, no warehouse (declarations are built from small stand-ins of manifest nodes)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fs_cli.declarations.entities import load_entities
from fs_cli.declarations.feature_groups import parse_feature_group
from fs_cli.declarations.model import Column, Entity, FeatureGroup
from fs_cli.errors import DeclarationError, FeatureStoreError, Problems
from fs_cli.transforms.ondemand import parse_on_demand
from fs_cli.transforms.spec import parse_transformations
from fs_cli.validation.expectations import parse_expectations


def test_located_problems_are_raised_together_in_order():
    problems = Problems("model fg_x (models/x.yml)", field_prefix="config.meta.fs.")
    problems.add("is 'maybe'", fix="use strict or warn", field="policy")
    problems.within("feature view fv_y (models/y.yml)", field_prefix="").add("has no spine", fix="declare one")
    problems.add("no columns declared")
    assert len(problems) == 3 and problems.on_field("policy") and not problems.on_field("online")
    with pytest.raises(DeclarationError) as e:
        problems.raise_if_any()
    assert [(p.message, p.fix) for p in e.value.problems] == [
        ("model fg_x (models/x.yml): config.meta.fs.policy is 'maybe'", "use strict or warn"),
        ("feature view fv_y (models/y.yml): has no spine", "declare one"),
        ("model fg_x (models/x.yml): no columns declared", None),
    ]
    assert str(e.value) == (
        "3 invalid feature-store declaration(s):\n"
        "- model fg_x (models/x.yml): config.meta.fs.policy is 'maybe'\n    fix: use strict or warn\n"
        "- feature view fv_y (models/y.yml): has no spine\n    fix: declare one\n"
        "- model fg_x (models/x.yml): no columns declared")


def test_no_problem_raises_nothing_and_a_collected_error_keeps_its_text():
    problems = Problems("somewhere")
    problems.raise_if_any()  # nothing collected
    with problems.collecting():
        raise FeatureStoreError("ttl: 'forever' is not a duration", fix="use e.g. '2d'")
    with problems.collecting():  # a DeclarationError contributes each of its problems, not one summary
        raise DeclarationError([FeatureStoreError("a", fix="fa"), FeatureStoreError("b")])
    with problems.collecting():
        pass
    assert [(p.message, p.fix) for p in problems] == [
        ("ttl: 'forever' is not a duration", "use e.g. '2d'"), ("a", "fa"), ("b", None)]
    with pytest.raises(ValueError), problems.collecting():  # not a user's problem: not collected
        raise ValueError("a bug")
    assert len(problems) == 3


def _fg_node(columns: dict[str, str | None]) -> SimpleNamespace:
    cols = {n: SimpleNamespace(name=n, data_type=t, description="", meta={}, config=None) for n, t in columns.items()}
    return SimpleNamespace(
        name="fg_x", version=None, patch_path="p://models/feature_groups/x.yml", original_file_path="models/x.sql",
        columns=cols, unique_id="model.p.fg_x", relation_name='"db"."main"."fg_x"', schema="main", alias="fg_x",
        description="", depends_on=SimpleNamespace(nodes=[]), tags=[], config=SimpleNamespace(materialized="table"))


def test_a_feature_group_with_two_problems_reports_both_in_one_error():
    node = _fg_node({"customer_id": "bigint", "feature_time": "timestamp", "amount": None})
    meta = {"entities": ["customer"], "event_time": "feature_time", "policy": "maybe", "online": "yes"}
    fg, errs = parse_feature_group(node, meta, {"customer": Entity("customer", ["customer_id"])}, snapshot=None)
    where = "model fg_x (models/feature_groups/x.yml)"
    assert fg is not None and fg.key_columns == ["customer_id", "feature_time"]
    assert [e.message for e in errs] == [
        f"{where}: column amount has no data_type",
        f"{where}: config.meta.fs.policy is 'maybe'",
        f"{where}: config.meta.fs.online is 'yes', not true/false",
        f"{where}: no snapshot publishes this feature group",
    ]
    # the snapshot's fix names the real key, since the key fields are valid
    assert "unique_key: ['customer_id', 'feature_time']" in errs[-1].fix


def test_a_typo_in_a_key_field_is_reported_on_its_field_not_in_the_snapshot_fix():
    node = _fg_node({"customer_id": "bigint", "feature_time": "timestamp"})
    fg, errs = parse_feature_group(node, {"entities": ["customer"], "event_time": "feature_tme"},
                                   {"customer": Entity("customer", ["customer_id"])}, snapshot=None)
    assert [e.message.split(": ", 1)[1] for e in errs] == [
        "config.meta.fs.event_time names column 'feature_tme', which the model does not declare",
        "no snapshot publishes this feature group"]
    assert errs[0].fix.startswith("did you mean feature_time? ")
    assert "[<primary key columns>, <event_time column>]" in errs[1].fix


def test_two_bad_entities_are_reported_in_one_error(tmp_path):
    (tmp_path / "dbt_project.yml").write_text("vars:\n  fs_entities:\n    customer: {join_keys: [customer_id]}\n")
    with pytest.raises(DeclarationError) as e:
        load_entities(tmp_path, {"fs_entities": {"shop": {}, "user": {"join_keys": ["1d"]}}})
    assert [p.message for p in e.value.problems] == [
        "dbt_project.yml vars.fs_entities.shop: join_keys missing or not column names",
        "dbt_project.yml vars.fs_entities.user: join_keys missing or not column names"]


def test_two_bad_expectations_are_reported_in_one_error():
    cols = [Column("customer_id", "bigint"), Column("ts", "timestamp"),
            Column("amount", "double", meta={"fs": {"range": [5, 1], "drift": {"psx": 1}}})]
    fg = FeatureGroup(name="fg", model="fg", version=None, unique_id="model.p.fg", relation='"fg"', schema="main",
                      identifier="fg", entities=["customer"], primary_key=["customer_id"], event_time="ts",
                      created_time=None, online=False, ttl=None, owner="", tags=[], description="", policy="strict",
                      columns=cols, meta={"expectations": {"min_rows": -1}}, path="models/fg.sql", depends_on=[],
                      snapshot_name="fg_snapshot")
    with pytest.raises(DeclarationError) as e:
        parse_expectations(fg)
    assert [p.message for p in e.value.problems] == [
        "model fg (models/fg.sql): column amount config.meta.fs.range has min 5 > max 1",
        "model fg (models/fg.sql): column amount config.meta.fs.drift.psx is not a drift statistic",
        "model fg (models/fg.sql): config.meta.fs.expectations.min_rows = -1",
    ]


def test_two_bad_transformations_and_on_demand_features_are_reported_in_one_error_each():
    with pytest.raises(DeclarationError) as e:
        parse_transformations([{"feature": "amount", "fn": "clip"}, {"feature": "amont", "fn": "log1p"}],
                              {"amount": "double"}, where="t")
    assert [p.message for p in e.value.problems] == [
        "t[0] (amount: clip): clip needs min and/or max", "t[1] (amont: log1p): unknown feature 'amont'"]
    with pytest.raises(DeclarationError) as e:
        parse_on_demand([{"name": "r", "expr": "amount / avg", "inputs": ["amount"]}, {"expr": "1"}],
                        {"amount": "double"}, where="od")
    assert [p.message for p in e.value.problems] == [
        "od[0] (r): expression references avg, not declared in its inputs ['amount']",
        "od[1] (None): name None is not a plain column name"]
