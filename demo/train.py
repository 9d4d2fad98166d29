"""Demo step: train a scikit-learn model on the demo feature view's latest training dataset, register it (with the
project's required metadata), validate it, make it champion, and score a batch through the feature view.

    python -m demo.train [--feature-view fv_fraud_detection] [--model fraud_model]

This is an example of a training script a data scientist would write against the SDK; nothing here is special-cased
by the registry.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np

from fs_cli.errors import FeatureStoreError
from fs_cli.output import console, err_console, print_table
from fs_cli.registry.artifact import model_frame
from fs_cli.sdk import FeatureStore

# The one type in the demo's skops file beyond skops' defaults: HistGradientBoosting's trees. skops does not trust it
# by default because crafted node indices could make predict() read out of bounds; we trained this model ourselves.
TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


def build_model(X, y, seed: int = 0):
    """Imputation and one-hot encoding inside the pipeline, so NULLs and unseen categories get an answer."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    numeric = [c for c in X.columns if X[c].dtype == np.float64]
    categorical = [c for c in X.columns if c not in numeric]
    pre = ColumnTransformer([
        ("num", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True), numeric),
        ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="(missing)"),
                              OneHotEncoder(handle_unknown="ignore", sparse_output=False)), categorical),
    ])
    clf = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_leaf_nodes=15,
                                         class_weight="balanced", random_state=seed)
    return Pipeline([("pre", pre), ("clf", clf)]).fit(X, y)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project-dir", default=None)
    ap.add_argument("--feature-view", default="fv_fraud_detection")
    ap.add_argument("--model", default="fraud_model")
    ap.add_argument("--out", default="target/demo")
    args = ap.parse_args(argv)
    try:
        return _run(args)
    except FeatureStoreError as e:
        err_console.print(f"[bold red]error:[/] {e.message}", highlight=False)
        if e.fix:
            err_console.print(f"  [bold]fix:[/] {e.fix}", highlight=False)
        return 2


def _run(args) -> int:
    from sklearn.metrics import roc_auc_score

    from fs_cli import training
    from fs_cli.commands.models import print_report

    fs = FeatureStore(args.project_dir)
    td = training.info(fs.project, args.feature_view)  # the latest version
    _, table = training.read(fs.project, td.feature_view, td.version, split="train")
    train = table.to_pandas()
    features, label = [f["name"] for f in td.features], td.labels[0]
    X, y = model_frame(train, features), train[label].astype(int)
    console.print(f"training on {td.ref}: {len(X)} train rows, {len(features)} features, "
                  f"{int(y.sum())} positives", highlight=False)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # small data: threads cost more than they bring on a shared machine
        model = build_model(X, y)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{args.model}.skops"
    import skops.io as sio

    sio.dump(model, path)  # skops: loading it runs no code, unlike a pickle

    m = fs.models.register(
        args.model, path, td.ref, metrics={"train_auc": float(roc_auc_score(y, model.predict_proba(X)[:, 1]))},
        description="HistGradientBoosting on the fraud feature view (demo)",
        tags={"framework": "scikit-learn", "demo": "true"},
        meta={"owner": "fraud-analytics", "intended_use": "rank card transactions for manual fraud review"},
        trusted_types=TRUSTED_TYPES,
    )
    console.print(f"registered {m.ref} (sha256 {m.artifact_sha256[:12]}...)", highlight=False)
    report = fs.models.validate(m.ref)
    print_report(report)
    if not report.passed:
        err_console.print(f"{m.ref} failed validation; not promoting it", highlight=False)
        return 1
    fs.models.alias(m.name, m.version, "champion", reason="demo: validated on the held-out split")
    console.print(f"{m.name}@champion -> version {m.version}", highlight=False)

    # Batch inference through the feature view: the latest day of spine rows, features as published now.
    spine_end = td.spine_end
    scores = fs.models.score(f"{m.name}@champion", since=spine_end - timedelta(days=1))
    scores.to_parquet(out / f"{args.model}_scores.parquet", index=False)
    top = scores.sort_values("score", ascending=False).head(5)
    print_table(top.to_dict(orient="records"), list(scores.columns),
                title=f"batch scores: {len(scores)} transactions of the last day, top 5 "
                f"(all in {out / (args.model + '_scores.parquet')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
