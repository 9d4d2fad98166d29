"""Loading the push log into fs_push.<group> (fs_cli/push_publish.py `_load`): in a fixed number of statements, with
the outcome of loading the records one by one.

The oracle is that one-by-one semantics in plain Python: in log order, a record whose id is already loaded is
skipped, a record breaking the group's rules is kept as `rejected`, and an accepted record supersedes every pending
or published row of its key and event time ("replaced by push <its id>") before it is added as pending. Between
loads, pending rows become published (what `fs run` does after the commit). Generated logs (hypothesis): few keys,
so pushes of one key follow each other within a load and across loads; repeated ids; rejected rows. Both engines.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import test_validation_drift_stats as drift_stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_push import RULES, SPEC

from fs_cli.online.push import PushSpec
from fs_cli.push_publish import PushedBatch, _ensure_table, _load, push_table

engine, wh = drift_stats.engine, drift_stats.wh
PS = PushSpec(SPEC, RULES)
FG = SimpleNamespace(name="fg_push_load")
NOW = datetime(2026, 3, 1)
T = [datetime(2026, 2, 1, 10), datetime(2026, 2, 1, 11)]

record = st.tuples(st.integers(1, 3), st.sampled_from(T), st.sampled_from(["gold", "standard", "platinum"]),
                   st.integers(0, 6))  # customer, event time, segment (platinum breaks allowed_values), id reuse


def as_record(i: int, customer: int, at: datetime, segment: str) -> dict:
    return {"id": f"r{i}", "pushed_at": (at + timedelta(minutes=5)).isoformat(),
            "row": {"customer_id": customer, "updated_at": at.isoformat(), "segment": segment,
                    "credit_limit": 100.0 + i, "age": 30}}


def oracle(loads: list[list[dict]]) -> dict[str, tuple[str, str | None]]:
    table: dict[str, dict] = {}
    for records in loads:
        for rec in records:
            if rec["id"] in table:
                continue
            row = rec["row"]
            if row["segment"] not in ("gold", "standard"):
                table[rec["id"]] = {"status": "rejected", "reason": "allowed_values", "key": None}
                continue
            key = (row["customer_id"], row["updated_at"])
            for other in table.values():
                if other["key"] == key and other["status"] in ("pending", "published"):
                    other["status"], other["reason"] = "superseded", f"replaced by push {rec['id']}"
            table[rec["id"]] = {"status": "pending", "reason": None, "key": key}
        for other in table.values():
            if other["status"] == "pending":
                other["status"] = "published"
    return {i: (r["status"], r["reason"]) for i, r in table.items()}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(record, max_size=8), min_size=1, max_size=3))
def test_a_bulk_load_equals_loading_the_records_one_by_one(wh, loads):
    rel = push_table(wh, FG)
    wh.execute(f"drop table if exists {rel}")
    _ensure_table(wh, FG, PS)
    logs, n = [], 0
    for load in loads:
        records = []
        for customer, at, segment, reuse in load:
            # an id seen before (in this log or an earlier one) about a third of the time: loaded once
            i = reuse if reuse < n and reuse % 3 == 0 else n
            records.append(as_record(i, customer, at, segment))
            n += i == n
        logs.append(records)
        batch = PushedBatch(FG.name, 0)
        _load(wh, FG, PS, records, NOW, batch)
        assert all("allowed_values" in r for r in batch.rejected)
        wh.execute(f"update {rel} set fs_status = 'published' where fs_status = 'pending'")
    got = {i: (status, reason) for i, status, reason in wh.fetchall(
        f"select fs_push_id, fs_status, fs_reason from {rel}")}
    want = oracle(logs)
    assert set(got) == set(want)
    for i, (status, reason) in want.items():
        assert got[i][0] == status, (i, got[i], want[i])
        if status == "rejected":
            assert "allowed_values" in got[i][1] and '"segment":"platinum"' in got[i][1].replace(" ", "")
        else:
            assert got[i][1] == reason, (i, got[i], want[i])


def test_a_load_larger_than_one_insert_statement(wh):
    """More rows than one INSERT carries (500): every row loaded, each key's last push pending."""
    rel = push_table(wh, FG)
    wh.execute(f"drop table if exists {rel}")
    _ensure_table(wh, FG, PS)
    records = [as_record(i, i % 700, T[0], "gold") for i in range(1200)]
    _load(wh, FG, PS, records, NOW, PushedBatch(FG.name, 0))
    rows = dict(wh.fetchall(f"select fs_push_id, fs_status from {rel}"))
    assert len(rows) == 1200
    assert {i for i, s in rows.items() if s == "pending"} == {f"r{i}" for i in range(500, 1200)}
    _load(wh, FG, PS, [as_record(5000 + i, i, T[0], "gold") for i in range(700)], NOW, PushedBatch(FG.name, 0))
    pending = {i for i, s in wh.fetchall(f"select fs_push_id, fs_status from {rel}") if s == "pending"}
    assert pending == {f"r{5000 + i}" for i in range(700)}
