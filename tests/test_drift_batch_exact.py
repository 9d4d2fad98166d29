"""The drift check of an incremental batch computes exactly the statistics of its two windows.

`feature_group_drift` (fs_cli/validation/drift.py) picks the detection window from the audited batch and the
reference from the published snapshot, then runs the SQL of macros/drift/drift_statistics.sql on them. The oracle
here is independent of both: the windows are selected in Python from the same generated rows by their documented
definitions, and the statistics are computed by scipy/numpy (tests/test_validation_drift_stats.py's oracles). The
snapshot holds several versions per key, closed and deleted ones included, so a window that read a closed or deleted
version, or missed a boundary, would change the numbers. Both engines, through the Warehouse layer.

A second property pins the PSI binning (the CASE form over the one row of quantiles) on heavily tied data, where
several deciles are equal and collapse into one edge.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest
import test_validation_drift_stats as drift_stats
from conftest import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_validation_drift_stats import SCHEMA, categorical_oracle, numeric_oracle, psi_oracle

from fs_cli.validation.drift import column_drift, feature_group_drift
from fs_cli.validation.expectations import ColumnExpectations, DriftConfig, Expectations

MACROS = REPO / "macros"
# One warehouse per engine for the whole module (the drift statistics tests' module-scoped fixtures).
engine, wh = drift_stats.engine, drift_stats.wh
T0 = datetime(2026, 1, 1)
WINDOW = timedelta(days=3)
LIVE_AT_COMMIT = T0 + timedelta(days=40)  # the time of the generated "commit N" (between the two publish instants)


def generated_history(seed: int, batch_after: timedelta = timedelta(0)) -> tuple[list[dict], list[dict]]:
    """A published snapshot of ~2,000 keys over 20 days of event time (values with ties and NULLs, a category),
    each key with 1-3 versions (closed at two publish instants, some closed as deleted), and an incremental batch:
    corrections of existing keys and new keys, event times spread over the same days (like bench/publish.py), or
    `batch_after` later (past every published event time when more than 20 days: publishing lags behind)."""
    rng = np.random.default_rng(seed)
    publishes = [T0 + timedelta(days=30), T0 + timedelta(days=50), T0 + timedelta(days=60)]
    snapshot, batch = [], []

    def value() -> float | None:
        if rng.random() < 0.05:
            return None
        return float(np.round(rng.gamma(2.0, 3.0), 1))  # rounded: many ties

    def category() -> str | None:
        return None if rng.random() < 0.03 else str(rng.choice(["a", "b", "c", "d"], p=[0.5, 0.3, 0.15, 0.05]))

    for key in range(2000):
        event_time = T0 + timedelta(seconds=int(rng.integers(0, 20 * 86400)))
        versions = int(rng.integers(1, 4))
        for v in range(versions):
            last = v == versions - 1
            deleted = last and versions > 1 and rng.random() < 0.2
            snapshot.append({"item_id": key, "event_time": event_time, "value": value(), "category": category(),
                             "dbt_valid_from": publishes[v], "dbt_valid_to": None if last else publishes[v + 1],
                             "dbt_is_deleted": "True" if deleted else "False"})
    for i in range(600):
        key = int(rng.integers(0, 2000)) if i % 2 else 5000 + i  # half corrections, half new keys
        event_time = T0 + batch_after + timedelta(seconds=int(rng.integers(0, 20 * 86400)))
        shift = 1.5 if seed % 2 else 0.0  # odd seeds: the batch drifted
        v = value()
        batch.append({"item_id": key, "event_time": event_time, "value": None if v is None else v + shift,
                      "category": category()})
    return snapshot, batch


def write(warehouse, name: str, rows: list[dict], columns: dict[str, pa.DataType]) -> str:
    rel = warehouse.relation(SCHEMA, name)
    warehouse.write_arrow(rel, pa.table({c: pa.array([r[c] for r in rows], type=t) for c, t in columns.items()}),
                   mode="replace")
    return rel


FEATURE_TYPES = {"item_id": pa.int64(), "event_time": pa.timestamp("us"), "value": pa.float64(),
                 "category": pa.string()}
SNAPSHOT_TYPES = {**FEATURE_TYPES, "dbt_valid_from": pa.timestamp("us"), "dbt_valid_to": pa.timestamp("us"),
                  "dbt_is_deleted": pa.string()}


def oracle_windows(snapshot: list[dict], batch: list[dict], reference: str) -> tuple[list[dict], list[dict]]:
    """The two windows by their definitions (feature_group_drift's docstring), selected in Python."""
    newest = max(r["event_time"] for r in batch)
    cur = [r for r in batch if r["event_time"] > newest - WINDOW]
    if reference == "commit":
        t = LIVE_AT_COMMIT
        return [r for r in snapshot if r["dbt_valid_from"] <= t and (r["dbt_valid_to"] is None or r["dbt_valid_to"] > t)
                and r["dbt_is_deleted"] != "True"], cur
    live = [r for r in snapshot if r["dbt_valid_to"] is None and r["dbt_is_deleted"] != "True"]
    if reference == "last_commit":
        return live, cur
    detect_start = min(r["event_time"] for r in cur)
    hi = min(detect_start, max(r["event_time"] for r in live))
    return [r for r in live if hi - WINDOW < r["event_time"] <= hi and r["event_time"] < detect_start], cur


def as_float(rows: list[dict], column: str) -> np.ndarray:
    return np.array([np.nan if r[column] is None else r[column] for r in rows], dtype=float)


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("reference", ["previous_window", "last_commit", "commit"])
def test_batch_drift_equals_scipy_on_the_same_windows(wh, seed, reference):
    check_batch_drift(wh, seed, reference)


@pytest.mark.parametrize("seed", [3, 4])
def test_previous_window_when_publishing_lags_behind(wh, seed):
    """Every batch event time is after every published one: the reference is the latest published `window` (the
    newest published event time is looked up only then; otherwise the detection start bounds the reference)."""
    check_batch_drift(wh, seed, "previous_window", batch_after=timedelta(days=25))


def check_batch_drift(wh, seed: int, reference: str, batch_after: timedelta = timedelta(0)) -> None:
    snapshot, batch = generated_history(seed, batch_after)
    fg = SimpleNamespace(
        relation=write(wh, "batch", batch, FEATURE_TYPES),
        snapshot_relation=write(wh, "batch_snapshot", snapshot, SNAPSHOT_TYPES),
        event_time="event_time",
        features=[SimpleNamespace(name="value", data_type="double"), SimpleNamespace(name="category", data_type="text")])
    exp = Expectations("fg_gen", {"value": ColumnExpectations("value", "double"),
                                  "category": ColumnExpectations("category", "text")},
                       drift=DriftConfig(window=WINDOW, reference=reference))
    got = {r.column: r.metrics for r in feature_group_drift(wh, fg, exp, True, LIVE_AT_COMMIT, macro_dir=MACROS)}

    ref, cur = oracle_windows(snapshot, batch, reference)
    assert got["value"]["n_ref"] == len(ref) and got["value"]["n_cur"] == len(cur)
    assert len(ref) > 100 and len(cur) > 30, "the generated windows are big enough to be compared"
    want = numeric_oracle(as_float(ref, "value"), as_float(cur, "value"))
    for k, v in want.items():
        assert got["value"][k] == pytest.approx(v, rel=1e-9, abs=1e-12), (k, got["value"][k], v)
    want = categorical_oracle([r["category"] for r in ref], [r["category"] for r in cur])
    for k, v in want.items():
        assert got["category"][k] == pytest.approx(v, rel=1e-9, abs=1e-12), (k, got["category"][k], v)


@pytest.mark.parametrize("reference", ["previous_window", "last_commit", "commit"])
def test_a_capped_reference_is_a_deterministic_sample_with_exact_statistics(wh, reference):
    """drift.max_reference_rows: a reference larger than the cap is replaced by a hash sample of about `cap` of its
    rows. Checked against the oracle's reference: the sample is a subset of it (no row outside the window, no closed
    or deleted version), its size is binomial around the cap, the same rows come back on a second check, the
    statistics are scipy's on exactly the sampled values, and the metrics record the reference's size and fraction.
    A cap at or above the reference's size changes nothing (same numbers as the exact check)."""
    from fs_cli.validation import drift

    snapshot, batch = generated_history(5)
    fg = SimpleNamespace(
        relation=write(wh, "batch", batch, FEATURE_TYPES),
        snapshot_relation=write(wh, "batch_snapshot", snapshot, SNAPSHOT_TYPES),
        event_time="event_time", key_columns=["item_id", "event_time"],
        features=[SimpleNamespace(name="value", data_type="double")])
    ref, cur = oracle_windows(snapshot, batch, reference)
    cap = len(ref) // 3

    def check(max_rows):
        exp = Expectations("fg_gen", {"value": ColumnExpectations("value", "double")},
                           drift=DriftConfig(window=WINDOW, reference=reference, max_reference_rows=max_rows))
        got = feature_group_drift(wh, fg, exp, True, LIVE_AT_COMMIT, macro_dir=MACROS)[0].metrics
        ref_table, _, sample = drift._windows(wh, fg, exp.drift, LIVE_AT_COMMIT)  # whole rows
        try:
            rows = wh.fetchall(f"select item_id, event_time, value from {ref_table}")
        finally:
            for name in ("fs_drift_cur", "fs_drift_ref"):
                wh.execute(f"drop table if exists {wh.temp_relation(name)}")
        return got, sample, sorted(rows, key=lambda r: (r[0], r[1], r[2] is None, r[2] or 0.0))

    got, sample, rows = check(cap)
    assert sample == {"max_reference_rows": cap, "reference_rows": len(ref), "fraction": pytest.approx(cap / len(ref))}
    assert got["reference_sample"] == sample and got["n_ref"] == len(rows)
    assert abs(len(rows) - cap) < 5 * (cap * (1 - cap / len(ref))) ** 0.5, (len(rows), cap)
    in_reference = {(r["item_id"], r["event_time"], r["value"]) for r in ref}
    assert all((k, t.replace(tzinfo=None), v) in in_reference for k, t, v in rows)
    values = np.array([np.nan if v is None else v for _, _, v in rows], dtype=float)
    for k, v in numeric_oracle(values, as_float(cur, "value")).items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-12), (k, got[k], v)
    again, _, rows_again = check(cap)
    assert rows_again == rows and again == got
    exact = {r.column: r.metrics for r in feature_group_drift(
        wh, fg, Expectations("fg_gen", {"value": ColumnExpectations("value", "double")},
                             drift=DriftConfig(window=WINDOW, reference=reference)), True, LIVE_AT_COMMIT,
        macro_dir=MACROS)}["value"]
    whole, sample, _ = check(len(ref))
    assert sample["fraction"] == 1.0 and whole["n_ref"] == len(ref)
    assert {k: v for k, v in whole.items() if k != "reference_sample"} == exact


tied = st.integers(0, 3).map(float)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(tied, min_size=1, max_size=60), st.lists(tied, min_size=1, max_size=60))
def test_psi_with_collapsed_deciles(wh, ref, cur):
    """Four distinct values: several deciles are equal, so the edges are fewer than 9 (psi_bins counts them)."""
    r = wh.relation(SCHEMA, "psi_ref")
    c = wh.relation(SCHEMA, "psi_cur")
    wh.write_arrow(r, pa.table({"x": pa.array(ref, type=pa.float64())}), mode="replace")
    wh.write_arrow(c, pa.table({"x": pa.array(cur, type=pa.float64())}), mode="replace")
    got = column_drift(wh, r, c, "x", numeric=True, macro_dir=MACROS)
    ra, ca = np.array(ref), np.array(cur)
    edges = np.unique(np.quantile(ra, [i / 10 for i in range(1, 10)], method="inverted_cdf"))
    assert got["psi_bins"] == len(edges) + 1
    assert got["psi"] == pytest.approx(psi_oracle(ra, ca), rel=1e-9, abs=1e-12)
