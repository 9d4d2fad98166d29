"""The web UI (fs_cli/ui): every page's HTML and its JSON twin, in process on every engine (the JSON compared with
what the CLI's --json answers for the same data), 404s for names the catalog does not know, the API keys, and real
pages in headless Chromium from a running `fs ui` process (screenshots under target/ui-screens/)."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path

import joblib
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from services import clone_project, drop_clone, missing

from fs_cli import FeatureStore, training
from fs_cli.cli import main
from fs_cli.ui import charts
from fs_cli.ui.app import create_ui_app

REPO = Path(__file__).resolve().parent.parent
FV = "fv_fraud_detection"
FG = "fg_customer_transactions"
MODEL = "ui_model"
META = {"owner": "ui-tests", "intended_use": "tests"}
FAILING_CHECK = "contract:invalid:tx_amount_1d:range"


# -- fixtures -----------------------------------------------------------------------------------------------------
def _clone(engine: str, src: Path, dst: Path) -> Path:
    return clone_project(engine, src, dst, "fs_test_ui_")


_drop_clone = drop_clone


def _failing_run(d: Path) -> None:
    """A stored validation run of FG with one failing expectation (what a `warn` policy would have published)."""
    from fs_cli.validation.results import CheckResult, ValidationReport, store

    report = ValidationReport(FG, "ui-test-candidate", "warn", [
        CheckResult(FAILING_CHECK, "contract", "fail", column="tx_amount_1d",
                    message="3 rows outside [0, 100000]", metrics={"failed_rows": 3}),
        CheckResult("contract:missing:customer_id", "contract", "pass", column="customer_id"),
    ], validated_at=datetime(2030, 1, 1))
    with FeatureStore(d).project.warehouse() as wh:
        store(wh, report)


def _register_model(d: Path) -> None:
    """ui_model:1 on training dataset v1 (a small logistic regression), validated, alias champion."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    fs = FeatureStore(d)
    td = training.info(fs.project, FV, 1)
    train = training.read(fs.project, FV, 1, split="train")[1].to_pandas()
    numeric = [f["name"] for f in td.features if train[f["name"]].dtype.kind in "fi"]
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=200))
    model.fit(train[numeric], train[td.labels[0]].astype(int))
    joblib.dump(model, d / "ui_model.joblib")
    m = fs.models.register(MODEL, d / "ui_model.joblib", td.ref, metrics={"train_auc": 0.75}, meta=META,
                           description="UI test model", trust_pickle=True)
    fs.models.alias(m.name, m.version, "champion", reason="ui test", force=True)


@pytest.fixture(scope="module")
def ui_project(demo_on_engine, tmp_path_factory):
    """(engine, project dir): the demo (two commits per group, training dataset v1) plus a failing validation run
    of fg_customer_transactions and model ui_model:1 (alias champion)."""
    engine, src = demo_on_engine
    d = _clone(engine, src, tmp_path_factory.mktemp(f"ui_{engine}") / "proj")
    try:
        _failing_run(d)
        _register_model(d)
        yield engine, d
    finally:
        _drop_clone(engine, d)


@pytest.fixture
def client(ui_project):
    _, d = ui_project
    return TestClient(create_ui_app(lambda: FeatureStore(d), api_keys=""))


def cli_json(d: Path, *args: str):
    r = CliRunner().invoke(main, ["--project-dir", str(d), *args, "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def svgs(html: str) -> list[str]:
    """The inline SVG charts of a page that draw something (a bar, a line or a point)."""
    return [s for s in re.findall(r"<svg\b.*?</svg>", html, flags=re.S) if re.search(r"<(rect|polyline|circle)\b", s)]


# -- in process ---------------------------------------------------------------------------------------------------
def test_catalog_lists_groups_and_views_with_metadata_and_use(ui_project, client):
    _, d = ui_project
    r = client.get("/ui/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    data = client.get("/ui/catalog.json").json()
    listed = {row["name"]: row for row in cli_json(d, "list")}  # the oracle: `fs list --json`
    fs = FeatureStore(d)
    assert [g["name"] for g in data["feature_groups"]] == sorted(fs.catalog.feature_groups)
    assert [v["name"] for v in data["feature_views"]] == sorted(fs.catalog.feature_views)
    for g in data["feature_groups"] + data["feature_views"]:
        assert {k: g[k] for k in listed[g["name"]]} == listed[g["name"]]  # every `fs list` field, unchanged
        assert g["name"] in r.text
    groups = {g["name"]: g for g in data["feature_groups"]}
    profile = groups["fg_customer_profile"]
    assert profile["owner"] == "crm-data@example.com" and profile["owner"] in r.text
    assert "customers" in profile["upstream"]  # the seed, from the dbt manifest
    assert profile["feature_views"] == [FV] and profile["training_datasets"] == [f"{FV}:1"]
    assert profile["models"] == [f"{MODEL}:1"]
    assert profile["served_views"] == ([FV] if all(g["online"] for g in data["feature_groups"]) else [])
    view = data["feature_views"][0]
    assert view["training_datasets"] == [f"{FV}:1"] and view["models"] == [f"{MODEL}:1"]
    assert set(view["feature_groups"]) == set(fs.catalog.feature_groups)
    assert f'href="/ui/feature-groups/{FG}"' in r.text and f'href="/ui/models/{MODEL}"' in r.text


def test_catalog_search_filters_like_fs_search(ui_project, client):
    _, d = ui_project
    data = client.get("/ui/catalog.json", params={"q": "basket"}).json()
    hits = cli_json(d, "search", "basket")
    assert hits and data["search"] == hits
    assert {g["name"] for g in data["feature_groups"]} == {h["feature_group"] for h in hits if h["feature_group"]}
    html = client.get("/ui/", params={"q": "basket"}).text
    assert "Matches for" in html and all(h["name"] in html for h in hits)
    none = client.get("/ui/catalog.json", params={"q": "no-such-thing-xyz"}).json()
    assert none["search"] == [] and none["feature_groups"] == [] and none["feature_views"] == []


def test_feature_group_page_and_its_json_twin(ui_project, client):
    _, d = ui_project
    data = client.get(f"/ui/feature-groups/{FG}.json").json()
    assert data["describe"] == cli_json(d, "describe", FG)  # `fs describe --json`, unchanged
    assert data["impact"] == cli_json(d, "impact", FG)
    log = data["describe"]["commit_log"]
    assert [c["commit_id"] for c in log] == [1, 2]
    html = client.get(f"/ui/feature-groups/{FG}").text
    assert f"Feature group {FG}" in html
    for f in data["describe"]["features"]:
        assert f["name"] in html
    latest = data["describe"]["latest_commit"]
    assert re.search(rf"commit <b>{latest['commit_id']}</b>", html)
    # the commit chart: one bar segment per non-zero inserted / updated / deleted count, values in the tooltips
    commit_chart = next(s for s in svgs(html) if "per commit" in s)
    segments = sum(1 for c in log for k in ("inserted", "updated", "deleted") if c[k])
    assert commit_chart.count("<rect") - 3 == segments  # minus the 3 legend swatches
    assert f"c1: inserted {charts._fmt(log[0]['inserted'])}" in commit_chart


def _oracle_distribution(values: list, kind: str, bins: int = 10, top: int = 10) -> dict:
    """The distribution the page must show, from the published rows in plain Python."""
    import math
    from collections import Counter

    present = [v for v in values if v is not None]
    out = {"kind": kind, "rows": len(values), "missing": len(values) - len(present)}
    if kind == "numeric":
        xs = [float(v) for v in present]
        lo, hi = min(xs), max(xs)
        width = (hi - lo) / bins
        counts = Counter(min(int(math.floor((x - lo) / width)), bins - 1) for x in xs)
        return {**out, "counts": [counts.get(i, 0) for i in range(bins)], "from": lo, "to": hi}
    counts = Counter(str(v).lower() if isinstance(v, bool) else str(v) for v in present)
    return {**out, "values": counts, "top": sorted(counts.values(), reverse=True)[:top]}


def test_feature_group_page_shows_each_features_distribution_of_the_latest_commit(ui_project, client):
    _, d = ui_project
    fs = FeatureStore(d)
    data = client.get(f"/ui/feature-groups/{FG}.json").json()["distributions"]
    features = fs.catalog.fg(FG).features
    assert set(data) == {f.name for f in features}
    rows = fs.read(FG, format="arrow")
    kinds = set()
    for f in features:
        got = data[f.name]
        kinds.add(got["kind"])
        want = _oracle_distribution(rows.column(f.name).to_pylist(), got["kind"])
        assert (got["rows"], got["missing"]) == (want["rows"], want["missing"]) == (rows.num_rows, want["missing"])
        if got["kind"] == "numeric":
            assert [b["count"] for b in got["bins"]] == want["counts"], f.name
            assert got["bins"][0]["from"] == pytest.approx(want["from"]) and got["bins"][-1]["to"] == want["to"]
        elif got["kind"] == "categorical":
            assert [v["count"] for v in got["values"]] == want["top"], f.name  # most frequent first
            assert all(want["values"][v["value"]] == v["count"] for v in got["values"]), f.name
            assert got["other"] == sum(want["values"].values()) - sum(want["top"])
    assert "numeric" in kinds  # the demo group has numbers to draw
    html = client.get(f"/ui/feature-groups/{FG}").text
    section = html.split('id="distributions"', 1)[1].split("</div>\n", 1)[0]
    numeric = [f for f, g in data.items() if g["kind"] == "numeric" and g["bins"]]
    assert section.count("<svg") >= len(numeric) and all(f"{f}: rows per bin" in section for f in numeric)


def test_validation_runs_show_the_failing_expectation(ui_project, client):
    _, d = ui_project
    data = client.get(f"/ui/feature-groups/{FG}.json").json()
    rows = cli_json(d, "validations", FG, "--limit", "20")
    assert [r["candidate_id"] for r in data["validation_runs"]] == list(dict.fromkeys(r["candidate_id"] for r in rows))
    failing = data["validation_runs"][0]  # validated in 2030: the newest
    assert failing["candidate_id"] == "ui-test-candidate" and failing["outcome"] == "fail"
    assert failing["counts"] == {"fail": 1, "pass": 1}
    assert [x["check_name"] for x in failing["not_passed"]] == [FAILING_CHECK]
    assert all(r["outcome"] == "pass" for r in data["validation_runs"][1:])
    html = client.get(f"/ui/feature-groups/{FG}").text
    assert FAILING_CHECK in html and "3 rows outside [0, 100000]" in html


def test_drift_per_feature_over_runs_is_charted(ui_project, client):
    _, d = ui_project
    data = client.get(f"/ui/feature-groups/{FG}.json").json()
    rows = [r for r in cli_json(d, "validations", FG, "--limit", "20") if r["kind"] == "drift" and r["column_name"]]
    assert rows, "the demo's second publish measures drift"
    assert set(data["drift"]) == {r["column_name"] for r in rows}
    for r in rows:
        stats = data["drift"][r["column_name"]]["stats"]
        for stat, values in stats.items():
            assert values[-1] == pytest.approx(r["metrics"][stat])
    html = client.get(f"/ui/feature-groups/{FG}").text
    drawn = [s for s in svgs(html) if "drift of" in s]
    assert len(drawn) == len(data["drift"])
    cost = cli_json(d, "describe", FG)["cost"]
    assert [c["candidate_id"] for c in data["cost_history"][:len(cost)]] == [c["candidate_id"] for c in cost]
    assert any("seconds per run" in s for s in svgs(html))


def test_training_dataset_pages(ui_project, client):
    _, d = ui_project
    listing = client.get("/ui/training-datasets.json").json()
    assert listing["training_datasets"] == cli_json(d, "training-dataset", "list")
    one = client.get(f"/ui/training-datasets/{FV}/1.json").json()
    shown = cli_json(d, "training-dataset", "show", f"{FV}:1")
    assert one["training_dataset"] == shown and one["models"] == [f"{MODEL}:1"]
    html = client.get(f"/ui/training-datasets/{FV}/1").text
    assert shown["content_hash"] in html
    for c in shown["fg_commits"]:
        assert f"/ui/feature-groups/{c['feature_group']}" in html
    assert any("rows per split" in s for s in svgs(html))
    assert f"{FV}:1" in client.get("/ui/training-datasets", params={"feature_view": FV}).text


def test_model_pages(ui_project, client):
    _, d = ui_project
    assert client.get("/ui/models.json").json()["models"] == cli_json(d, "model", "list")
    data = client.get(f"/ui/models/{MODEL}.json").json()
    shown = cli_json(d, "model", "show", f"{MODEL}:1")
    v = data["versions"][0]
    assert {k: v[k] for k in ("name", "version", "aliases", "metrics", "artifact_sha256", "fg_commits")} == \
        {k: shown[k] for k in ("name", "version", "aliases", "metrics", "artifact_sha256", "fg_commits")}
    assert v["aliases"] == ["champion"]
    assert data["alias_history"] == shown["alias_history"]
    assert v["lineage"] == cli_json(d, "model", "lineage", f"{MODEL}:1")
    html = client.get(f"/ui/models/{MODEL}").text
    assert "champion" in html and "ui test" in html and v["artifact_sha256"] in html
    for c in v["lineage"]["feature_group_commits"]:
        assert f"{c['feature_group']}</a>@{c['commit_id']}" in html
    assert any("metrics of version 1" in s for s in svgs(html))


@pytest.mark.parametrize("url", [
    "/ui/feature-groups/nope", "/ui/feature-groups/nope.json", "/ui/feature-groups/x'; drop table fs_meta.commits --",
    "/ui/training-datasets?feature_view=nope", "/ui/training-datasets/nope/1", f"/ui/training-datasets/{FV}/99.json",
    "/ui/models/nope", "/ui/models/nope.json",
])
def test_unknown_names_are_404(ui_project, client, url):
    r = client.get(url)
    assert r.status_code == 404
    if url.endswith(".json"):
        assert r.json()["error"].startswith(("unknown", "feature view"))
    else:
        assert "404" in r.text and "<html" in r.text


def test_monitoring_page_appears_with_its_tables(ui_project, client):
    from fs_cli.monitoring.drift import FeatureResult, MonitorReport, store_results

    _, d = ui_project
    assert client.get("/ui/monitoring.json").status_code == 404
    assert "/ui/monitoring" not in client.get("/ui/").text
    fs = FeatureStore(d)
    with fs.project.warehouse() as wh:
        for day, psi in ((1, 0.05), (2, 0.4)):
            store_results(wh, MonitorReport(
                f"run{day}", datetime(2026, 2, day), FV, 1, "served", None, datetime(2026, 2, day), 500,
                [FeatureResult("tx_amount_1d", "numeric", "drift" if psi > 0.25 else "pass", 100, 500,
                               {"psi": psi, "ks_d": psi / 2}, {"psi": 0.25, "ks_d": 0.25})]))
    fresh = TestClient(create_ui_app(lambda: FeatureStore(d), api_keys=""))  # the nav's table check is cached
    data = fresh.get("/ui/monitoring.json").json()
    assert "monitoring_results" in data["tables"]
    assert len(data["monitoring_results"]) == len(fs.monitoring_results(FV)) == 2
    points = data["drift"][FV]["features"]["tx_amount_1d"]["points"]["psi"]
    assert list(points.values()) == [0.05, 0.4]
    html = fresh.get("/ui/monitoring").text
    assert any("tx_amount_1d drift per run" in s for s in svgs(html))
    assert 'href="/ui/monitoring"' in fresh.get("/ui/").text


def test_a_write_shows_on_the_next_view(ui_project, client):
    """Page data is reused while the store is unchanged (DuckDB: its file's stamp), never after a write."""
    from fs_cli.validation.results import CheckResult, ValidationReport, store

    _, d = ui_project
    before = client.get(f"/ui/feature-groups/{FG}.json").json()
    assert client.get(f"/ui/feature-groups/{FG}.json").json() == before
    with FeatureStore(d).project.warehouse() as wh:
        store(wh, ValidationReport(FG, "ui-test-later", "warn", [CheckResult("pii:scan", "pii", "warn")],
                                   validated_at=datetime(2031, 1, 1)))
    after = client.get(f"/ui/feature-groups/{FG}.json").json()
    assert after["validation_runs"][0]["candidate_id"] == "ui-test-later"
    assert after["validation_runs"][0]["outcome"] == "warn"
    assert after["validation_runs"][1:] == before["validation_runs"][:len(after["validation_runs"]) - 1]


# -- keys, mounting, escaping (DuckDB only: nothing engine-specific) -----------------------------------------------
def test_api_keys_protect_the_ui_and_a_browser_key_becomes_a_cookie(demo_project):
    c = TestClient(create_ui_app(lambda: FeatureStore(demo_project), api_keys="k1,k2"))
    assert c.get("/ui/").status_code == 401 and c.get("/ui/catalog.json").status_code == 401
    assert c.get("/health").status_code == 200
    assert c.get("/ui/", headers={"x-api-key": "k2"}).status_code == 200
    bad = c.get("/ui/", params={"key": "wrong"})
    assert bad.status_code == 401 and "set-cookie" not in bad.headers
    ok = c.get("/ui/", params={"key": "k1"})
    assert ok.status_code == 200 and "HttpOnly" in ok.headers["set-cookie"]
    assert c.get("/ui/catalog.json").status_code == 200  # the cookie alone
    c.cookies.clear()
    assert c.get("/ui/catalog.json").status_code == 401


def test_fs_serve_mounts_the_ui_only_when_asked(demo_project, tmp_path, monkeypatch):
    from fs_cli.online.backends import open_store
    from fs_cli.server.app import create_app

    store = open_store(f"sqlite:///{tmp_path / 'online.sqlite'}")
    monkeypatch.delenv("FS_UI_PROJECT_DIR", raising=False)
    assert TestClient(create_app(store, api_keys="")).get("/ui/").status_code == 404  # warehouse-free by default
    monkeypatch.setenv("FS_UI_PROJECT_DIR", str(demo_project))
    c = TestClient(create_app(store, api_keys="k"))
    assert c.get("/ui/").status_code == 401
    r = c.get(f"/ui/feature-groups/{FG}.json", headers={"x-api-key": "k"})
    assert r.status_code == 200 and r.json()["name"] == FG


def test_charts_escape_their_text_and_skip_empty_data():
    svg = charts.stacked_bars("<t>", ["<script>x</script>"], {"inserted": [3]})
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "<rect" in svg
    assert charts.lines("t", [], {}) == "" and charts.hbars("t", []) == ""
    line = charts.lines("t", ["a", "b", "c"], {"psi": [0.1, None, 0.3]}, threshold=0.25)
    assert line.count("<circle") == 2 and "<polyline" not in line  # a gap splits the line: no segment of 2 points


# -- real browser -------------------------------------------------------------------------------------------------
SCREENS = REPO / "target" / "ui-screens"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    missing("chromium", "no headless Chromium on PATH (Debian: apt-get install -y chromium)")
    raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ui_server(ui_project):
    """`fs ui` as a real process on the DuckDB demo (+ model, failing run), ready when /health answers."""
    engine, d = ui_project
    if engine != "duckdb":
        pytest.skip("the browser pages are the same on every engine; the in-process tests cover Postgres")
    browser = _chromium()
    port = _free_port()
    env = {**os.environ, "FS_API_KEYS": ""}
    proc = subprocess.Popen([sys.executable, "-m", "fs_cli", "--project-dir", str(d), "ui", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"fs ui exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("fs ui did not answer /health within 90 s")
            time.sleep(0.3)
        yield browser, base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _chrome(browser: str, *args: str) -> subprocess.CompletedProcess:
    profile = Path(os.environ.get("TMPDIR", "/tmp")) / f"fs-ui-chromium-{uuid.uuid4().hex[:8]}"
    try:
        return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                               "--no-first-run", f"--user-data-dir={profile}", "--window-size=1280,1800", *args],
                              capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


PAGES = [  # (screenshot name, path, text the page must show, least number of drawn charts)
    ("catalog", "/ui/", ["fg_customer_profile", "crm-data@example.com", FV], 0),
    ("search", "/ui/?q=basket", ["Matches for", "basket"], 0),
    ("feature-group", f"/ui/feature-groups/{FG}", ["Schema", "Commit log", FAILING_CHECK, "drift of"], 3),
    ("training-datasets", "/ui/training-datasets", [f"{FV}:1"], 0),
    ("training-dataset", f"/ui/training-datasets/{FV}/1", ["content hash", "commits read"], 1),
    ("models", "/ui/models", [MODEL, "champion"], 0),
    ("model", f"/ui/models/{MODEL}", ["Alias history", "champion", "Lineage"], 1),
    ("not-found", "/ui/feature-groups/nope", ["404", "unknown feature group"], 0),
]


@pytest.mark.parametrize("name,path,texts,least_charts", PAGES, ids=[p[0] for p in PAGES])
def test_pages_render_in_chromium(ui_server, name, path, texts, least_charts):
    browser, base = ui_server
    dom = _chrome(browser, "--dump-dom", base + path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert "<main>" in html, html[:500]
    for t in texts:
        assert t in html, f"{t!r} not on {path}"
    assert len(svgs(html)) >= least_charts
    SCREENS.mkdir(parents=True, exist_ok=True)
    shot = SCREENS / f"{name}.png"
    shot.unlink(missing_ok=True)
    r = _chrome(browser, f"--screenshot={shot}", base + path)
    assert r.returncode == 0 and shot.is_file() and shot.stat().st_size > 5_000, r.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_page_shows_validation_slices_and_ood():
    """The validation report part of the model page, from a report shaped like `fs model show --json` gives (the
    fixture's model is not validated: a real validation costs minutes on the shared test machine)."""
    from fs_cli.ui.web import _templates, chart_set

    report = {"validation_id": 1, "validated_at": "2026-01-20 00:00:00", "status": "failed", "n_test": 400,
              "metrics": {"auc": 0.81, "worst_slice.auc.where": "segment=gold"},
              "checks": [{"metric": "auc", "bound": "min", "threshold": 0.85, "value": 0.81, "passed": False,
                          "note": ""}],
              "slices": [{"column": "segment", "slice": "gold", "n": 120, "counted": True, "auc": 0.71}],
              "ood": [{"kind": "above_range", "feature": "tx_amount_1d", "value": 2423.25, "ok": True,
                       "changed_fraction": 0.0235, "mean_abs_proba_shift": 0.01}]}
    version = {"name": "m", "version": 1, "aliases": [], "status": "active", "metrics": {"train_auc": 0.9},
               "validations": [report], "lineage": {"error": "training dataset dropped"}, "tags": {}, "meta": {},
               "training_dataset": FV, "training_dataset_version": 1}
    data = {"page": "model", "name": "m", "versions": [version], "alias_history": []}
    html = _templates().get_template("model.html").render(d=data, charts=chart_set(data), nav=[], prefix="/ui")
    assert "segment" in html and "gold" in html and "0.71" in html  # the slice row
    assert "above_range" in html and "0.0235" in html  # the OOD row
    assert re.search(r"<td>auc</td><td>min</td>.*?class=\"fail\"", html, flags=re.S)  # the failed threshold check
    assert "training dataset dropped" in html
    chart = next(s for s in svgs(html) if "metrics of version 1" in s)
    assert "test auc" in chart and "train_auc" in chart
