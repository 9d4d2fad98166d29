"""Write-audit-publish end to end: bad batches injected into a real pipeline run, on a throw-away project copy, on
every engine (DuckDB file; Postgres: a fresh database, and nothing may land in a DuckDB file).

One module-scoped project per engine: day 1 is published clean; then one bad batch per feature group goes through
`fs run`:
  fg_customer_transactions (strict): a negative amount, a duplicated key, a NULL key
  fg_merchant_activity (strict):      the latest week's average amount multiplied by 5 (shifted distribution)
  fg_customer_profile (warn):         an e-mail address in the `country` feature
Last, a check that cannot run (a hand-written contract check on a missing column) on the warn group: an error, which
no policy publishes.
"""

from __future__ import annotations

import json
import re
from contextlib import ExitStack
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ENGINES, copy_project, use_engine
from services import pg_connect, pg_database

from fs_cli import FeatureStore
from fs_cli.cli import main
from fs_cli.online.backends import open_store
from fs_cli.validation import ERROR_PREFIX, pipeline_check, validate_candidate
from fs_cli.validation.contract import build_contract, contract_yaml
from fs_cli.validation.results import history

DAY1 = {"demo_data_cutoff": "2026-01-15 00:00:00"}


def _wrap(path: Path, extra_sql: str) -> str:
    """Replace a model by itself plus extra rows/changes; returns the original text."""
    original = path.read_text()
    body = re.sub(r"--[^\n]*\n", "\n", original)
    path.write_text(extra_sql.replace("{{ORIGINAL}}", body))
    return original


@pytest.fixture(scope="module", params=ENGINES)
def engine(request) -> str:
    """Module-scoped twin of conftest's `engine`: one project per engine for the whole module."""
    if request.param == "postgres":
        pg_connect().close()  # skip (laptop) or fail (CI) when the server is missing
    return request.param


@pytest.fixture(scope="module")
def proj(engine, tmp_path_factory):
    with ExitStack() as stack:
        db = stack.enter_context(pg_database()) if engine == "postgres" else None
        d = use_engine(copy_project(tmp_path_factory.mktemp(f"gate_{engine}") / "proj"), engine, db)
        r1 = FeatureStore(d, vars=DAY1).run()
        assert r1.ok, r1.to_dict()
        yield d


def _wh(proj: Path, read_only: bool = True):
    return FeatureStore(proj).project.warehouse(read_only=read_only)


def _pointers(d: Path) -> dict:
    with open_store(warehouse_path=FeatureStore(d).project.warehouse_path) as s:
        return {k: (p.gen, p.version) for k, p in s.pointers().items()}


def _commits(fs: FeatureStore) -> dict[str, int]:
    return {n: len(fs.commits(n)) for n in ("fg_customer_transactions", "fg_merchant_activity", "fg_customer_profile")}


@pytest.fixture(scope="module")
def bad_run(proj):
    """Inject the bad batches, run `fs run` through the CLI; restore the models afterwards."""
    fs = FeatureStore(proj)
    before_commits = _commits(fs)
    before_online = _pointers(proj)
    fgdir = proj / "models" / "feature_groups"
    originals = {
        "fg_customer_transactions.sql": _wrap(fgdir / "fg_customer_transactions.sql", """
            with o as (select * from ({{ORIGINAL}}) as x)
            select * from o
            union all  -- out of range
            select customer_id, feature_time + interval '1 day', tx_count_1d, -5.0, tx_count_7d, tx_amount_7d,
                   tx_max_amount_7d, tx_count_30d, tx_amount_30d, tx_avg_amount_30d, online_share_30d
            from (select * from o order by feature_time desc, customer_id limit 1) as a
            union all  -- duplicate key
            select * from (select * from o order by feature_time, customer_id limit 1) as b
            union all  -- null key
            select null, feature_time, tx_count_1d, tx_amount_1d, tx_count_7d, tx_amount_7d,
                   tx_max_amount_7d, tx_count_30d, tx_amount_30d, tx_avg_amount_30d, online_share_30d
            from (select * from o order by feature_time, customer_id limit 1) as c
        """),
        "fg_merchant_activity.sql": _wrap(fgdir / "fg_merchant_activity.sql", """
            with o as (select * from ({{ORIGINAL}}) as x)
            select merchant_id, feature_time, merchant_tx_count_7d,
                   case when feature_time > (select max(feature_time) from o) - interval '7 days'
                        then merchant_avg_amount_7d * 5 else merchant_avg_amount_7d end as merchant_avg_amount_7d,
                   merchant_online_share_7d
            from o
        """),
        "fg_customer_profile.sql": _wrap(fgdir / "fg_customer_profile.sql", """
            with o as (select * from ({{ORIGINAL}}) as x)
            select customer_id, profile_updated_at,
                   case when customer_id = 7 then 'jane.doe@example.org' else country end as country,
                   segment, credit_limit, age_years, tenure_days
            from o
        """),
    }
    res = CliRunner().invoke(main, ["--project-dir", str(proj), "run", "--json"], catch_exceptions=False)
    # dbt prints failing tests even under --quiet, before the JSON document (reported to the lead).
    report = json.loads(res.output[res.output.index('{\n  "ok"'):])
    fs = FeatureStore(proj)
    out = {"exit_code": res.exit_code, "report": report, "before_commits": before_commits,
           "after_commits": _commits(fs), "before_online": before_online, "after_online": _pointers(proj)}
    yield out
    for name, text in originals.items():
        (fgdir / name).write_text(text)


def _fg(report: dict, name: str) -> dict:
    return next(o for o in report["feature_groups"] if o["feature_group"] == name)


def _results(proj: Path, fg: str) -> list[dict]:
    with _wh(proj) as wh:
        return history(wh, fg, limit=1)


def test_results_live_in_the_target_warehouse(proj, engine):
    """fs_meta.validation_results and the costs are in the target; on Postgres no DuckDB file is ever made."""
    fs = FeatureStore(proj)
    with fs.project.warehouse(read_only=True) as wh:
        assert wh.engine == engine
        n = wh.scalar("select count(*) from fs_meta.validation_results where feature_group = ?",
                      ["fg_customer_transactions"])
        costs = wh.scalar("select count(*) from fs_meta.feature_group_costs")
    assert n > 10 and costs == 3
    if engine != "duckdb":
        assert not fs.project.warehouse_path.exists(), "a Postgres run wrote into the DuckDB file"


def test_clean_day1_passes_every_check(proj):
    for fg in ("fg_customer_transactions", "fg_merchant_activity", "fg_customer_profile"):
        with _wh(proj) as wh:
            rows = history(wh, fg)
        assert rows, fg
        first = min(r["candidate_id"] for r in rows)
        day1 = [r for r in rows if r["candidate_id"] == first]
        bad = [(r["check_name"], r["outcome"], r["message"]) for r in day1 if r["outcome"] not in ("pass", "skipped")]
        assert not bad, (fg, bad)
        assert {r["kind"] for r in day1} >= {"contract", "lineage", "dbt", "drift"}
        if fg == "fg_customer_profile":  # the only group with string features
            assert "pii:content:country" in {r["check_name"] for r in day1}
        assert all(r["commit_id"] == 1 for r in day1), "results are linked to the commit that published them"


def test_bad_run_exit_code_and_summary(bad_run):
    assert bad_run["exit_code"] == 1
    rep = bad_run["report"]
    assert not rep["ok"]
    tx = _fg(rep, "fg_customer_transactions")
    assert tx["status"] == "blocked" and not tx["published"]
    text = "\n".join(tx["failures"])
    for needle in ("contract:invalid:tx_amount_1d:range", "contract:duplicate:key",
                   "contract:missing:customer_id:not_null", "fs_expectations"):
        assert needle in text, needle
    assert "-5.0" in text, "failing-row samples are in the summary"
    ma = _fg(rep, "fg_merchant_activity")
    assert ma["status"] == "blocked" and "drift:merchant_avg_amount_7d" in "\n".join(ma["failures"])


def test_strict_not_published_warn_published(bad_run):
    b, a = bad_run["before_commits"], bad_run["after_commits"]
    assert a["fg_customer_transactions"] == b["fg_customer_transactions"]
    assert a["fg_merchant_activity"] == b["fg_merchant_activity"]
    assert a["fg_customer_profile"] == b["fg_customer_profile"] + 1
    prof = _fg(bad_run["report"], "fg_customer_profile")
    assert prof["published"] and prof["status"] == "warn"
    assert any("pii:content:country" in w for w in prof["warnings"])


def test_online_store_untouched_for_blocked_groups(bad_run):
    b, a = bad_run["before_online"], bad_run["after_online"]
    assert a["fg_customer_transactions"] == b["fg_customer_transactions"]
    assert a["fg_merchant_activity"] == b["fg_merchant_activity"]
    assert a["fg_customer_profile"] != b["fg_customer_profile"]


def test_every_result_stored_with_samples(bad_run, proj):
    tx = {r["check_name"]: r for r in _results(proj, "fg_customer_transactions")}
    rng = tx["contract:invalid:tx_amount_1d:range"]
    assert rng["outcome"] == "fail" and rng["metrics"]["invalid_count"] == 1
    assert rng["samples"][0]["tx_amount_1d"] == -5.0
    assert tx["contract:duplicate:key"]["outcome"] == "fail"
    assert tx["contract:duplicate:key"]["samples"][0]["n_rows"] == 2
    assert tx["contract:missing:customer_id:not_null"]["metrics"]["missing_count"] == 1
    assert tx["dbt:fs_expectations_fg_customer_transactions_"]["outcome"] == "fail"
    assert all(r["commit_id"] is None for r in tx.values()), "a blocked candidate has no commit"
    ma = {r["check_name"]: r for r in _results(proj, "fg_merchant_activity")}
    d = ma["drift:merchant_avg_amount_7d"]
    assert d["outcome"] == "fail" and d["metrics"]["psi"] > 1 and d["metrics"]["wasserstein_norm"] > 1
    assert ma["drift:merchant_online_share_7d"]["outcome"] == "pass"
    prof = {r["check_name"]: r for r in _results(proj, "fg_customer_profile")}
    p = prof["pii:content:country"]
    assert p["outcome"] == "fail" and p["metrics"]["kinds"] == ["email"]
    assert "jane.doe@example.org" not in json.dumps(p["samples"]), "PII is masked in stored samples"
    assert prof["pii:lineage"]["outcome"] == "pass"
    assert all(r["commit_id"] is not None for r in prof.values()), "the warn group's results link to its commit"


def test_validations_cli(bad_run, proj):
    r = CliRunner().invoke(main, ["--project-dir", str(proj), "validations", "fg_customer_transactions",
                                  "--failed", "--json", "--limit", "1"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert rows and all(x["outcome"] in ("fail", "error") for x in rows)
    r = CliRunner().invoke(main, ["--project-dir", str(proj), "validations", "fg_customer_transactions"])
    assert r.exit_code == 0 and "contract:duplicate:key" in r.output


def test_plain_dbt_build_skips_snapshot_of_failing_strict_candidate(bad_run, proj):
    """The fs_expectations dbt test runs before the snapshot in the DAG, so dbt itself withholds the publish."""
    # bad_run restored the models on teardown only; they are still bad here.
    fs = FeatureStore(proj)
    res = fs.project.dbt(["build", "--select", "fg_customer_transactions+", "fg_customer_profile+"])
    status = {r.node.name: str(r.status).split(".")[-1].lower() for r in res.results}
    assert status["fs_expectations_fg_customer_transactions_"] == "fail"
    assert status["fg_customer_transactions_snapshot"] == "skipped"
    assert status["fs_expectations_fg_customer_profile_"] == "pass"  # the e-mail is not a declared expectation
    assert status["fg_customer_profile_snapshot"] == "success"


def test_contract_cli_and_handwritten_merge(proj, engine):
    r = CliRunner().invoke(main, ["--project-dir", str(proj), "contract", "fg_customer_profile"])
    assert r.exit_code == 0, r.output
    fs = FeatureStore(proj)
    target = fs.project.target_config()
    schema = fs.catalog.fg("fg_customer_profile").schema
    # Soda's dataset qualifier per engine: DuckDB schema/table, Postgres database/schema/table
    dataset = {"duckdb": f"fs/{schema}/fg_customer_profile",
               "postgres": f"fs/{target.get('dbname')}/{schema}/fg_customer_profile"}[engine]
    assert f"dataset: {dataset}\n" in r.output and "valid_values" in r.output
    extra = proj / "models" / "feature_groups" / "fg_customer_profile.contract.yml"
    extra.write_text(
        "columns:\n"
        "  - name: credit_limit\n"
        "    checks:\n"
        "      - invalid: {qualifier: range, valid_min: 0, valid_max: 20000}\n"
        "checks:\n"
        "  - row_count: {qualifier: min_rows, threshold: {must_be_greater_than: 100000}}\n"
    )
    try:
        fs = FeatureStore(proj)
        fg = fs.catalog.fg("fg_customer_profile")
        c = build_contract(proj, fg)
        rng = [ch for col in c["columns"] if col["name"] == "credit_limit" for ch in col["checks"]
               if "invalid" in ch]
        assert rng == [{"invalid": {"qualifier": "range", "valid_min": 0, "valid_max": 20000}}]
        assert sum("row_count" in ch for ch in c["checks"]) == 1
        assert "valid_max: 20000" in contract_yaml(c)
        with fs.project.warehouse() as wh:
            rep = validate_candidate(fs.project, wh, fg, persist=False)
        failed = {x.check for x in rep.failures}
        assert not rep.errors, [(x.check, x.message) for x in rep.errors]
        assert "contract:invalid:credit_limit:range" in failed  # the demo has 30000 limits
        assert "contract:row_count:min_rows" in failed
        sample = next(x for x in rep.failed_checks if x.check == "contract:invalid:credit_limit:range").samples
        assert sample == [], "hand-written bounds are not known to the sampler: no misleading samples"
    finally:
        extra.unlink()


def test_drift_reference_modes(bad_run, proj):
    fs = FeatureStore(proj)
    fg = fs.catalog.fg("fg_merchant_activity")
    with fs.project.warehouse() as wh:
        for ref in ("last_commit", {"commit": 1}):
            rep = validate_candidate(fs.project, wh, fg, reference=ref, persist=False)
            drift = {x.check: x for x in rep.results if x.kind == "drift"}
            assert drift["drift:merchant_avg_amount_7d"].outcome == "fail", ref
            assert drift["drift:merchant_avg_amount_7d"].metrics["reference"] == (
                ref if isinstance(ref, str) else "commit")
        rep = validate_candidate(fs.project, wh, fg, reference={"commit": 99}, persist=False)
        assert any(x.check == "drift" and x.outcome == "error" for x in rep.errors)


def test_freshness_declared(proj):
    """`expectations.freshness` becomes a Soda freshness check against var fs_now (else the clock)."""
    from datetime import timedelta

    fs = FeatureStore(proj)
    fg = fs.catalog.fg("fg_customer_transactions")
    fg.meta = {**fg.meta, "expectations": {"freshness": "1d"}}
    with fs.project.warehouse() as wh:
        newest = wh.scalar(f"select max(feature_time) from {fg.relation}")
        outcomes = []
        for age in (timedelta(hours=12), timedelta(days=3)):
            fs.project.vars["fs_now"] = (newest + age).isoformat() + "+00:00"
            rep = validate_candidate(fs.project, wh, fg, persist=False)
            outcomes.append(next(x for x in rep.results if x.check.startswith("contract:freshness")).outcome)
    assert outcomes == ["pass", "fail"]


def test_drift_macros_are_one_definition_for_dbt_and_python(proj):
    """dbt compiles the project's macros/drift for the target to the very SQL fs_cli renders with its shim (same
    dispatch), and it runs to the same numbers."""
    from fs_cli.transforms.macros import project_macro_dir, render_for
    from fs_cli.validation.drift import column_drift

    fs = FeatureStore(proj)
    rel = fs.catalog.fg("fg_customer_transactions").relation
    with fs.project.warehouse() as wh:
        for macro, col in (("fs_numeric_drift", "tx_amount_1d"), ("fs_categorical_drift", "tx_count_1d")):
            call = f"{{{{ {macro}('{rel}', '{rel}', '{col}') }}}}"
            res = fs.project.dbt(["compile", "--quiet", "--inline", call])
            assert res.success, res.exception
            compiled = res.results[0].node.compiled_code
            assert " ".join(compiled.split()) == " ".join(render_for(fs.project, wh, macro, rel, rel, col).split())
        same = column_drift(wh, rel, rel, "tx_amount_1d", numeric=True, macro_dir=project_macro_dir(fs.project))
    assert same["psi"] == 0 and same["ks_d"] == 0 and same["wasserstein"] == 0


def test_cost_recorded_per_run_and_shown_by_describe(proj):
    r = CliRunner().invoke(main, ["--project-dir", str(proj), "describe", "fg_customer_transactions", "--json"])
    assert r.exit_code == 0, r.output
    cost = json.loads(r.output)["cost"]
    assert cost, "every validated run records the group's cost"
    first = cost[-1]  # day 1
    assert first["build_seconds"] > 0 and first["test_seconds"] >= 0 and first["validation_seconds"] > 0
    with _wh(proj) as wh:
        n1 = wh.scalar("select rows from fs_meta.commits where feature_group = ? and commit_id = 1",
                       ["fg_customer_transactions"])
    assert first["rows"] == n1 and first["bytes_estimate"] > n1 * 8
    r = CliRunner().invoke(main, ["--project-dir", str(proj), "describe", "fg_customer_transactions"])
    assert "cost per run" in r.output


def test_feature_view_correlation_limits(proj):
    fs = FeatureStore(proj)
    res = fs.project.dbt(["run", "--quiet", "--select", "fv_fraud_detection"])
    assert res.success, res.exception
    r = CliRunner().invoke(main, ["--project-dir", str(proj), "validate", "fv_fraud_detection", "--json"])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output[r.output.index("{"):])
    checks = {c["check"]: c for c in rep["results"]}
    assert checks["correlation:pairwise"]["outcome"] == "pass"
    got = checks["correlation:tx_avg_amount_30d~is_fraud"]["metrics"]["corr"]
    with _wh(proj) as wh:
        df = wh.arrow(f"select tx_avg_amount_30d, is_fraud from {fs.catalog.fv('fv_fraud_detection').relation}"
                      ).to_pandas()
    assert got == pytest.approx(df["tx_avg_amount_30d"].astype(float).corr(df["is_fraud"].astype(float)), abs=1e-9)
    r = CliRunner().invoke(main, ["--project-dir", str(proj), "validations", "fv_fraud_detection", "--json"])
    assert any(x["check_name"] == "correlation:pairwise" for x in json.loads(r.output))


BROKEN_CHECK = ("checks:\n"
                "  - failed_rows: {qualifier: broken, name: refers to a missing column, "
                "expression: \"no_such_column > 0\"}\n")


def test_errored_check_is_an_error_not_a_failure(proj):
    """A check the warehouse cannot evaluate is an error (no samples, ERROR line), the other checks still run, and
    the gate's verdict blocks under every policy."""
    fs = FeatureStore(proj)
    fg = fs.catalog.fg("fg_merchant_activity")
    extra = proj / "models" / "feature_groups" / "fg_merchant_activity.contract.yml"
    extra.write_text(BROKEN_CHECK)
    try:
        with fs.project.warehouse() as wh:
            rep = validate_candidate(fs.project, wh, fg, persist=False)
            lines = pipeline_check(fs.project, wh, fg)
    finally:
        extra.unlink()
    broken = next(x for x in rep.results if x.check == "contract:failed_rows:broken")
    assert broken.outcome == "error" and broken.errored and not broken.samples
    assert broken in rep.errors and broken not in rep.failures and not rep.passed
    # Soda evaluates the column checks in one aggregate query, so they share its error; the rest of the gate runs.
    assert {x.outcome for x in rep.results if x.kind == "contract"} <= {"pass", "error"}
    assert next(x for x in rep.results if x.check == "contract:schema:declared").outcome == "pass"
    assert {x.kind for x in rep.results if not x.errored} >= {"drift", "lineage"}
    assert not any(x.samples for x in rep.errors), "an error is not a verdict on rows: no samples"
    failures, warnings = lines  # the pipeline's (failures, warnings) pair
    assert lines.errors and lines.blocking and all(e.startswith(ERROR_PREFIX) for e in lines.errors)
    assert any("contract:failed_rows:broken" in e for e in lines.errors)
    assert set(lines.errors) <= set(failures)
    assert not any(f.startswith(ERROR_PREFIX) for f in set(failures) - set(lines.errors))


def test_gate_error_never_publishes_a_warn_group(bad_run, proj):
    """Policy `warn` publishes failing data with its report, but never a candidate the gate could not check."""
    fs = FeatureStore(proj)
    before = len(fs.commits("fg_customer_profile"))
    online = _pointers(proj)["fg_customer_profile"]
    extra = proj / "models" / "feature_groups" / "fg_customer_profile.contract.yml"
    extra.write_text(BROKEN_CHECK)
    try:
        res = CliRunner().invoke(main, ["--project-dir", str(proj), "run", "--select", "fg_customer_profile",
                                        "--json"], catch_exceptions=False)
    finally:
        extra.unlink()
    report = json.loads(res.output[res.output.index('{\n  "ok"'):])
    prof = _fg(report, "fg_customer_profile")
    assert res.exit_code == 1 and not report["ok"]
    assert not prof["published"] and prof["status"] == "blocked", prof
    assert any(f.startswith(ERROR_PREFIX) and "contract:failed_rows:broken" in f for f in prof["failures"])
    assert not any("published despite" in w for w in prof["warnings"])
    assert len(FeatureStore(proj).commits("fg_customer_profile")) == before
    assert _pointers(proj)["fg_customer_profile"] == online
    rows = {r["check_name"]: r for r in _results(proj, "fg_customer_profile")}
    assert rows["contract:failed_rows:broken"]["outcome"] == "error"
    assert rows["contract:failed_rows:broken"]["commit_id"] is None
