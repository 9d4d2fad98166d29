"""Runs inside a Feast 0.67 venv (not this project's: Feast pins conflicting packages), called by tests/test_push.py:
Feast's own client with `online_store: {type: remote}` writes a row through `write_to_online_store` to an fs server
and reads it back with `get_online_features` (polling up to 1 s). Prints the answer as JSON."""
import json
import sys
import time
from datetime import datetime, timedelta

import pandas as pd
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.repo_config import RepoConfig
from feast.types import Float64, Int64, String

url, repo, at_iso = sys.argv[1], sys.argv[2], sys.argv[3]
config = RepoConfig(project="fs_push_test", registry=f"{repo}/registry.db", provider="local",
                    online_store={"type": "remote", "path": url},
                    offline_store={"type": "file"}, entity_key_serialization_version=3)
store = FeatureStore(config=config)
customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
source = FileSource(path=f"{repo}/unused.parquet", timestamp_field="updated_at")
fv = FeatureView(name="fg_profile", entities=[customer], ttl=timedelta(hours=1), source=source, online=True,
                 schema=[Field(name="customer_id", dtype=Int64), Field(name="segment", dtype=String),
                         Field(name="credit_limit", dtype=Float64), Field(name="age", dtype=Int64)])
store.apply([customer, fv])
at = datetime.fromisoformat(at_iso)
df = pd.DataFrame({"customer_id": [9], "updated_at": [at], "segment": ["gold"], "credit_limit": [77.25], "age": [41]})
t0 = time.perf_counter()
store.write_to_online_store("fg_profile", df)
while True:
    got = store.get_online_features(features=["fg_profile:segment", "fg_profile:credit_limit", "fg_profile:age"],
                                    entity_rows=[{"customer_id": 9}]).to_dict()
    if got["segment"] == ["gold"] or time.perf_counter() - t0 > 1.0:
        break
    time.sleep(0.02)
got["seconds"] = time.perf_counter() - t0
print(json.dumps(got, default=str))
