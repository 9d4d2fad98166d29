"""Monitoring (issue 12): batch scoring on any spine, inference logs, model feature drift, freshness checks.

Each engine gets its own clone of the session's demo (DuckDB: a copy of the project and its .fs/; Postgres: a
database created from the demo's as template), so the model registered here never shows up in other modules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import uuid
from datetime import timedelta
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import joblib
import numpy as np
import orjson
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import ENGINES
from services import clone_project, drop_clone, missing

from fs_cli import FeatureStore, training
from fs_cli.cli import main
from fs_cli.monitoring.drift import thresholds_of
from fs_cli.monitoring.logs import read_predictions
from fs_cli.server.logs import ServedLog
from fs_cli.timeutil import utcnow

FV = "fv_fraud_detection"
MODEL = "mon_model"
KEYS = ["customer_id", "merchant_id"]


def _clone(engine: str, src: Path, dst: Path) -> Path:
    return clone_project(engine, src, dst, "fs_test_mon_")


_drop_clone = drop_clone


@pytest.fixture(scope="module", params=ENGINES)
def monitored(request, tmp_path_factory):
    """(engine, project dir, td, scored test split) with model mon_model:1 registered on TD v1's numeric features
    and the TD's test split scored as an unlabelled spine (a Parquet file) as of the TD's read time."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    engine = request.param
    src = request.getfixturevalue("demo_project" if engine == "duckdb" else "demo_project_postgres")
    d = _clone(engine, src, tmp_path_factory.mktemp(f"mon_{engine}") / "proj")
    try:
        fs = FeatureStore(d)
        td = training.info(fs.project, FV, 1)
        train = training.read(fs.project, FV, 1, split="train")[1].to_pandas()
        numeric = [f["name"] for f in td.features if train[f["name"]].dtype.kind in "fi"]
        model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=200))
        model.fit(train[numeric], train[td.labels[0]].astype(int))
        joblib.dump(model, d / "m.joblib")
        fs.models.register(MODEL, d / "m.joblib", td.ref, meta={"owner": "t", "intended_use": "test"},
                           trust_pickle=True)
        test = training.read(fs.project, FV, 1, split="test")[1].to_pandas()
        spine = test[[*KEYS, "transaction_at", "transaction_id", "amount", "channel"]]  # no label
        spine.to_parquet(d / "spine.parquet", index=False)
        scored = fs.score_spine(f"{MODEL}:1", d / "spine.parquet", as_of=td.read_at)
        yield engine, d, td, test, scored
    finally:
        _drop_clone(engine, d)


def _same(a, b) -> bool:
    if a is None or (isinstance(a, float) and np.isnan(a)):
        return b is None or (isinstance(b, float) and np.isnan(b))
    if isinstance(a, float) or isinstance(b, float):
        return b is not None and abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(a)))
    return a == b


def test_score_spine_features_equal_the_training_dataset(monitored):
    """Unlabelled rows scored on a file spine get exactly the point-in-time features the training path joined."""
    _, d, td, test, scored = monitored
    assert len(scored) == len(test) > 100
    assert "is_fraud" not in scored.columns and scored["row_id"].is_unique
    features = [f["name"] for f in td.features]
    ref = test.set_index("transaction_id")
    mismatches = [(r["transaction_id"], f) for r in scored.to_dict(orient="records") for f in features
                  if not _same(ref.at[r["transaction_id"], f], r[f])]
    assert not mismatches, mismatches[:5]
    # the model answers as it does on the training rows
    model = FeatureStore(d).models.get(f"{MODEL}:1")
    expected = pd.Series(model.predict_proba(test)[:, 1], index=test["transaction_id"])
    assert np.allclose(scored["score"].to_numpy(), expected.loc[scored["transaction_id"]].to_numpy())


def test_predictions_are_logged(monitored):
    _, d, td, _, scored = monitored
    logged = read_predictions(d / ".fs", feature_view=FV, model=MODEL)
    assert len(logged) == len(scored)
    assert {r["row_id"] for r in logged} == set(scored["row_id"])
    first = logged[0]
    assert first["v"] == 1 and first["model"] == f"{MODEL}:1" and first["training_dataset_version"] == 1
    assert set(first["entity"]) == set(KEYS) and set(first["features"]) == {f["name"] for f in td.features}
    row = scored.set_index("row_id").loc[first["row_id"]]
    assert abs(first["score"] - row["score"]) < 1e-12 and first["prediction"] == row["prediction"]


def _serve_log(d: Path, rows: list[dict], features: list[str], shift: bool) -> None:
    """Write served-vector log lines with the server's own writer (fs_cli.server.logs.ServedLog)."""
    log = ServedLog(d / ".fs" / "served_vectors")
    names = [*KEYS, *features]
    for i in range(0, len(rows), 25):
        batch = rows[i:i + 25]
        results = []
        for n in names:
            vals = [r[n] for r in batch]
            if shift and n == "tx_amount_30d":
                vals = [None if v is None else v * 4 + 100 for v in vals]
            if shift and n == "segment":
                vals = ["new_segment" for _ in vals]
            results.append({"values": vals, "statuses": ["PRESENT" if v is not None else "NULL_VALUE" for v in vals]})
        body = orjson.dumps({"metadata": {"feature_names": names}, "results": results}, default=str)
        log.submit(uuid.uuid4().hex, FV, {"fg_customer_transactions": 2}, body)
    log.close()


def test_monitor_flags_a_shifted_stream_and_not_an_unshifted_one(monitored):
    engine, d, td, test, _ = monitored
    features = [f["name"] for f in td.features]
    rows = test.replace({np.nan: None}).to_dict(orient="records")
    start = utcnow() - timedelta(seconds=1)
    _serve_log(d, rows, features, shift=False)
    mid = utcnow() + timedelta(milliseconds=1)
    while utcnow() <= mid:
        pass
    _serve_log(d, rows, features, shift=True)
    end = utcnow() + timedelta(seconds=1)
    fs = FeatureStore(d)

    calm = fs.monitor(FV, 1, since=start, until=mid, source="served")
    assert calm.vectors == len(rows) and calm.ok, [(f.feature, f.exceeded) for f in calm.features if f.exceeded]
    assert {f.status for f in calm.features} == {"pass"}

    batch = fs.monitor(FV, 1, since=start - timedelta(days=1), until=end, source="predicted")
    assert batch.vectors == len(rows) and batch.ok

    res = CliRunner().invoke(main, ["--project-dir", str(d), "monitor", FV, "--training-dataset", "1",
                                    "--since", mid.isoformat(sep=" "), "--until", end.isoformat(sep=" "),
                                    "--source", "served", "--json"])
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    assert set(out["drifted"]) == {"tx_amount_30d", "segment"} and out["vectors"] == len(rows)
    by = {f["feature"]: f for f in out["features"]}
    assert "psi" in by["tx_amount_30d"]["exceeded"] and "jensen_shannon" in by["segment"]["exceeded"]

    stored = fs.monitoring_results(FV, limit=1000)
    runs = {r["run_id"]: r for r in stored}
    assert len(runs) == 3 and len(stored) == 3 * len(features)
    drifted = sorted(r["feature"] for r in stored if r["status"] == "drift")
    assert drifted == ["segment", "tx_amount_30d"]
    assert {r["source"] for r in stored} == {"served", "predicted"}
    assert any(r["window_start"] is not None and abs((r["window_start"] - mid).total_seconds()) < 1e-3
               for r in stored)


def test_declared_thresholds_override_the_defaults():
    class FakeView:
        name = "v"
        spec = {"monitoring": {"psi": 0.2, "min_samples": 50}}

    th, min_samples = thresholds_of(FakeView())
    assert th["psi"] == 0.2 and th["ks_d"] == 0.25 and min_samples == 50
    FakeView.spec = {"monitoring": {"psii": 1}}
    with pytest.raises(Exception, match="psii"):
        thresholds_of(FakeView())


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_check_freshness_with_a_fixed_clock_and_a_webhook(monitored):
    _, d, _, _, _ = monitored
    yml = d / "models" / "feature_groups" / "_feature_groups.yml"
    text = yml.read_text()
    anchor = "          owner: crm-data@example.com\n"
    assert text.count(anchor) == 1
    yml.write_text(text.replace(anchor, anchor + "          freshness: {commit: 1d}\n"))
    fs = FeatureStore(d)
    last = max(c.commit_time for c in fs.commits("fg_customer_profile"))

    fresh = {(r.feature_group, r.target): r for r in fs.check_freshness(now=last + timedelta(hours=1))}
    assert fresh[("fg_customer_profile", "commit")].status == "fresh"
    assert fresh[("fg_customer_profile", "online")].status == "no target"
    assert fresh[("fg_customer_transactions", "commit")].status == "no target"

    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        ok = CliRunner().invoke(main, ["--project-dir", str(d), "check", "--now",
                                       (last + timedelta(hours=23)).isoformat(sep=" "), "--webhook", url, "--json"])
        assert ok.exit_code == 0, ok.output
        stale = CliRunner().invoke(main, ["--project-dir", str(d), "check", "--now",
                                          (last + timedelta(days=2)).isoformat(sep=" "), "--webhook", url, "--json"])
        assert stale.exit_code == 1, stale.output
    finally:
        server.shutdown()
        thread.join()
    assert [h["ok"] for h in _Hook.received[-2:]] == [True, False]
    failing = _Hook.received[-1]["failing"]
    assert [(f["feature_group"], f["target"], f["status"]) for f in failing] == [("fg_customer_profile", "commit",
                                                                                   "stale")]
    assert failing[0]["age_seconds"] == pytest.approx(2 * 86400)


# -- inference logs as data (fs_meta log tables, models/monitoring) ---------------------------------------------
def _all_served(d: Path) -> list[dict]:
    from fs_cli.monitoring.logs import read_served_vectors

    return read_served_vectors(d / ".fs", FV, KEYS)


def test_inference_logs_load_idempotently_and_dbt_models_read_them(monitored):
    from fs_cli.monitoring.logtables import COLUMNS
    from fs_cli.monitoring.scoring import _model_relation

    engine, d, td, _, _ = monitored
    fs = FeatureStore(d)
    with fs.project.warehouse(read_only=True) as wh:
        # the demo's `fs run` built models/monitoring before any log was loaded: their pre-hook made the tables,
        # with exactly the columns fs loads into
        for table, cols in COLUMNS.items():
            assert [c.lower() for c, _ in wh.describe(wh.relation("fs_meta", table))] == [c for c, _ in cols], table
    absent = 987654321  # an entity the store does not know: served with every feature missing
    _serve_log(d, [{**{k: absent for k in KEYS}, **{f["name"]: None for f in td.features}}],
               [f["name"] for f in td.features], shift=False)
    fs.sync_inference_logs()
    again = fs.sync_inference_logs()
    assert (again.predictions, again.served_vectors) == (0, 0)
    predicted = read_predictions(d / ".fs", feature_view=FV)
    served = _all_served(d)
    # a torn last line (a writer mid-append) is not loaded until it is complete
    pfile = sorted((d / ".fs" / "predictions").glob("predictions-*.jsonl"))[0]
    line = orjson.dumps({"v": 1, "logged_at": "2026-02-01T00:00:00Z", "row_id": "torn-row", "model": f"{MODEL}:1",
                         "feature_view": FV, "entity": {"customer_id": 1}, "features": {"age_years": 40},
                         "prediction": 1, "score": 0.5})
    with open(pfile, "ab") as fh:
        fh.write(line[:20])
    assert fs.sync_inference_logs().predictions == 0
    with open(pfile, "ab") as fh:
        fh.write(line[20:] + b"\n")
    assert fs.sync_inference_logs().predictions == 1
    assert fs.sync_inference_logs().predictions == 0

    res = fs.project.dbt(["build", "--select", "path:models/monitoring"])
    assert res.success
    with fs.project.warehouse(read_only=True) as wh:
        rel = {m: _model_relation(fs.project, m) for m in ("mon_predictions", "mon_served_vectors",
                                                            "mon_feature_values", "mon_feature_daily")}
        assert wh.scalar(f"select count(*) from {rel['mon_predictions']}") == len(predicted) + 1
        assert wh.scalar(f"select count(distinct row_id) from {rel['mon_predictions']}") == len(predicted) + 1
        assert wh.scalar(f"select count(*) from {rel['mon_served_vectors']}") == len(served)
        # every logged feature value once, as a number where it is one (oracle: the JSONL read in Python)
        expected = {(r["row_id"], f): v for r in predicted for f, v in r["features"].items()}
        got = {(r[0], r[1]): (r[2], r[3]) for r in wh.fetchall(
            f"select row_id, feature, value_text, value_number from {rel['mon_feature_values']} "
            "where source = 'predicted' and row_id <> 'torn-row'")}
        assert set(got) == set(expected)
        for key, v in expected.items():
            text, num = got[key]
            assert (text is None) == (v is None), key
            if isinstance(v, int | float) and not isinstance(v, bool):
                assert num == pytest.approx(float(v), rel=1e-12), key
        n_served_features = sum(len(r["features"]) for r in served)
        assert wh.scalar(f"select sum(n_vectors) from {rel['mon_feature_daily']} where source = 'served'") == \
            n_served_features
        # the vector served for the unknown entity has every feature missing, and no other vector is its
        absent_rows = wh.fetchall(f"select v.value_text from {rel['mon_feature_values']} v join "
                                  f"{rel['mon_served_vectors']} s on s.row_id = v.row_id "
                                  f"where s.entity like '%\"customer_id\":{absent},%'")
        assert len(absent_rows) == len(td.features) and {r[0] for r in absent_rows} == {None}


# -- concept drift ---------------------------------------------------------------------------------------------
def _labels_for(scored: pd.DataFrame, test: pd.DataFrame, flip_after=None) -> pd.DataFrame:
    truth = test.set_index("transaction_id")["is_fraud"]
    labels = scored[[*KEYS, "transaction_at", "transaction_id", "channel"]].copy()
    labels["is_fraud"] = truth.loc[labels["transaction_id"]].to_numpy()
    if flip_after is not None:  # the label relationship changes: the model's cues now point the other way
        late = labels["transaction_at"] >= flip_after
        labels.loc[late, "is_fraud"] = (~labels.loc[late, "is_fraud"].astype(bool)).astype(labels["is_fraud"].dtype)
    return labels


def test_model_monitor_flags_a_label_shift_within_one_window(monitored):
    engine, d, td, test, scored = monitored
    fs = FeatureStore(d)
    t0 = scored["transaction_at"].min().normalize()
    days = int(np.ceil((scored["transaction_at"].max() - t0) / pd.Timedelta(days=1)))
    half = (days + 1) // 2
    cut = t0 + pd.Timedelta(days=half)

    # the true labels, found by entity keys + spine time; sliced by a label column (channel) and a logged feature
    _labels_for(scored, test).to_parquet(d / "labels_true.parquet", index=False)
    sliced = FeatureStore(d, vars={"fs_model_slices": {MODEL: ["channel", "segment"]}})
    calm = sliced.monitor_model(f"{MODEL}:1", window=f"{half}d", labels=d / "labels_true.parquet", since=t0)
    assert calm.labelled == len(scored) and calm.ok, [(w.start, w.metrics.get("auc"), w.checks) for w in calm.windows]
    assert [w.status for w in calm.windows] == ["pass", "pass"]
    assert [w.start for w in calm.windows] == [t0.to_pydatetime(), cut.to_pydatetime()]
    # oracle: the window's metrics and one slice's, recomputed from the scored frame with sklearn
    from sklearn.metrics import accuracy_score, roc_auc_score

    first = scored[scored["transaction_at"] < cut].merge(test[["transaction_id", "is_fraud"]], on="transaction_id")
    w0 = calm.windows[0]
    assert w0.n == len(first)
    assert w0.metrics["auc"] == pytest.approx(roc_auc_score(first["is_fraud"], first["score"]), abs=1e-12)
    assert w0.metrics["accuracy"] == pytest.approx(accuracy_score(first["is_fraud"], first["prediction"]), abs=1e-12)
    for column in ("channel", "segment"):
        per = [s for s in w0.slices if s["column"] == column]
        assert sum(s["n"] for s in per) == w0.n
        biggest = max(per, key=lambda s: s["n"])
        part = first[first[column].astype(str) == biggest["slice"]]
        assert biggest["n"] == len(part)
        assert biggest["accuracy"] == pytest.approx(accuracy_score(part["is_fraud"], part["prediction"]), abs=1e-12)
    stored = [r for r in sliced.model_monitoring(f"{MODEL}:1") if r["run_id"] == calm.run_id]
    overall = {(r["window_start"], r["metric"]): r for r in stored if r["slice_column"] is None}
    assert overall[(t0.to_pydatetime(), "auc")]["status"] == "pass"
    assert overall[(t0.to_pydatetime(), "auc")]["value"] == pytest.approx(w0.metrics["auc"])
    assert overall[(t0.to_pydatetime(), "auc")]["limit_min"] == pytest.approx(calm.baseline["auc"] - 0.1)
    assert {r["slice_column"] for r in stored} == {None, "channel", "segment"}

    _labels_for(scored, test, flip_after=cut).to_parquet(d / "labels_shifted.parquet", index=False)
    res = CliRunner().invoke(main, ["--project-dir", str(d), "model", "monitor", f"{MODEL}:1", "--window",
                                    f"{half}d", "--since", str(t0), "--labels", str(d / "labels_shifted.parquet"),
                                    "--json"])
    assert res.exit_code == 1, res.output
    out = json.loads(res.stdout)
    assert [w["status"] for w in out["windows"]] == ["pass", "fail"]
    assert [c["metric"] for c in out["windows"][1]["checks"] if not c["passed"]] == ["auc"]

    # joined by row_id (the prediction log's own id) instead of keys + time: the same verdict
    by_id = _labels_for(scored, test, flip_after=cut).assign(row_id=scored["row_id"].to_numpy())
    by_id[["row_id", "is_fraud"]].to_parquet(d / "labels_by_id.parquet", index=False)
    again = fs.monitor_model(f"{MODEL}:1", window=f"{half}d", labels=d / "labels_by_id.parquet", since=t0,
                             store=False)
    assert again.labelled == len(scored) and [w.status for w in again.windows] == ["pass", "fail"]


# -- the HTML report, rendered by a real browser -----------------------------------------------------------------
def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        missing("chromium", "no chromium on PATH (Debian: apt-get install -y chromium)")
    return exe


class _Dom(HTMLParser):
    """Per <figure>: its caption and the counts of svg, rect, path elements inside."""

    def __init__(self):
        super().__init__()
        self.figures: list[dict] = []
        self.scripts = 0
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts += 1
        if tag == "figure":
            self.figures.append({"caption": "", "svg": 0, "rect": 0, "path": 0})
        elif tag == "figcaption":
            self._in_caption = True
        elif tag in ("svg", "rect", "path") and self.figures:
            self.figures[-1][tag] += 1

    def handle_endtag(self, tag):
        if tag == "figcaption":
            self._in_caption = False

    def handle_data(self, data):
        if self._in_caption and self.figures:
            self.figures[-1]["caption"] += data.strip()


def test_html_report_renders_its_charts_in_headless_chromium(monitored):
    engine, d, td, test, scored = monitored
    exe = _chromium()
    fs = FeatureStore(d)
    fs.monitor(FV, 1, since=utcnow() - timedelta(days=1), source="predicted")  # drift over time: >= 1 run
    t0 = scored["transaction_at"].min().normalize()
    _labels_for(scored, test).to_parquet(d / "labels_report.parquet", index=False)
    out = d / "report" / "monitoring.html"
    res = CliRunner().invoke(main, ["--project-dir", str(d), "model", "monitor", f"{MODEL}:1", "--window", "30d",
                                    "--since", str(t0), "--labels", str(d / "labels_report.parquet"),
                                    "--html", str(out)])
    assert res.exit_code in (0, 1), res.output
    text = out.read_text()
    # self-contained: nothing to fetch at view time
    assert "<script" not in text and "<link" not in text and not re.search(r"""(src|href)=["']?https?:""", text)

    proc = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", out.as_uri()],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Dom()
    dom.feed(proc.stdout)
    by_caption = {f["caption"]: f for f in dom.figures}
    features = [f["name"] for f in td.features]
    # one distribution overlay per feature of the training dataset, drawn with bars
    assert set(features) <= set(by_caption), set(features) - set(by_caption)
    drawn = [f for f in features if by_caption[f]["svg"] == 1 and by_caption[f]["rect"] >= 2]
    assert len(drawn) == len(features)
    # drift over time (a line per feature) and the model's metrics per window
    assert by_caption["psi (numeric features)"]["path"] >= 1
    assert by_caption["auc"]["svg"] == 1 and by_caption["auc"]["path"] >= 1
