"""Monitoring (issue 12): batch scoring on any spine, inference logs, model feature drift, freshness checks.

Each engine gets its own clone of the session's demo (DuckDB: a copy of the project and its .fs/; Postgres: a
database created from the demo's as template), so the model registered here never shows up in other modules."""

from __future__ import annotations

import json
import re
import shutil
import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import joblib
import numpy as np
import orjson
import pandas as pd
import pytest
from click.testing import CliRunner
from conftest import ENGINES
from services import pg_connect

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
    shutil.copytree(src, dst)
    if engine == "postgres":
        prof = dst / "profiles.yml"
        old = re.search(r"env_var\('FS_PG_DATABASE', '([^']+)'\)", prof.read_text()).group(1)
        new = f"fs_test_mon_{uuid.uuid4().hex[:10]}"
        con = pg_connect()
        with con.cursor() as cur:
            cur.execute(f'create database "{new}" template "{old}"')
        con.close()
        prof.write_text(prof.read_text().replace(f"'FS_PG_DATABASE', '{old}'", f"'FS_PG_DATABASE', '{new}'"))
    return dst


def _drop_clone(engine: str, d: Path) -> None:
    if engine == "postgres":
        name = re.search(r"env_var\('FS_PG_DATABASE', '([^']+)'\)", (d / "profiles.yml").read_text()).group(1)
        con = pg_connect()
        with con.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        con.close()


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
        fs.models.register(MODEL, d / "m.joblib", td.ref, meta={"owner": "t", "intended_use": "test"})
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
