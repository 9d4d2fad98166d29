"""One interpretation of every declaration.

- TTL: fs_cli.timeutil.parse_ttl and the Jinja fs_ttl_seconds accept and reject the same values and agree on seconds.
- Feature views: the resolution fs_cli.metadata makes (FeatureView.resolved()) equals the one the Jinja macro
  fs_resolve_feature_view makes for plain dbt runs, for the demo view and for generated declarations
  (prefixes, spine entity mappings, feature subsets, boundaries, TTLs in every notation).
- Train/serve: a view whose group has `prefix: a_` and whose spine maps `customer: cust` trains on column `a_x`
  joined on `cust`, and serves `a_x` keyed on `cust`, with the values the training data has at the same instant.
"""

from __future__ import annotations

import json
import random
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import drop_demo_models
from hypothesis import given, settings
from hypothesis import strategies as st

from fs_cli import FeatureStore
from fs_cli.errors import FeatureStoreError
from fs_cli.timeutil import parse_ttl


def _compile_inline(fs: FeatureStore, inline: str, vars: dict | None = None) -> tuple[bool, str]:
    """Render `inline` with the project's macros and graph, in-process; (success, compiled text or error)."""
    project = fs.project.with_vars(vars or {}) if vars else fs.project
    messages: list[str] = []
    res = project.dbt(["compile", "--quiet", "--inline", inline], callbacks=[lambda ev: messages.append(ev.info.msg)])
    if not res.success:
        return False, "\n".join([str(res.exception), *messages])
    return True, res.results[0].node.compiled_code


# -- TTL --------------------------------------------------------------------------------------------------------

def _py_seconds(value) -> int | None:
    """Seconds per parse_ttl (0 = unlimited), or None when it rejects the value."""
    try:
        ttl = parse_ttl(value)
    except FeatureStoreError:
        return None
    return int(ttl.total_seconds()) if ttl else 0


_ttl_text = st.builds(
    lambda ws1, n, ws2, unit, ws3: f"{ws1}{n}{ws2}{unit}{ws3}",
    st.sampled_from(["", " ", "\t"]), st.integers(0, 10_000), st.sampled_from(["", " "]),
    st.sampled_from(["", "s", "m", "h", "d", "w"]), st.sampled_from(["", " ", "\n"]),
)


@pytest.fixture(scope="module")
def plain_project(tmp_path_factory):
    from conftest import copy_project

    d = copy_project(tmp_path_factory.mktemp("resolved") / "proj")
    return FeatureStore(d)


@settings(max_examples=1, deadline=None)
@given(values=st.lists(st.one_of(_ttl_text, st.integers(0, 10**7)), min_size=150, max_size=150))
def test_ttl_parsers_agree_on_valid_values(plain_project, values):
    expected = [_py_seconds(v) for v in values]
    assert None not in expected, "the generator makes valid values only"
    ok, out = _compile_inline(
        plain_project,
        "{% set out = [] %}{% for t in var('ttls') %}{% do out.append(feature_store.fs_ttl_seconds(t)) %}"
        "{% endfor %}{{ tojson(out) }}",
        {"ttls": values})
    assert ok, out
    assert json.loads(out) == expected


@pytest.mark.parametrize("value", ["2D", "1.5d", "-1", "2dd", "d", "\u0661d", "1 w x", True, 1.5, -5])
def test_ttl_parsers_reject_the_same_values(plain_project, value):
    assert _py_seconds(value) is None
    ok, out = _compile_inline(plain_project, "{{ feature_store.fs_ttl_seconds(var('ttl')) }}", {"ttl": value})
    assert not ok and "invalid ttl" in out


# -- feature-view resolution ------------------------------------------------------------------------------------

def _jinja_resolutions(fs: FeatureStore, names: list[str]) -> dict:
    inline = (
        "{% set out = {} %}{% for n in var('fvs') %}"
        "{% set node = graph.nodes['model.feature_store.' ~ n] %}"
        "{% do out.update({n: feature_store.fs_resolve_feature_view(n, node.config.meta.fs.feature_view)}) %}"
        "{% endfor %}{{ tojson(out) }}"
    )
    ok, out = _compile_inline(fs, inline, {"fvs": names})
    assert ok, out
    return json.loads(out)


def _generated_views(catalog, seed: int, n: int) -> list[dict]:
    """Random but valid declarations over the demo's feature groups: subsets, prefixes, spine mappings."""
    rng = random.Random(seed)
    fgs = ["fg_customer_transactions", "fg_customer_profile", "fg_merchant_activity"]
    views = []
    for i in range(n):
        chosen = rng.sample(fgs, rng.randint(1, 3))
        feats = []
        for j, fg in enumerate(chosen):
            names = [c.name for c in catalog.fg(fg).features]
            sel = "*" if rng.random() < 0.4 else rng.sample(names, rng.randint(1, len(names)))
            feats.append({"feature_group": fg, "features": sel, "prefix": f"p{j}_" if rng.random() < 0.6 else ""})
        if len({f["prefix"] for f in feats}) < len(feats):  # distinct prefixes keep output names unique
            for j, f in enumerate(feats):
                f["prefix"] = f"p{j}_"
        spine = {"model": "stg_fraud_labels", "timestamp": "transaction_at", "label": "is_fraud",
                 "entities": {"customer": "customer_id", "merchant": "merchant_id"}}
        if rng.random() < 0.5:
            spine["columns"] = ["transaction_id", "amount"]
        views.append({"name": f"fv_gen_{seed}_{i}", "decl": {
            "spine": spine, "features": feats, "boundary": rng.choice(["inclusive", "strict"])}})
    return views


def test_python_and_jinja_resolve_every_view_the_same(tmp_path):
    from conftest import copy_project

    d = copy_project(tmp_path / "proj")
    catalog = FeatureStore(d).catalog
    views = _generated_views(catalog, seed=11, n=6)
    # A TTL in weeks and one in seconds on the demo groups, so both notations go through both resolvers.
    fg_yaml = d / "models" / "feature_groups" / "_feature_groups.yml"
    text = fg_yaml.read_text()
    groups = yaml.safe_load(text)
    ttls = iter(["1w", 7200, "36h"])
    for m in groups["models"]:
        m["config"]["meta"]["fs"]["ttl"] = next(ttls)
    fg_yaml.write_text(yaml.safe_dump(groups, sort_keys=False))
    models = [{"name": v["name"], "description": "generated",
               "config": {"meta": {"fs": {"feature_view": v["decl"]}}}} for v in views]
    (d / "models" / "feature_views" / "_generated.yml").write_text(
        yaml.safe_dump({"version": 2, "models": models}, sort_keys=False))
    for v in views:
        (d / "models" / "feature_views" / f"{v['name']}.sql").write_text("{{ feature_store.fs_feature_view() }}\n")
    fs = FeatureStore(d)
    catalog = fs.catalog
    names = ["fv_fraud_detection", *(v["name"] for v in views)]
    jinja = _jinja_resolutions(fs, names)
    for name in names:
        assert jinja[name] == catalog.fv(name).resolved(), name
    ttl_seconds = {g["name"]: g["ttl_seconds"] for g in jinja["fv_fraud_detection"]["feature_groups"]}
    assert sorted(ttl_seconds.values()) == [7200, 36 * 3600, 7 * 86400]


# -- train/serve: the same names and keys ------------------------------------------------------------------------

SKEW_MODELS = {
    "models/feature_groups/fg_a.sql": """
        select cast(customer_id as bigint) as customer_id, cast(event_time as timestamp) as event_time,
               cast(x as {{ dbt.type_float() }}) as x
        from {{ ref('skew_fg_rows') }}
    """,
    "models/feature_groups/_fg_a.yml": """
        version: 2
        models:
          - name: fg_a
            description: A group whose features get a prefix in the view.
            config: {meta: {fs: {entities: [customer], event_time: event_time, online: true, ttl: 0,
                                 owner: tests, policy: warn}}}
            columns:
              - {name: customer_id, data_type: bigint, description: key}
              - {name: event_time, data_type: timestamp, description: when}
              - {name: x, data_type: double, description: a feature}
    """,
    "snapshots/fg_a.yml": """
        snapshots:
          - name: fg_a_snapshot
            relation: ref('fg_a')
            config: {unique_key: [customer_id, event_time], strategy: check, check_cols: all,
                     hard_deletes: new_record}
    """,
    "models/staging/skew_spine.sql": """
        select cast(cust as bigint) as cust, cast(ts as timestamp) as ts, cast(label as integer) as label
        from {{ ref('skew_spine_rows') }}
    """,
    "models/feature_views/_fv_skew.yml": """
        version: 2
        models:
          - name: fv_skew
            description: prefix + spine entity mapping.
            config:
              meta:
                fs:
                  feature_view:
                    spine: {model: skew_spine, timestamp: ts, entities: {customer: cust}, label: label}
                    features: [{feature_group: fg_a, features: [x], prefix: a_}]
    """,
    "models/feature_views/fv_skew.sql": "{{ feature_store.fs_feature_view() }}\n",
    "seeds/skew_fg_rows.csv": "customer_id,event_time,x\n1,2026-01-01 00:00:00,1.5\n1,2026-01-03 00:00:00,2.5\n"
                              "2,2026-01-02 00:00:00,7.0\n",
    "seeds/skew_spine_rows.csv": "cust,ts,label\n1,2030-01-01 00:00:00,1\n2,2030-01-01 00:00:00,0\n"
                                 "3,2030-01-01 00:00:00,0\n",
}


@pytest.fixture
def skew_project(project_copy) -> Path:
    d = project_copy("skew", with_seeds=False)
    drop_demo_models(d)
    for rel, text in SKEW_MODELS.items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(textwrap.dedent(text).lstrip())
    return d


def test_prefix_and_spine_mapping_are_the_same_online_and_offline(skew_project, tmp_path, monkeypatch):
    from fs_cli.online.backends import open_store
    from fs_cli.online.reader import OnlineReader

    url = f"sqlite:///{tmp_path / 'online.sqlite'}"
    monkeypatch.setenv("FS_ONLINE_STORE", url)
    fs = FeatureStore(skew_project)
    report = fs.run()
    assert report.ok, report.to_dict()
    fs.create_training_dataset("fv_skew")
    td = fs.training_dataset("fv_skew")
    assert {"cust", "ts", "label", "a_x"} <= set(td.columns) and "x" not in td.columns
    offline = {int(r.cust): (None if r.a_x != r.a_x else float(r.a_x)) for r in td.itertuples()}
    assert offline == {1: 2.5, 2: 7.0, 3: None}

    reader = OnlineReader(open_store(url))
    answer = reader.vectors("fv_skew", [{"cust": 1}, {"cust": 2}, {"cust": 3}])
    online = {v["entity"]["cust"]: v["values"]["a_x"] for v in answer["vectors"]}
    assert online == offline
    assert all(set(v["values"]) == {"a_x"} for v in answer["vectors"])
    with pytest.raises(FeatureStoreError, match="unknown entity key 'customer_id'"):
        reader.vectors("fv_skew", [{"customer_id": 1}])
