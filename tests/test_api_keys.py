"""Scoped API keys (issue 17, item 12): keys stored hashed (mode 0600, the secret nowhere on disk), scopes over
feature views / feature groups / push / pii / metrics / the UI, 401 without a valid key and 403 outside the scope on
our endpoints and the Feast ones, revocation picked up without a restart, a bad key file refused at startup, and
FS_API_KEYS still working as full-access keys.

The decisions are unit-tested on fs_cli.access (no HTTP); the matrix goes through the in-process app over a real
SQLite store; one test runs a real `fs serve` process."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pyarrow as pa
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from online_support import BACKENDS, NOW, SPEC, cleanup, make_rows, make_store
from test_server_process import READY_DEADLINE_S, free_port, stop, wait_ready

from fs_cli import cli
from fs_cli.access import (
    Denied,
    KeyFileError,
    KeyRing,
    Scope,
    check_push,
    check_read,
    check_route,
    create_key,
    hash_secret,
    load_keys,
    revoke_key,
)
from fs_cli.online import FeatureSpec, FGSpec, FVSpec, materialize
from fs_cli.online.push import ColumnRule, PushSpec
from fs_cli.server import create_app

REPO = Path(__file__).resolve().parent.parent
PLAIN = "plain-full-access-key"
PERSON = FGSpec("fg_person", ("customer_id",), ("bigint",), "ts",
                (FeatureSpec("email", "varchar", pii=True), FeatureSpec("score", "double")), ttl_seconds=None)
VIEWS = {
    "customer_v1": FVSpec("customer_v1", ("fg_test:n", "fg_test:amount"), ("customer_id",)),
    "person_v1": FVSpec("person_v1", ("fg_person:email", "fg_person:score"), ("customer_id",)),
    "score_v1": FVSpec("score_v1", ("fg_person:score",), ("customer_id",)),
}
RULES = {"customer_id": ColumnRule("customer_id", "int", True), "event_time": ColumnRule("event_time", "timestamp", True),
         "created": ColumnRule("created", "timestamp", False),
         "amount": ColumnRule("amount", "float", False), "label": ColumnRule("label", "str", False),
         "n": ColumnRule("n", "int", False)}
PERSON_RULES = {"customer_id": ColumnRule("customer_id", "int", True), "ts": ColumnRule("ts", "timestamp", True),
                "email": ColumnRule("email", "str", False), "score": ColumnRule("score", "float", False)}


# -- the key file -------------------------------------------------------------------------------------------

def test_the_key_file_holds_hashes_never_secrets(tmp_path):
    path = tmp_path / "keys" / "api_keys.json"
    rec, secret = create_key(path, "fraud-model", feature_views=["customer_v1"], pii=True)
    _, other = create_key(path, "ingest", feature_groups=["fg_test"], push=True)
    raw = path.read_text()
    assert secret not in raw and other not in raw and secret[4:] not in raw  # not even without its prefix
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(raw)
    assert [k["name"] for k in doc["keys"]] == ["fraud-model", "ingest"]
    assert doc["keys"][0]["hash"] == hash_secret(secret) and rec.hash == hash_secret(secret)
    assert doc["keys"][0]["created_at"].endswith("Z") and doc["keys"][0]["pii"] is True
    assert doc["keys"][1]["push"] == ["fg_test"] and doc["keys"][1]["feature_groups"] == ["fg_test"]
    assert len(secret) >= 40 and secret != other  # 32 random bytes, url-safe
    assert not [p for p in path.parent.iterdir() if p.name != "api_keys.json"]  # no temporary file left behind
    with pytest.raises(Exception, match="exists already"):
        create_key(path, "ingest", feature_groups=["fg_test"])
    with pytest.raises(Exception, match="would allow nothing"):
        create_key(path, "empty")
    with pytest.raises(Exception, match="--push needs --feature-group"):
        create_key(path, "p", feature_views=["customer_v1"], push=True)
    revoke_key(path, "fraud-model")
    assert [r.name for r in load_keys(path)] == ["ingest"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(Exception, match="no API key named 'fraud-model'"):
        revoke_key(path, "fraud-model")


@pytest.mark.parametrize("content,words", [
    ("{not json", "not valid JSON"),
    ('{"keys": {}}', "`keys` list"),
    ('{"keys": [{"name": "a", "hash": "my-plain-secret"}]}', "`hash` must be 'sha256:'"),
    ('{"keys": [{"name": "a", "hash": "sha256:' + "0" * 64 + '", "feature_view": ["x"]}]}', "unknown field"),
    ('{"keys": [{"name": "a", "hash": "sha256:' + "0" * 64 + '", "pii": "yes"}]}', "`pii` must be true or false"),
    ('{"keys": [{"name": "a", "hash": "sha256:' + "0" * 64 + '"}, {"name": "a", "hash": "sha256:' + "1" * 64
     + '"}]}', "appear twice"),
])
def test_a_bad_key_file_is_a_clear_error_at_startup(tmp_path, content, words):
    path = tmp_path / "api_keys.json"
    path.write_text(content)
    st, _, _ = make_store("sqlite", tmp_path)
    try:
        with pytest.raises(KeyFileError, match=words) as e:
            create_app(st, api_keys="", api_keys_file=path)
        assert str(path) in e.value.message and e.value.fix
        with pytest.raises(KeyFileError, match="does not exist"):  # named explicitly but missing: not "keys off"
            create_app(st, api_keys="", api_keys_file=tmp_path / "missing.json")
    finally:
        cleanup(st)


# -- the decisions (no HTTP) ----------------------------------------------------------------------------------

def _views():
    return {n: v.features for n, v in VIEWS.items()}


def _pii(fg: str, feat: str) -> bool:
    return (fg, feat) == ("fg_person", "email")


def test_read_decisions():
    view_key = Scope("v", feature_views=frozenset({"customer_v1"}))
    check_read(view_key, view="customer_v1", view_refs=VIEWS["customer_v1"].features, views=_views, is_pii=_pii)
    check_read(view_key, features=["fg_test:n"], views=_views, is_pii=_pii)  # a feature of a view it reads
    with pytest.raises(Denied, match="feature group\\(s\\) fg_test") as e:
        check_read(view_key, features=["fg_test:label"], views=_views, is_pii=_pii)  # not in that view
    assert e.value.status == 403 and "--feature-group fg_test" in e.value.fix
    with pytest.raises(Denied, match="feature view 'score_v1'"):
        check_read(view_key, view="score_v1", view_refs=VIEWS["score_v1"].features, views=_views, is_pii=_pii)
    with pytest.raises(Denied, match="feature view 'nope'"):  # unknown and not granted: 403, not a 404 that probes
        check_read(view_key, view="nope", view_refs=None, views=_views, is_pii=_pii)

    group_key = Scope("g", feature_groups=frozenset({"fg_person"}))
    check_read(group_key, view="score_v1", view_refs=VIEWS["score_v1"].features, views=_views, is_pii=_pii)
    check_read(group_key, features=["fg_person:score"], views=_views, is_pii=_pii)
    with pytest.raises(Denied, match="personal data: fg_person:email is declared pii"):
        check_read(group_key, view="person_v1", view_refs=VIEWS["person_v1"].features, views=_views, is_pii=_pii)
    with pytest.raises(Denied, match="personal data"):
        check_read(group_key, features=["fg_person:score", "fg_person:email"], views=_views, is_pii=_pii)
    pii_key = Scope("p", feature_groups=frozenset({"fg_person"}), pii=True)
    check_read(pii_key, view="person_v1", view_refs=VIEWS["person_v1"].features, views=_views, is_pii=_pii)
    star = Scope("s", feature_views=frozenset({"*"}))
    check_read(star, view="anything", view_refs=None, views=_views, is_pii=_pii)
    with pytest.raises(Denied, match="personal data"):  # "*" views, but no pii
        check_read(star, view="person_v1", view_refs=VIEWS["person_v1"].features, views=_views, is_pii=_pii)
    check_read(Scope.full(), view="person_v1", view_refs=VIEWS["person_v1"].features, views=_views, is_pii=_pii)


def test_push_and_route_decisions():
    pusher = Scope("w", feature_groups=frozenset({"fg_test"}), push=frozenset({"fg_test"}))
    check_push(pusher, "fg_test", "fg_test")
    with pytest.raises(Denied, match="may not push to 'fg_person'"):
        check_push(pusher, "fg_person", "fg_person")
    with pytest.raises(Denied, match="may not push to 'nope'"):
        check_push(pusher, None, "nope")
    with pytest.raises(Denied, match="may not push"):
        check_push(Scope("r", feature_groups=frozenset({"fg_test"})), "fg_test", "fg_test")
    with pytest.raises(Denied, match="/metrics"):
        check_route(pusher, "metrics")
    with pytest.raises(Denied, match="web UI"):
        check_route(Scope("m", metrics=True), "ui")
    check_route(Scope("m", metrics=True), "metrics")
    check_route(Scope.full(), "ui")
    check_route(pusher, "")


def test_keyring_rereads_the_file_and_fails_closed(tmp_path):
    path = tmp_path / "api_keys.json"
    _, a = create_key(path, "a", feature_views=["customer_v1"])
    ring = KeyRing(["plain"], path, check_seconds=0)
    assert ring.authenticate(a.encode()).name == "a"
    assert ring.authenticate(b"plain").admin and ring.authenticate(b"wrong") is None
    assert ring.authenticate(None) is None and ring.authenticate(b"") is None
    _, b = create_key(path, "b", feature_groups=["fg_test"])
    assert ring.authenticate(b.encode()).feature_groups == {"fg_test"}  # new key: no restart
    revoke_key(path, "a")
    assert ring.authenticate(a.encode()) is None  # revoked: no restart
    path.write_text("{broken")
    with pytest.raises(KeyFileError):  # a broken file refuses its keys, it does not open the service
        ring.authenticate(b.encode())
    assert ring.authenticate(b"plain").admin  # the environment's keys still work
    path.unlink()
    with pytest.raises(KeyFileError, match="does not exist"):
        ring.authenticate(b.encode())


def test_pii_travels_in_the_online_spec():
    @dataclass
    class Col:
        name: str
        data_type: str
        pii: bool = False

    @dataclass
    class FG:
        name: str = "fg_person"
        primary_key: tuple = ("customer_id",)
        columns: tuple = (Col("customer_id", "bigint"), Col("email", "varchar", True), Col("score", "double"))
        features: tuple = (Col("email", "varchar", True), Col("score", "double"))
        ttl: object = None
        event_time: str = "ts"
        created_time: object = None
        entities: tuple = ("customer",)

    spec = FGSpec.from_feature_group(FG())
    d = spec.to_dict()
    assert d["features"] == [{"name": "email", "data_type": "varchar", "pii": True},
                             {"name": "score", "data_type": "double"}]  # no "pii" key where not pii: unchanged specs
    assert FGSpec.from_dict(d).feature("email").pii and not FGSpec.from_dict(d).feature("score").pii
    assert "pii" not in json.dumps(SPEC.to_dict())


@pytest.mark.parametrize("backend", BACKENDS)
def test_pii_survives_both_online_stores(backend, tmp_path):
    """What the service decides pii refusals from: the spec published with the data, on SQLite and Redis."""
    from fs_cli.online.reader import OnlineReader

    st, _, _ = make_store(backend, tmp_path)
    try:
        materialize(st, PERSON, pa.table({"customer_id": pa.array([1], pa.int64()), "ts": [NOW], "email": ["a@x.org"],
                                          "score": [0.5]}), NOW, views=VIEWS)
        spec = OnlineReader(st).spec("fg_person")
        assert spec.feature("email").pii and not spec.feature("score").pii
    finally:
        cleanup(st)


# -- the service -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app over a SQLite store: fg_test (customer_v1), fg_person (email is pii), push specs; one key of each
    kind in a key file, plus a plain FS_API_KEYS key."""
    tmp = tmp_path_factory.mktemp("api-keys")
    st, _, _ = make_store("sqlite", tmp)
    materialize(st, SPEC, make_rows(10, 2, seed=5), NOW, views=VIEWS)
    materialize(st, PERSON, pa.table({"customer_id": pa.array([1, 2], pa.int64()), "ts": [NOW - timedelta(days=1)] * 2,
                                      "email": ["a@x.org", "b@x.org"], "score": [0.5, 0.7]}), NOW, views=VIEWS)
    st.put_document("push_specs", orjson.dumps({"fg_test": PushSpec(SPEC, RULES).to_dict(),
                                                "fg_person": PushSpec(PERSON, PERSON_RULES).to_dict()}))
    path = tmp / "api_keys.json"
    secrets = {name: create_key(path, name, **kw)[1] for name, kw in {
        "view": {"feature_views": ["customer_v1"]},
        "person": {"feature_groups": ["fg_person"]},
        "person-pii": {"feature_groups": ["fg_person"], "pii": True},
        "pusher": {"feature_groups": ["fg_test"], "push": True},
        "metrics": {"metrics": True},
        "admin": {"admin": True},
    }.items()}
    secrets["plain"] = PLAIN
    app = create_app(st, api_keys=PLAIN, api_keys_file=path, push_dir=tmp / "push", key_check_seconds=0,
                     clock=lambda: (NOW - datetime(1970, 1, 1)).total_seconds())
    with TestClient(app) as client:
        yield client, secrets, path
    cleanup(st)


def _push_fg_test(name: str = "fg_test") -> dict:
    return {"push_source_name": name, "df": {"customer_id": [3], "event_time": [(NOW - timedelta(minutes=1)).isoformat()],
                                             "amount": [1.5], "label": ["a"], "n": [2]}}


REQUESTS = {
    "vector customer_v1": ("GET", "/feature-views/customer_v1/vector?customer_id=1", None),
    "vectors customer_v1": ("POST", "/feature-views/customer_v1/vectors", {"entities": [{"customer_id": 1}]}),
    "feast service customer_v1": ("POST", "/get-online-features",
                                  {"feature_service": "customer_v1", "entities": {"customer_id": [1]}}),
    "feast fg_test:n": ("POST", "/get-online-features", {"features": ["fg_test:n"], "entities": {"customer_id": [1]}}),
    "feast fg_test:label": ("POST", "/get-online-features",
                            {"features": ["fg_test:label"], "entities": {"customer_id": [1]}}),
    "vector score_v1": ("GET", "/feature-views/score_v1/vector?customer_id=1", None),
    "vector person_v1 (pii)": ("GET", "/feature-views/person_v1/vector?customer_id=1", None),
    "vectors person_v1 (pii)": ("POST", "/feature-views/person_v1/vectors", {"entities": [{"customer_id": 1}]}),
    "feast fg_person:score": ("POST", "/get-online-features",
                              {"features": ["fg_person:score"], "entities": {"customer_id": [1]}}),
    "feast fg_person:email (pii)": ("POST", "/get-online-features",
                                    {"features": ["fg_person:email"], "entities": {"customer_id": [1]}}),
    "feast service person_v1 (pii)": ("POST", "/get-online-features",
                                      {"feature_service": "person_v1", "entities": {"customer_id": [1]}}),
    "vector unknown view": ("GET", "/feature-views/nope/vector?customer_id=1", None),
    "push fg_test": ("POST", "/push", _push_fg_test()),
    "write fg_test": ("POST", "/write-to-online-store", {**_push_fg_test(), "feature_view_name": "fg_test"}),
    "push fg_person": ("POST", "/push", {"push_source_name": "fg_person", "df": {
        "customer_id": [3], "ts": [NOW.isoformat()], "email": ["c@x.org"], "score": [0.1]}}),
    "metrics": ("GET", "/metrics", None),
    "docs": ("GET", "/openapi.json", None),
}
OK, UNAUTH, DENIED, MISSING = 200, 401, 403, 404
# key -> the requests it is allowed (200, or 404 for the admin asking for an unknown view); all others get 403
ALLOWED = {
    "view": {"vector customer_v1", "vectors customer_v1", "feast service customer_v1", "feast fg_test:n", "docs"},
    "person": {"vector score_v1", "feast fg_person:score", "docs"},
    "person-pii": {"vector score_v1", "feast fg_person:score", "vector person_v1 (pii)", "vectors person_v1 (pii)",
                   "feast fg_person:email (pii)", "feast service person_v1 (pii)", "docs"},
    "pusher": {"vector customer_v1", "vectors customer_v1", "feast service customer_v1", "feast fg_test:n",
               "feast fg_test:label", "push fg_test", "write fg_test", "docs"},
    "metrics": {"metrics", "docs"},
    "admin": set(REQUESTS),
    "plain": set(REQUESTS),
}


def _send(client, request: str, headers: dict):
    method, path, body = REQUESTS[request]
    return client.request(method, path, headers=headers, content=orjson.dumps(body) if body is not None else None)


@pytest.mark.parametrize("key", list(ALLOWED))
def test_the_scope_matrix(served, key):
    """Every key against every endpoint: 200 inside its scope, 403 with a JSON error naming what is refused outside
    it (also for names that do not exist); FS_API_KEYS keys and --admin keys reach everything."""
    client, secrets, _ = served
    for name in REQUESTS:
        r = _send(client, name, {"x-api-key": secrets[key]})
        if name in ALLOWED[key]:
            want = MISSING if name == "vector unknown view" else OK
            assert r.status_code == want, (key, name, r.text)
        else:
            assert r.status_code == DENIED, (key, name, r.status_code, r.text)
            err = r.json()
            assert repr(key) in err["error"] and err["fix"], (key, name, err)
            if "(pii)" in name and key == "person":
                assert "fg_person:email" in err["error"] and "pii" in err["error"]


def test_no_key_or_a_wrong_key_is_401(served):
    client, secrets, _ = served
    for name in REQUESTS:
        assert _send(client, name, {}).status_code == UNAUTH, name
        assert _send(client, name, {"x-api-key": "fsk_wrong"}).status_code == UNAUTH, name
        assert _send(client, name, {"x-api-key": hash_secret(secrets["admin"])}).status_code == UNAUTH  # the hash
    r = _send(client, "vector customer_v1", {"authorization": f"Bearer {secrets['view']}"})
    assert r.status_code == OK  # the bearer form works for scoped keys too


def test_a_pii_answer_is_refused_whole_never_trimmed(served):
    client, secrets, _ = served
    r = _send(client, "vector person_v1 (pii)", {"x-api-key": secrets["person"]})
    assert r.status_code == DENIED and "values" not in r.json() and "a@x.org" not in r.text
    r = _send(client, "vector person_v1 (pii)", {"x-api-key": secrets["person-pii"]})
    assert r.json()["values"] == {"email": "a@x.org", "score": 0.5}


def test_listing_and_ready_show_only_the_scope(served):
    client, secrets, _ = served
    listing = client.get("/feature-views", headers={"x-api-key": secrets["person"]}).json()
    assert set(listing["feature_views"]) == {"score_v1", "person_v1"} and set(listing["feature_groups"]) == {"fg_person"}
    listing = client.get("/feature-views", headers={"x-api-key": secrets["view"]}).json()
    assert set(listing["feature_views"]) == {"customer_v1"} and listing["feature_groups"] == {}
    assert set(client.get("/feature-views", headers={"x-api-key": PLAIN}).json()["feature_views"]) == set(VIEWS)
    assert "versions" not in client.get("/ready", headers={"x-api-key": secrets["view"]}).json()
    assert "versions" in client.get("/ready", headers={"x-api-key": secrets["metrics"]}).json()


def test_revocation_and_new_keys_need_no_restart(served, tmp_path):
    client, secrets, path = served
    rec, secret = create_key(path, "temp", feature_views=["customer_v1"])
    assert _send(client, "vector customer_v1", {"x-api-key": secret}).status_code == OK
    revoke_key(path, "temp")
    assert _send(client, "vector customer_v1", {"x-api-key": secret}).status_code == UNAUTH
    assert _send(client, "vector customer_v1", {"x-api-key": secrets["view"]}).status_code == OK  # the others stay


def test_a_key_file_broken_while_serving_fails_closed(tmp_path):
    st, _, _ = make_store("sqlite", tmp_path)
    try:
        materialize(st, SPEC, make_rows(5, 1, seed=1), NOW, views=VIEWS)
        path = tmp_path / "api_keys.json"
        _, secret = create_key(path, "a", feature_views=["customer_v1"])
        with TestClient(create_app(st, api_keys=PLAIN, api_keys_file=path, key_check_seconds=0)) as client:
            assert _send(client, "vector customer_v1", {"x-api-key": secret}).status_code == OK
            path.write_text("{")
            r = _send(client, "vector customer_v1", {"x-api-key": secret})
            assert r.status_code == 503 and "key file" in r.json()["error"]
            assert _send(client, "vector customer_v1", {"x-api-key": PLAIN}).status_code == OK
            assert client.get("/health").status_code == 200
            path.unlink()
            assert _send(client, "vector customer_v1", {"x-api-key": secret}).status_code == 503
    finally:
        cleanup(st)


def test_the_ui_needs_an_admin_key(tmp_path):
    from fs_cli.ui.app import create_ui_app

    path = tmp_path / "api_keys.json"
    _, scoped = create_key(path, "reader", feature_views=["*"], feature_groups=["*"], pii=True, metrics=True)
    _, admin = create_key(path, "boss", admin=True)
    app = create_ui_app(lambda: None, api_keys="", api_keys_file=path)
    with TestClient(app, follow_redirects=False) as client:
        assert client.get("/ui/").status_code == UNAUTH
        r = client.get("/ui/", headers={"x-api-key": scoped})
        assert r.status_code == DENIED and "web UI" in r.json()["error"]
        assert client.get(f"/ui/?key={scoped}").status_code == DENIED  # the browser form too
        assert client.get("/", headers={"x-api-key": admin}).status_code in (302, 307)
        assert client.get("/ui/nope-page", headers={"x-api-key": admin}).status_code not in (UNAUTH, DENIED)


# -- the command line ----------------------------------------------------------------------------------------------

def test_fs_keys_create_list_revoke(tmp_path):
    path = tmp_path / "k" / "api_keys.json"
    env = {"FS_API_KEYS_FILE": str(path)}
    runner = CliRunner()
    nowhere = ["--project-dir", str(tmp_path / "no-project")]  # no dbt project: no catalog check
    r = runner.invoke(cli.main, [*nowhere, "keys", "create", "fraud", "--feature-view", "fraud_v1", "--pii", "--json"],
                      env=env)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["name"] == "fraud" and out["pii"] is True and out["secret"].startswith("fsk_") and "hash" not in out
    assert out["secret"] not in path.read_text()
    r = runner.invoke(cli.main, [*nowhere, "keys", "create", "ingest", "--feature-group", "fg_x", "--push"], env=env)
    assert r.exit_code == 0 and "only time its secret is shown" in r.output
    secret = r.stdout.strip().splitlines()[0]
    assert KeyRing([], path).authenticate(secret.encode()).push == {"fg_x"}
    r = runner.invoke(cli.main, [*nowhere, "keys", "list", "--json"], env=env)
    listed = json.loads(r.stdout)
    assert [k["name"] for k in listed] == ["fraud", "ingest"]
    assert "sha256" not in r.stdout and secret not in r.stdout and "hash" not in listed[0]
    r = runner.invoke(cli.main, [*nowhere, "keys", "revoke", "fraud"], env=env)
    assert r.exit_code == 0 and "revoked" in r.output
    assert [k.name for k in load_keys(path)] == ["ingest"]
    r = runner.invoke(cli.main, [*nowhere, "keys", "revoke", "fraud"], env=env)
    assert r.exit_code == 2 and "no API key named 'fraud'" in r.output
    r = runner.invoke(cli.main, [*nowhere, "keys", "create", "x"], env=env)
    assert r.exit_code == 2 and "would allow nothing" in r.output
    help_text = runner.invoke(cli.main, ["serve", "--help"]).output
    assert "fs keys create" in help_text and "api_keys.json" in help_text and "403" in help_text


def test_fs_keys_checks_names_against_the_catalog(demo_project, tmp_path, monkeypatch):
    """With a project, the names a key is scoped to must exist (the demo is shared with other modules: its catalog
    is parsed already; the key file goes to tmp_path, never into the shared project)."""
    from fs_cli.sdk import FeatureStore, create_api_key

    path = tmp_path / "api_keys.json"
    monkeypatch.setenv("FS_API_KEYS_FILE", str(path))
    r = CliRunner().invoke(cli.main, ["--project-dir", str(demo_project), "keys", "create", "k", "--feature-view",
                                      "no_such_view"])
    assert r.exit_code == 2 and "no_such_view" in r.output and "known feature views" in r.output, r.output
    assert not path.exists()
    fs = FeatureStore(demo_project)
    with pytest.raises(Exception, match="no_such_group"):
        create_api_key(fs, "k", feature_groups=["no_such_group"])
    entry, _, written = create_api_key(fs, "k", feature_views=["fv_fraud_detection"],
                                       feature_groups=["fg_customer_profile"])
    assert written == path and [k.feature_views for k in load_keys(path)] == [["fv_fraud_detection"]]
    assert not (demo_project / ".fs" / "api_keys.json").exists()


# -- a real `fs serve` ---------------------------------------------------------------------------------------------

def test_fs_serve_process_with_a_key_file(tmp_path):
    """`fs serve` finds the key file through FS_API_KEYS_FILE, answers 401/403/200, and a `fs keys revoke` run
    while it serves takes effect without a restart."""
    st, url, _ = make_store("sqlite", tmp_path)
    from test_server_process import datetime_utcnow

    now = datetime_utcnow()
    materialize(st, SPEC, make_rows(5, 1, seed=2, now=now, spread_s=60, future_s=0), now, views=VIEWS)
    path = tmp_path / "api_keys.json"
    _, view = create_key(path, "view", feature_views=["customer_v1"])
    _, person = create_key(path, "person", feature_groups=["fg_person"])
    env = {k: v for k, v in os.environ.items() if k != "FS_API_KEYS"}
    env["FS_API_KEYS_FILE"] = str(path)
    port = free_port()
    out = tmp_path / "serve.log"
    with open(out, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "fs_cli", "serve", "--store", url, "--port", str(port),
                                 "--no-log"], cwd=tmp_path, env=env, stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    vector = f"{base}/feature-views/customer_v1/vector?customer_id=1"
    try:
        wait_ready(base, proc, output=out.read_text)
        assert "key file" in out.read_text()
        assert httpx.get(vector, timeout=5).status_code == UNAUTH
        assert httpx.get(vector, headers={"x-api-key": person}, timeout=5).status_code == DENIED
        assert httpx.get(vector, headers={"x-api-key": view}, timeout=5).status_code == OK
        r = CliRunner().invoke(cli.main, ["--project-dir", str(tmp_path / "none"), "keys", "revoke", "view"],
                               env={"FS_API_KEYS_FILE": str(path)})
        assert r.exit_code == 0, r.output
        deadline = time.monotonic() + 30  # re-read within a second; generous on a loaded machine
        while httpx.get(vector, headers={"x-api-key": view}, timeout=5).status_code != UNAUTH:
            assert time.monotonic() < deadline, "revoked key still accepted"
            time.sleep(0.1)
    finally:
        stop(proc)
        cleanup(st)


def test_fs_serve_refuses_to_start_on_a_bad_key_file(tmp_path):
    st, url, _ = make_store("sqlite", tmp_path)
    st.close()
    bad = tmp_path / "api_keys.json"
    bad.write_text('{"keys": [{"name": "a", "hash": "plain-secret-pasted-here"}]}')
    env = {**{k: v for k, v in os.environ.items() if k != "FS_API_KEYS"}, "FS_API_KEYS_FILE": str(bad)}
    r = subprocess.run([sys.executable, "-m", "fs_cli", "serve", "--store", url, "--port", str(free_port()), "--no-log"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=READY_DEADLINE_S)
    assert r.returncode == 2, r.stdout + r.stderr
    assert str(bad) in r.stderr and "`hash` must be 'sha256:'" in r.stderr and "fix:" in r.stderr

