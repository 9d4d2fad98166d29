"""Helpers for the registry tests: a tiny hand-made training dataset (table + metadata row) and small models."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

TD_FEATURES = [{"name": "x1", "type": "DOUBLE"}, {"name": "x2", "type": "DOUBLE"}, {"name": "cat", "type": "VARCHAR"}]


def crafted_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.uniform(0, 10, size=n)
    cat = rng.choice(["a", "b", "c"], size=n)
    segment = rng.choice(["gold", "silver", "bronze", "tiny"], p=[0.4, 0.3, 0.27, 0.03], size=n)
    logit = 1.5 * x1 + (cat == "a") * 1.0 - 0.5
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    target = 3.0 * x1 + 0.2 * x2 + rng.normal(scale=0.5, size=n)
    split = np.where(np.arange(n) < int(n * 0.75), "train", "test")
    return pd.DataFrame({"row_id": np.arange(n), "segment": segment, "x1": x1, "x2": x2, "cat": cat,
                         "is_fraud": y, "target": target, "split": split})


def write_td(project_dir: Path, df: pd.DataFrame, fv: str = "fv_test", version: int = 1, label: str = "is_fraud",
             fg_commits: list[dict] | None = None, features: list[dict] | None = None) -> str:
    """Create fs_training.<fv>_v<version> and its fs_meta.training_datasets row directly in the project's target
    warehouse (DuckDB or Postgres), in fs_cli.training's format (what `fs training-dataset create` writes), without
    dbt: the registry tests need no feature pipeline."""
    import pyarrow as pa

    from fs_cli import training
    from fs_cli.project import Project

    commits = fg_commits if fg_commits is not None else [{"feature_group": "fg_customer_profile", "commit_id": 1,
                                                          "commit_time": "2026-01-15 00:00:00"}]
    feats = features or TD_FEATURES
    roles = {"row_id": "key", "split": "split", label: "label", **{f["name"]: "feature" for f in feats}}
    name = training.table_name(fv, version)
    with Project(project_dir).warehouse() as wh:
        training.ensure_td_meta(wh)
        rel = wh.relation(training.TD_SCHEMA, name)
        wh.write_arrow(rel, pa.Table.from_pandas(df, preserve_index=False), mode="create")
        columns = [{"name": n, "type": t, "role": roles.get(n, "spine")} for n, t in wh.describe(rel)]
        types = dict(wh.describe(rel))
        counts = {k: int(v) for k, v in df.split.value_counts().items()}
        row = {
            "feature_view": fv, "version": version, "table_name": name, "created_at": datetime(2026, 1, 16),
            "as_of": None, "read_at": datetime(2026, 1, 16), "fg_commits": commits, "spine_model": "crafted",
            "spine_start": None, "spine_end": None, "split": {"spec": "crafted 75/25"}, "row_counts": counts,
            "rows": len(df), "content_hash": f"hash-{fv}-{version}",
            "features": [{**f, "type": types.get(f["name"], f["type"]), "role": "feature"} for f in feats],
            "labels": [label], "columns": columns, "declaration": {}, "statistics": None, "description": "hand-made",
        }
        cols = [n for n, _ in training._META_COLUMNS]
        wh.execute(f"insert into {training.TD_META} ({', '.join(wh.quote(c) for c in cols)}) "
                   f"values ({', '.join('?' for _ in cols)})",
                   [json.dumps(row[c]) if c in training._JSON and row.get(c) is not None else row.get(c)
                    for c in cols])  # columns added since (nullable) stay NULL
    return f"{fv}:{version}"


def text_type(engine: str) -> str:
    """How the warehouse names a text column written from pandas (what a model's input schema records)."""
    return {"duckdb": "VARCHAR", "postgres": "text"}[engine]


@contextmanager
def engine_database(engine: str) -> Iterator[str | None]:
    """A fresh Postgres database for one project copy (dropped afterwards); nothing on DuckDB."""
    if engine != "postgres":
        yield None
        return
    from services import pg_database

    with pg_database() as db:
        yield db


def save_model(model, path: Path) -> Path:
    """Save `model` as the registry expects: skops for a .skops path, else a pickle (joblib; registering one needs
    trust_pickle=True)."""
    if Path(path).suffix == ".skops":
        import skops.io as sio

        sio.dump(model, path)
    else:
        joblib.dump(model, path)
    return Path(path)


def load_model(path: Path):
    """Load a model file this test wrote itself (so every type in it is trusted)."""
    if Path(path).suffix == ".skops":
        import skops.io as sio

        return sio.load(path, trusted=sio.get_untrusted_types(file=path))
    return joblib.load(path)


def train_pipeline(df: pd.DataFrame, path: Path, label: str = "is_fraud", robust: bool = True,
                   features: tuple[str, ...] = ("x1", "x2", "cat")) -> Path:
    """A logistic regression pipeline; robust=False leaves out the imputers so NULLs crash it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from fs_cli.registry import model_frame

    num = [f for f in features if f != "cat"]
    cats = [f for f in features if f == "cat"]
    num_steps = [SimpleImputer(strategy="median"), StandardScaler()] if robust else [StandardScaler()]
    cat_steps = ([SimpleImputer(strategy="constant", fill_value="missing")] if robust else []) + [
        OneHotEncoder(handle_unknown="ignore")]
    pre = ColumnTransformer([("num", make_pipeline(*num_steps), num)]
                            + ([("cat", make_pipeline(*cat_steps), cats)] if cats else []))
    est = LogisticRegression() if label == "is_fraud" else LinearRegression()
    model = Pipeline([("pre", pre), ("est", est)])
    train = df[df.split == "train"]
    model.fit(model_frame(train, list(features)), train[label])
    return save_model(model, path)


def set_project_var(d: Path, key: str, value) -> None:
    """Set a var in a project copy's dbt_project.yml."""
    import yaml

    cfg = yaml.safe_load((d / "dbt_project.yml").read_text())
    cfg.setdefault("vars", {})[key] = value
    (d / "dbt_project.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def registry_project(dst: Path, engine: str = "duckdb", pg_database: str | None = None) -> Path:
    """A project copy without the repo's governance requirements (tested on their own), on `engine` (Postgres: in
    database `pg_database`, see engine_database)."""
    from conftest import copy_project, use_engine

    d = use_engine(copy_project(dst, with_seeds=False), engine, pg_database)
    set_project_var(d, "fs_model_required_meta", [])
    return d
