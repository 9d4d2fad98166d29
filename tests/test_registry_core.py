"""Model registry: immutability, hash verification, aliases and their history, tombstones, governance, search.
Every test runs on each engine (the registry tables live in the target warehouse: DuckDB or Postgres)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from registry_support import (
    crafted_frame,
    engine_database,
    registry_project,
    save_model,
    set_project_var,
    text_type,
    train_pipeline,
    write_td,
)

from fs_cli import FeatureStore
from fs_cli.cli import main
from fs_cli.errors import FeatureStoreError


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("artifacts")
    df = crafted_frame()
    return {"df": df, "good": train_pipeline(df, d / "good.skops"),
            "fragile": train_pipeline(df, d / "fragile.skops", robust=False),
            "x1_only": train_pipeline(df, d / "x1_only.skops", features=("x1",))}


@pytest.fixture
def proj(tmp_path, artifacts, engine) -> Iterator[Path]:
    with engine_database(engine) as db:
        d = registry_project(tmp_path / "proj", engine, db)
        write_td(d, artifacts["df"])
        yield d


def _blobs(d: Path) -> list[Path]:
    return sorted(p for p in (d / ".fs" / "models" / "blobs").rglob("*") if p.is_file())


def test_reregister_identical_bytes_is_a_new_version_on_the_same_blob(proj, artifacts, engine):
    reg = FeatureStore(proj).models
    m1 = reg.register("fraud", artifacts["good"], "fv_test:1", metrics={"auc": 0.7})
    m2 = reg.register("fraud", artifacts["good"], "fv_test:1", metrics={"auc": 0.7})
    assert (m1.version, m2.version) == (1, 2)
    assert m1.artifact_sha256 == m2.artifact_sha256 and m1.artifact_path == m2.artifact_path
    blobs = _blobs(proj)
    assert len(blobs) == 1 and blobs[0].name == m1.artifact_sha256
    assert stat.S_IMODE(blobs[0].stat().st_mode) & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) == 0
    assert m1.input_columns == ["x1", "x2", "cat"]  # derived from the training dataset, not typed
    assert m1.input_schema[2] == {"name": "cat", "type": text_type(engine)}
    assert m1.output_schema["classes"] == [0, 1] and m1.output_schema["label"] == "is_fraud"
    assert m1.fg_commits[0]["commit_id"] == 1 and m1.training_dataset_hash == "hash-fv_test-1"
    # a different model gets its own blob; the first blob is untouched
    m3 = reg.register("fraud", artifacts["x1_only"], "fv_test:1")
    assert m3.version == 3 and m3.input_columns == ["x1"] and len(_blobs(proj)) == 2
    assert blobs[0].read_bytes() == artifacts["good"].read_bytes()
    # the registry is plain SQL
    with reg.project.warehouse(read_only=True) as wh:
        assert wh.engine == engine
        rows = wh.fetchall("select version, artifact_sha256, cast(metrics as json)->>'auc', status "
                           "from fs_meta.model_registry where name = 'fraud' order by version")
    assert [r[0] for r in rows] == [1, 2, 3] and rows[0][1] == rows[1][1] != rows[2][1]
    assert rows[0][2] == "0.7" and {r[3] for r in rows} == {"active"}


def test_tampered_blob_fails_loudly(proj, artifacts):
    fs = FeatureStore(proj)
    m = fs.models.register("fraud", artifacts["good"], "fv_test:1")
    assert fs.models.get("fraud:1").predict(artifacts["df"].head(4)).shape == (4,)
    blob = _blobs(proj)[0]
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(FeatureStoreError, match="INTEGRITY ERROR.*modified after registration") as e:
        fs.models.get("fraud")
    assert m.artifact_sha256 in str(e.value)
    with pytest.raises(FeatureStoreError, match="INTEGRITY"):
        fs.models.validate("fraud:1")
    res = CliRunner().invoke(main, ["--project-dir", str(proj), "model", "show", "fraud:1", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["artifact_integrity"].startswith("FAILED")
    # re-registering the genuine bytes does not paper over the corrupted blob
    with pytest.raises(FeatureStoreError, match="INTEGRITY"):
        fs.models.register("fraud", artifacts["good"], "fv_test:1")
    blob.unlink()
    with pytest.raises(FeatureStoreError, match="missing"):
        fs.models.get("fraud:1")


def test_alias_history_and_validation_gate(proj, artifacts):
    reg = FeatureStore(proj).models
    for _ in range(2):
        reg.register("fraud", artifacts["good"], "fv_test:1", validate=True)
    reg.register("fraud", artifacts["fragile"], "fv_test:1")
    assert reg.alias("fraud", 1, "champion")["action"] == "set"
    assert reg.alias("fraud", 2, "champion", reason="better")["action"] == "move"
    assert reg.alias("fraud", 2, "champion")["action"] == "unchanged"  # no change, nothing logged
    reg.alias("fraud", 1, "challenger")
    with pytest.raises(FeatureStoreError, match="not been validated"):
        reg.alias("fraud", 3, "challenger")
    assert not reg.validate("fraud:3").passed  # crashes on NULLs
    with pytest.raises(FeatureStoreError, match="failed its latest validation"):
        reg.alias("fraud", 3, "challenger")
    reg.alias("fraud", 3, "challenger", force=True, reason="shadow test")
    reg.unalias("fraud", "challenger")
    hist = reg.alias_history("fraud")
    assert [(h["alias"], h["action"], h["old_version"], h["new_version"]) for h in hist] == [
        ("champion", "set", None, 1), ("champion", "move", 1, 2), ("challenger", "set", None, 1),
        ("challenger", "move", 1, 3), ("challenger", "remove", 3, None)]
    assert hist[1]["reason"] == "better" and hist[3]["reason"] == "forced (validation: failed): shadow test"
    assert [h["seq"] for h in reg.alias_history("fraud", "challenger")] == [1, 2, 3]
    assert reg.get("fraud@champion").info.version == 2
    assert reg.info("fraud", alias="champion").aliases == ["champion"]
    with pytest.raises(FeatureStoreError, match="no alias 'challenger'"):
        reg.get("fraud@challenger")
    with pytest.raises(FeatureStoreError, match="no version 9"):
        reg.alias("fraud", 9, "champion")
    with pytest.raises(FeatureStoreError, match="reserved"):
        reg.alias("fraud", 1, "latest")
    with pytest.raises(FeatureStoreError, match="invalid alias"):
        reg.alias("fraud", 1, "9lives")


def test_tombstone_keeps_bytes_and_blocks_use(proj, artifacts):
    reg = FeatureStore(proj).models
    reg.register("fraud", artifacts["good"], "fv_test:1", metrics={"auc": 0.9}, validate=True)
    reg.register("fraud", artifacts["x1_only"], "fv_test:1", metrics={"auc": 0.6}, validate=True)
    reg.alias("fraud", 1, "champion")
    with pytest.raises(FeatureStoreError, match="target of alias"):
        reg.delete("fraud:1")
    reg.alias("fraud", 2, "champion")
    m = reg.delete("fraud:1", reason="trained on leaked labels")
    assert m.status == "deleted" and m.deleted_reason == "trained on leaked labels"
    assert len(_blobs(proj)) == 2  # bytes stay
    with pytest.raises(FeatureStoreError, match="was deleted"):
        reg.get("fraud:1")
    assert reg.get("fraud:1", allow_deleted=True).info.version == 1
    assert reg.info("fraud").version == 2  # the latest active
    assert reg.best("fraud", "auc")[0].version == 2  # deleted versions never win
    with pytest.raises(FeatureStoreError, match="already deleted"):
        reg.delete("fraud:1")
    with pytest.raises(FeatureStoreError, match="deleted; an alias cannot"):
        reg.alias("fraud", 1, "champion")
    assert [(x.version, x.status) for x in reg.list("fraud")] == [(1, "deleted"), (2, "active")]


def test_best_uses_registered_then_validated_metrics(proj, artifacts):
    reg = FeatureStore(proj).models
    reg.register("fraud", artifacts["good"], "fv_test:1", metrics={"auc": 0.71, "log_loss": 0.5})
    reg.register("fraud", artifacts["x1_only"], "fv_test:1", metrics={"auc": 0.75, "log_loss": 0.6})
    assert reg.best("fraud", "auc", max=True)[0].version == 2
    assert reg.best("fraud", "log_loss", max=False) [0].version == 1
    with pytest.raises(FeatureStoreError, match="no version of fraud has metric 'f1'"):
        reg.best("fraud", "f1")
    r = reg.validate("fraud:1")
    assert reg.best("fraud", "f1") == (reg.info("fraud:1"), r.metrics["f1"])


def test_required_metadata_is_enforced(proj, artifacts):
    set_project_var(proj, "fs_model_required_meta", ["owner", "intended_use"])
    reg = FeatureStore(proj).models
    with pytest.raises(FeatureStoreError, match="missing: owner, intended_use") as e:
        reg.register("fraud", artifacts["good"], "fv_test:1")
    assert "--meta owner=... --meta intended_use=..." in e.value.fix
    with pytest.raises(FeatureStoreError, match="missing: intended_use"):
        reg.register("fraud", artifacts["good"], "fv_test:1", meta={"owner": "risk", "intended_use": "  "})
    assert reg.list() == []  # nothing was registered, not even a blob
    assert _blobs(proj) == []
    m = reg.register("fraud", artifacts["good"], "fv_test:1",
                     meta={"owner": "risk", "intended_use": "card fraud triage"}, tags={"team": "risk"})
    assert m.meta == {"owner": "risk", "intended_use": "card fraud triage"}
    res = CliRunner().invoke(main, ["--project-dir", str(proj), "model", "register", "fraud", "--path",
                                    str(artifacts["good"]), "--training-dataset", "fv_test:1", "--meta", "owner=x"])
    assert res.exit_code == 2 and "missing: intended_use" in " ".join(res.output.split())
    # metadata is searchable
    assert [x.ref for x in reg.list(meta={"owner": "risk"})] == ["fraud:1"]
    assert [x.ref for x in reg.list(text="triage")] == ["fraud:1"]
    assert reg.list(tags={"team": "other"}) == []


def test_registration_errors_are_clear(proj, artifacts, tmp_path):
    reg = FeatureStore(proj).models
    cases = [
        (dict(name="fraud", path=artifacts["good"], training_dataset="fv_test"), "not FEATURE_VIEW:VERSION"),
        (dict(name="fraud", path=artifacts["good"], training_dataset="fv_test:7"), "fv_test:7 does not exist"),
        (dict(name="fraud", path=tmp_path / "nope.skops", training_dataset="fv_test:1"), "does not exist"),
        (dict(name="bad name", path=artifacts["good"], training_dataset="fv_test:1"), "invalid model name"),
        (dict(name="fraud", path=artifacts["good"], training_dataset="fv_test:1", metrics="{auc: 1"), "not valid JSON"),
        (dict(name="fraud", path=artifacts["good"], training_dataset="fv_test:1", metrics={"auc": "high"}),
         "not a finite number"),
    ]
    txt = tmp_path / "model.txt"
    txt.write_text("hello")
    cases.append((dict(name="fraud", path=txt, training_dataset="fv_test:1"), "unsupported extension"))
    junk = tmp_path / "junk.skops"
    junk.write_bytes(b"not a zip")
    cases.append((dict(name="fraud", path=junk, training_dataset="fv_test:1"), "cannot read the skops artifact"))
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    other = LogisticRegression().fit(pd.DataFrame({"zzz": np.arange(10.0)}), np.arange(10) % 2)
    save_model(other, tmp_path / "other.skops")
    cases.append((dict(name="fraud", path=tmp_path / "other.skops", training_dataset="fv_test:1"),
                  "column\\(s\\) zzz that the training dataset does not have"))
    save_model(LogisticRegression(), tmp_path / "unfitted.skops")
    cases.append((dict(name="fraud", path=tmp_path / "unfitted.skops", training_dataset="fv_test:1"), "unfitted"))
    for kwargs, msg in cases:
        with pytest.raises(FeatureStoreError, match=msg) as e:
            reg.register(**kwargs)
        assert e.value.fix, kwargs
    assert reg.list() == []


def test_cli_json_listings(proj, artifacts):
    def fs(*args: str, code: int = 0):
        res = CliRunner().invoke(main, ["--project-dir", str(proj), "model", *args], catch_exceptions=False)
        assert res.exit_code == code, res.output
        return res

    out = json.loads(fs("register", "fraud", "--path", str(artifacts["good"]), "--training-dataset", "fv_test:1",
                        "--metrics", '{"auc": 0.8}', "--tag", "stage=dev", "--meta", "owner=me", "--validate",
                        "--json").stdout)
    assert out["model"]["version"] == 1 and out["validation"]["status"] == "passed"
    fs("register", "fraud", "--path", str(artifacts["fragile"]), "--training-dataset", "fv_test:1", "--validate",
       code=1)  # registered, but its validation fails -> non-zero exit
    fs("alias", "fraud", "1", "champion")
    rows = json.loads(fs("list", "--json").stdout)
    assert [(r["version"], r["aliases"], r["validation"]["status"]) for r in rows] == [
        (1, ["champion"], "passed"), (2, [], "failed")]
    shown = json.loads(fs("show", "fraud@champion", "--json").stdout)
    assert shown["version"] == 1 and shown["artifact_integrity"] == "verified"
    assert shown["alias_history"][0]["new_version"] == 1 and shown["validations"][0]["status"] == "passed"
    assert json.loads(fs("best", "fraud", "--metric", "auc", "--json").stdout)["version"] == 1
    assert json.loads(fs("history", "fraud", "--json").stdout)[0]["action"] == "set"
    assert "fraud" in fs("list").stdout and "verified" in fs("show", "fraud:1").stdout
    res = fs("show", "fraud@nope", code=2)
    assert "no alias 'nope'" in " ".join(res.output.split())


def test_concurrent_registrations_get_distinct_versions(proj, artifacts):
    from concurrent.futures import ThreadPoolExecutor

    reg = FeatureStore(proj).models
    reg.register("fraud", artifacts["good"], "fv_test:1")  # creates the tables
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: reg.register("fraud", artifacts["good"], "fv_test:1").version, range(4)))
    assert sorted(got) == [2, 3, 4, 5]
    assert [m.version for m in reg.list("fraud")] == [1, 2, 3, 4, 5] and len(_blobs(proj)) == 1


def test_inputs_may_be_request_time_columns_but_never_the_label(proj, artifacts, tmp_path):
    from sklearn.linear_model import LogisticRegression

    df = artifacts["df"]
    reg = FeatureStore(proj).models
    from sklearn.compose import make_column_transformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    spine_model = make_pipeline(make_column_transformer((OneHotEncoder(handle_unknown="ignore"), ["segment"]),
                                                        remainder="passthrough"),
                                LogisticRegression()).fit(df[["x1", "segment"]], df.is_fraud)
    save_model(spine_model, tmp_path / "spine.skops")
    m = reg.register("fraud", tmp_path / "spine.skops", "fv_test:1")  # segment: a spine column of this TD
    assert m.input_columns == ["x1", "segment"]
    leaky = LogisticRegression().fit(df[["x1", "is_fraud"]], df.is_fraud)
    save_model(leaky, tmp_path / "leaky.skops")
    with pytest.raises(FeatureStoreError, match="label column\\(s\\) is_fraud as input") as e:
        reg.register("fraud", tmp_path / "leaky.skops", "fv_test:1")
    assert "leakage" in e.value.fix
    keyed = LogisticRegression().fit(df[["x1", "row_id"]], df.is_fraud)
    save_model(keyed, tmp_path / "keyed.skops")
    with pytest.raises(FeatureStoreError, match="row_id"):
        reg.register("fraud", tmp_path / "keyed.skops", "fv_test:1")  # a key is not a model input
