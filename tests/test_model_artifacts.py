"""Model artifacts never run code when loaded unless registration explicitly trusted them: skops files are loaded with
only the types recorded at registration, pickles are refused without trust_pickle / --trust-pickle, and each version
records its format and what was trusted (issue 17, item 13)."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from click.testing import CliRunner
from registry_support import (
    crafted_frame,
    engine_database,
    registry_project,
    save_model,
    train_pipeline,
    write_td,
)

from fs_cli import FeatureStore
from fs_cli.cli import main
from fs_cli.errors import FeatureStoreError
from fs_cli.registry import model_frame
from fs_cli.registry.blobs import BlobStore

INPUTS = ["x1", "x2", "cat"]
TREE = "sklearn.tree._tree.Tree"


class MarkerPickle:
    """A pickle payload: unpickling it writes a marker file (what any attacker's __reduce__ could do instead)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pickle code ran')",))


class MarkerState:
    """A skops payload: building it (skops calls __setstate__) writes a marker file. Not a type skops trusts."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __setstate__(self, state):
        Path(state["marker"]).write_text("skops constructed an untrusted type")
        self.__dict__.update(state)


@pytest.fixture(scope="module")
def df():
    return crafted_frame()


@pytest.fixture
def proj(tmp_path, df) -> Iterator[Path]:
    with engine_database("duckdb") as db:
        d = registry_project(tmp_path / "proj", "duckdb", db)
        write_td(d, df)
        yield d


@pytest.fixture
def proj_on_engine(tmp_path, df, engine) -> Iterator[Path]:
    with engine_database(engine) as db:
        d = registry_project(tmp_path / "proj", engine, db)
        write_td(d, df)
        yield d


def _cli(proj: Path, *args: str):
    return CliRunner().invoke(main, ["--project-dir", str(proj), "model", *args], catch_exceptions=False)


def _flat(text: str) -> str:
    return " ".join(text.split())


def _evil_skops(tmp_path: Path, df, marker: Path) -> bytes:
    """A working scikit-learn model whose skops file also holds a MarkerState: an artifact that would pass
    validation, with a payload that runs if anything ever constructs it."""
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression().fit(df[["x1", "x2"]], df.is_fraud)
    lr.payload_ = MarkerState(marker)
    data = sio.dumps(lr)
    assert f"{__name__}.MarkerState" in sio.get_untrusted_types(data=data)
    return data


# -- pickles ------------------------------------------------------------------------------------------------------
def test_a_malicious_pickle_is_refused_at_registration_and_never_runs(proj, tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(MarkerPickle(marker))
    pickle.loads(payload)  # the payload is live: unpickling it writes the marker
    assert marker.read_text() == "pickle code ran"
    marker.unlink()
    reg = FeatureStore(proj).models
    for name in ("evil.joblib", "evil.pkl", "evil.pickle"):
        (tmp_path / name).write_bytes(payload)
        with pytest.raises(FeatureStoreError, match="is a pickle") as e:
            reg.register("fraud", tmp_path / name, "fv_test:1")
        assert "--trust-pickle" in e.value.fix and "trust_pickle=True" in e.value.fix and "skops" in e.value.fix
    res = _cli(proj, "register", "fraud", "--path", str(tmp_path / "evil.joblib"), "--training-dataset", "fv_test:1")
    assert res.exit_code == 2 and "--trust-pickle" in _flat(res.output)
    # a pickle named .skops is read as a zip, never unpickled
    (tmp_path / "evil.skops").write_bytes(payload)
    with pytest.raises(FeatureStoreError, match="cannot read the skops artifact"):
        reg.register("fraud", tmp_path / "evil.skops", "fv_test:1")
    assert not marker.exists()
    assert reg.list() == [] and not (proj / ".fs" / "models" / "blobs").exists()  # nothing stored either


def test_a_trusted_pickle_registers_and_records_the_trust(proj, df, tmp_path):
    path = train_pipeline(df, tmp_path / "m.joblib")
    res = _cli(proj, "register", "fraud", "--path", str(path), "--training-dataset", "fv_test:1", "--trust-pickle",
               "--json")
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)["model"]
    assert m["artifact_format"] == "joblib"
    assert m["artifact_trust"] == {"format": "joblib", "executes_code": True, "trust_pickle": True}
    shown = _flat(_cli(proj, "show", "fraud:1").stdout)
    assert "joblib (pickle: runs code on load; trusted explicitly at registration)" in shown
    test = df[df.split == "test"]
    got = FeatureStore(proj).models.get("fraud:1").predict_proba(test)
    import joblib

    assert np.array_equal(got, joblib.load(path).predict_proba(model_frame(test, INPUTS)))


# -- skops --------------------------------------------------------------------------------------------------------
def test_a_skops_model_round_trips_and_scores_identically(proj_on_engine, df, tmp_path, engine):
    path = train_pipeline(df, tmp_path / "m.skops")
    original = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    fs = FeatureStore(proj_on_engine)
    m = fs.models.register("fraud", path, "fv_test:1")  # numpy.dtype only: no trust needed
    assert m.artifact_format == "skops"
    assert m.artifact_trust == {"format": "skops", "executes_code": False, "trusted_types": ["numpy.dtype"]}
    loaded = fs.models.get("fraud:1")
    test = df[df.split == "test"]
    X = model_frame(test, INPUTS)
    assert np.array_equal(loaded.predict_proba(test), original.predict_proba(X))
    assert np.array_equal(loaded.predict(test), original.predict(X))
    # the format is in the registry: the SDK, `fs model show` and the SQL view
    shown = _cli(proj_on_engine, "show", "fraud:1", "--json")
    assert json.loads(shown.stdout)["artifact_safety"].startswith("skops (no code runs on load")
    assert "skops (no code runs on load" in _flat(_cli(proj_on_engine, "show", "fraud:1").stdout)
    with fs.project.warehouse(read_only=True) as wh:
        assert wh.fetchall("select name, version, artifact_format from fs_meta.model_registry") == [
            ("fraud", 1, "skops")]
    # validation and batch scoring load it the same way
    assert fs.models.validate("fraud:1").metrics["auc"] > 0.6


def test_a_tree_model_needs_its_tree_type_trusted(proj, df, tmp_path):
    from sklearn.tree import DecisionTreeClassifier

    tree = DecisionTreeClassifier(max_depth=3, random_state=0).fit(df[["x1", "x2"]], df.is_fraud)
    path = save_model(tree, tmp_path / "tree.skops")
    reg = FeatureStore(proj).models
    with pytest.raises(FeatureStoreError, match=f"does not trust by default: {TREE}") as e:
        reg.register("tree", path, "fv_test:1")
    assert f"--trust-type {TREE}" in e.value.fix and f"trusted_types=['{TREE}']" in e.value.fix
    assert reg.list() == []
    res = _cli(proj, "register", "tree", "--path", str(path), "--training-dataset", "fv_test:1",
               "--trust-type", TREE, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["model"]["artifact_trust"]["trusted_types"] == [TREE]
    test = df[df.split == "test"]
    assert np.array_equal(reg.get("tree:1").predict_proba(test), tree.predict_proba(test[["x1", "x2"]]))
    assert reg.register("tree", path, "fv_test:1", trusted_types=TREE).artifact_trust["trusted_types"] == [TREE]


def test_an_untrusted_type_in_a_skops_file_is_refused_at_registration(proj, df, tmp_path):
    marker = tmp_path / "built"
    data = _evil_skops(tmp_path, df, marker)
    sio.loads(data, trusted=sio.get_untrusted_types(data=data))  # the payload is live when trusted
    assert marker.exists()
    marker.unlink()
    (tmp_path / "evil.skops").write_bytes(data)
    reg = FeatureStore(proj).models
    with pytest.raises(FeatureStoreError, match=f"does not trust by default: {__name__}.MarkerState"):
        reg.register("fraud", tmp_path / "evil.skops", "fv_test:1")
    assert not marker.exists() and reg.list() == []


def test_a_tampered_skops_artifact_is_refused_at_load(proj, df, tmp_path):
    """The registered blob is swapped for a skops file with an untrusted type: refused by the hash check; and even
    when the attacker also rewrites the version's hash row, refused by the types recorded at registration. The
    payload never runs."""
    fs = FeatureStore(proj)
    m = fs.models.register("fraud", train_pipeline(df, tmp_path / "m.skops"), "fv_test:1")
    marker = tmp_path / "built"
    evil = _evil_skops(tmp_path, df, marker)
    blob = fs.models.blobs.path(m.artifact_sha256)
    os.chmod(blob, 0o644)
    blob.write_bytes(evil)
    with pytest.raises(FeatureStoreError, match="INTEGRITY ERROR"):
        fs.models.get("fraud:1")
    # the attacker controls the metadata too: a content-addressed blob for the evil bytes and a forged row
    digest, relpath = BlobStore(fs.models.config.store_dir).put(evil)
    with fs.project.warehouse() as wh:
        wh.execute("update fs_meta.model_versions set artifact_sha256 = ?, artifact_path = ? where name = ?",
                   [digest, relpath, "fraud"])
    with pytest.raises(FeatureStoreError, match="not trusted when it was registered") as e:
        fs.models.get("fraud:1")
    assert f"{__name__}.MarkerState" in e.value.message
    with pytest.raises(FeatureStoreError, match="not trusted when it was registered"):
        fs.models.validate("fraud:1")
    assert not marker.exists()


# -- registries created before formats were recorded ------------------------------------------------------------
def test_an_older_registry_is_migrated_and_its_pickles_still_load(proj_on_engine, df, tmp_path):
    """A warehouse whose model_versions has no artifact_trust column and whose view has no artifact_format (as
    created before this change): the next write adds both; its pickle versions load as before, marked legacy."""
    from fs_cli.registry import schema

    fs = FeatureStore(proj_on_engine)
    path = train_pipeline(df, tmp_path / "old.joblib")
    fs.models.register("fraud", path, "fv_test:1", trust_pickle=True)
    with fs.project.warehouse() as wh:
        new_view = schema._view(wh)
        wh.execute(f"drop view {schema.REGISTRY_VIEW}")
        wh.execute(f"alter table {schema.VERSIONS} drop column artifact_trust")
        wh.execute(new_view.replace(", v.artifact_format", ""))
        assert "artifact_format" not in {c for c, _ in wh.describe(schema.REGISTRY_VIEW)}
    # before any write: read-only commands work on the old registry (the missing column reads as NULL)
    assert [m.ref for m in fs.models.list()] == ["fraud:1"] and fs.models.info("fraud:1").artifact_trust is None
    fs.models.register("fraud", train_pipeline(df, tmp_path / "new.skops"), "fv_test:1")  # migrates
    with fs.project.warehouse(read_only=True) as wh:
        assert wh.fetchall(f"select version, artifact_format from {schema.REGISTRY_VIEW} order by version") == [
            (1, "joblib"), (2, "skops")]
    old = fs.models.info("fraud:1")
    assert old.artifact_trust is None and "registered before trust was recorded" in old.artifact_safety
    test = df[df.split == "test"]
    assert np.array_equal(fs.models.get("fraud:1").predict_proba(test), fs.models.get("fraud:2").predict_proba(test))
