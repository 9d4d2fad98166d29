"""A feature view's SQL is compiled by dbt once per project state; later training datasets reuse it (issue 18).

The oracle is dbt itself: the SQL a cached compile returns for a read time must equal what `dbt compile` makes with
that read time, and an edited declaration must never be answered from the cache.
"""

from __future__ import annotations

from datetime import datetime

from fs_cli import FeatureStore, manifest_cache
from fs_cli.project import Project
from fs_cli.training import _dbt_compile, compile_feature_view

FV = "fv_fraud_detection"
T1 = datetime(2026, 1, 20, 8, 30, 5, 123456)
T2 = datetime(2026, 1, 21)


def _direct(fs: FeatureStore, read_at: datetime | None) -> str:
    fv = fs.catalog.fv(FV)
    extra = {"fs_resolved_views": {FV: fv.resolved()}}
    if read_at is not None:
        extra["fs_as_of"] = read_at.isoformat(sep=" ")
    return _dbt_compile(fs.project, fv, extra)


def _no_dbt(monkeypatch) -> None:
    def refuse(self, *a, **k):
        raise AssertionError("dbt was started although the compiled view is cached")

    monkeypatch.setattr(Project, "dbt", refuse)


def test_cached_sql_equals_dbt_compile_at_each_read_time(demo_copy_on_engine, monkeypatch):
    _, d = demo_copy_on_engine
    (d / "target" / manifest_cache.COMPILED_FILE).unlink(missing_ok=True)
    fs = FeatureStore(d)
    first = compile_feature_view(fs.project, fs.catalog.fv(FV), T1)  # compiles (sentinel) and caches
    expected_t1, expected_t2, expected_live = _direct(fs, T1), _direct(fs, T2), _direct(fs, None)
    assert first == expected_t1
    assert manifest_cache.AS_OF_SENTINEL not in first
    compile_feature_view(fs.project, fs.catalog.fv(FV), None)  # the live variant is its own entry

    with monkeypatch.context() as m:
        _no_dbt(m)
        fresh = FeatureStore(d)  # another process would start here: nothing in memory
        assert compile_feature_view(fresh.project, fresh.catalog.fv(FV), T2) == expected_t2
        assert compile_feature_view(fresh.project, fresh.catalog.fv(FV), T1) == expected_t1
        assert compile_feature_view(fresh.project, fresh.catalog.fv(FV), None) == expected_live
        td = fresh.create_training_dataset(FV)  # the whole command (read time: now), without dbt
    assert td.row_counts and sum(td.row_counts.values()) > 0


def test_an_edited_declaration_is_compiled_again(demo_copy_on_engine, monkeypatch):
    _, d = demo_copy_on_engine
    fs = FeatureStore(d)
    before = compile_feature_view(fs.project, fs.catalog.fv(FV), T1)
    assert "tenure_days" in before
    yml = d / "models" / "feature_views" / "_feature_views.yml"
    original = yml.read_text()
    yml.write_text(original.replace("age_years, tenure_days]", "age_years]"))
    try:
        fs = FeatureStore(d)
        after = compile_feature_view(fs.project, fs.catalog.fv(FV), T1)
        assert "tenure_days" not in after, "a stale compiled view was served after its YAML changed"
        assert after == _direct(fs, T1)
    finally:
        yml.write_text(original)


def test_other_project_vars_are_another_entry(demo_copy_on_engine):
    """Vars the project is run with are part of the key: a compile under other vars is not reused for these."""
    _, d = demo_copy_on_engine
    plain = FeatureStore(d)
    with_vars = FeatureStore(d, vars={"demo_data_cutoff": "2026-01-10 00:00:00"})
    k1 = manifest_cache.compiled_key(plain.project, FV, {})
    k2 = manifest_cache.compiled_key(with_vars.project, FV, {})
    assert k1 != k2
