"""Shared by tests/test_pit_*.py: a brute-force oracle of the point-in-time join, hypothesis data, and a tiny dbt
project whose models call the repo's macro so that dbt renders it once; the tests then run the compiled SQL
against per-example tables directly.

Test tables (same names and types on every warehouse):
  spine(k1 bigint, k2 varchar, ts timestamp, label bigint)
  fg_a(k1 bigint, et timestamp, cr timestamp, x double, y varchar)      join k1=k1, created_time cr
  fg_b(id bigint, region varchar, t timestamp, z double)                join id=k1, region=k2, no created_time
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2024, 3, 1)
STEP = timedelta(minutes=30)  # every time sits on a 30-minute grid, so TTL and boundary ties happen often
HOUR = 3600

SPINE_COLS = ["k1", "k2", "ts", "label"]
FG_A_COLS = ["k1", "et", "cr", "x", "y"]
FG_B_COLS = ["id", "region", "t", "z"]


@dataclass(frozen=True)
class Variant:
    """One compiled model: a boundary mode and a TTL per feature group."""

    name: str
    inclusive: bool
    ttl_a: int  # seconds, 0 = unlimited
    ttl_b: int
    spine_as_subquery: bool = False
    impl: str = ""  # "" = adapter.dispatch; "default" = call default__ directly (window-function version)


VARIANTS = [
    Variant("pit_incl_a2h", True, 2 * HOUR, 0),
    Variant("pit_strict_a2h_b1h", False, 2 * HOUR, HOUR, spine_as_subquery=True),
    Variant("pit_incl_b1d", True, 0, 24 * HOUR),
    Variant("pit_strict_unlimited", False, 0, 0),
]
DEFAULT_IMPL_VARIANTS = [
    Variant("pit_default_incl_a2h", True, 2 * HOUR, 0, impl="default"),
    Variant("pit_default_strict_a2h_b1h", False, 2 * HOUR, HOUR, spine_as_subquery=True, impl="default"),
]


def feature_groups_jinja(v: Variant) -> str:
    return textwrap.dedent(
        f"""\
        [
          {{'name': 'fg_a', 'relation': source('pit', 'fg_a'), 'join_keys': {{'k1': 'k1'}},
            'event_time': 'et', 'created_time': 'cr', 'ttl_seconds': {v.ttl_a}, 'features': ['x', 'y']}},
          {{'name': 'fg_b', 'relation': '(select * from ' ~ source('pit', 'fg_b') ~ ')',
            'join_keys': {{'id': 'k1', 'region': 'k2'}}, 'event_time': 't', 'ttl_seconds': {v.ttl_b},
            'features': ['z', 'id'], 'prefix': 'b_'}}
        ]"""
    )


def model_sql(v: Variant) -> str:
    spine = "'(select * from ' ~ source('pit', 'spine') ~ ')'" if v.spine_as_subquery else "source('pit', 'spine')"
    macro = "feature_store.default__fs_point_in_time_join" if v.impl == "default" else "fs_point_in_time_join"
    inclusive = "true" if v.inclusive else "false"
    args = f"{spine}, {feature_groups_jinja(v)}, 'ts', {inclusive}"
    if v.impl == "default":
        args += ", none"  # the implementation macros take every argument positionally
    return f"{{{{ {macro}({args}) }}}}\n"


SOURCES_YML = """
version: 2
sources:
  - name: pit
    schema: "{{ var('pit_schema') }}"
    tables: [{name: spine}, {name: fg_a}, {name: fg_b}]
"""


def write_project(root: Path, profile: str, variants: list[Variant], extra_models: dict[str, str]) -> Path:
    """A throw-away dbt project named feature_store whose only macros are the repo's point-in-time macros."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "dbt_project.yml").write_text(
        textwrap.dedent(
            f"""\
            name: feature_store
            version: "0.1.0"
            config-version: 2
            profile: pit_test
            model-paths: ["models"]
            macro-paths: ["{REPO / 'macros' / 'point_in_time'}"]
            flags: {{send_anonymous_usage_stats: false}}
            models: {{feature_store: {{+materialized: view}}}}
            """
        )
    )
    (root / "profiles.yml").write_text(profile)
    (root / "models" / "_sources.yml").write_text(SOURCES_YML)
    for v in variants:
        (root / "models" / f"{v.name}.sql").write_text(model_sql(v))
    for name, sql in extra_models.items():
        (root / "models" / f"{name}.sql").write_text(sql)
    return root


def dbt_compile(root: Path, target: str, schema: str) -> dict[str, Any]:
    """One in-process dbt invocation; returns {model name: RunResult} (compiled_code or the error message).

    `dbt run` rather than `dbt compile`: compile stops at the first node that fails to render, run reports each
    node on its own (the error-message tests need that), and creating the views also checks the SQL binds."""
    from dbt.cli.main import dbtRunner

    res = dbtRunner().invoke(
        ["run", "--project-dir", str(root), "--profiles-dir", str(root), "--target", target,
         "--vars", f"{{pit_schema: {schema}}}", "--quiet"]
    )
    assert res.result is not None, f"dbt compile did not run: {res.exception}"
    return {r.node.name: r for r in res.result.results}


# -- data --------------------------------------------------------------------------------------------------------

def _t(steps: int | None) -> datetime | None:
    return None if steps is None else T0 + steps * STEP


def _maybe(strategy, null_weight: int = 1, value_weight: int = 6):
    return st.one_of(*([strategy] * value_weight), *([st.none()] * null_weight))


spine_rows = st.lists(
    st.tuples(
        _maybe(st.integers(1, 4)),                    # k1 (4 has little history; NULL matches nothing)
        _maybe(st.sampled_from(["eu", "us"]), 1, 8),  # k2
        _maybe(st.integers(0, 12).map(_t), 1, 10),    # ts
        st.integers(0, 1),                            # label
    ),
    min_size=0,
    max_size=25,
).flatmap(lambda rows: st.just(rows) if not rows else st.sampled_from([rows, rows + rows[:3]]))  # duplicates

_fg_a_row = st.tuples(
    _maybe(st.integers(1, 3), 1, 12),
    _maybe(st.integers(0, 12).map(_t), 1, 15),
    _maybe(st.integers(0, 3).map(_t), 1, 3),      # created: few values, so ties on it happen too
    _maybe(st.integers(-3, 3).map(float)),
    _maybe(st.sampled_from(["a", "b", "c"])),
)


def _with_ties(rows: list[tuple]) -> st.SearchStrategy[list[tuple]]:
    """Add copies of some rows with the same (key, event time) but another created time and values."""
    if not rows:
        return st.just(rows)
    copy = st.tuples(st.sampled_from(rows), _fg_a_row).map(lambda p: p[0][:2] + p[1][2:])
    return st.lists(copy, max_size=8).flatmap(lambda extra: st.permutations(rows + extra))


fg_a_rows = st.lists(_fg_a_row, max_size=20).flatmap(_with_ties)

fg_b_rows = st.lists(
    st.tuples(
        _maybe(st.integers(1, 3), 1, 12),
        _maybe(st.sampled_from(["eu", "us"]), 1, 12),
        _maybe(st.integers(0, 12).map(_t), 1, 15),
        _maybe(st.integers(-3, 3).map(float)),
    ),
    max_size=25,
)


# -- oracle ------------------------------------------------------------------------------------------------------

def _acceptable(
    spine_row: dict, rows: list[dict], keys: dict[str, str], event_time: str, created_time: str | None,
    ttl: int, inclusive: bool, features: list[str],
) -> set[tuple]:
    """Every feature tuple the join may return for one spine row and FG (several only for an exact tie that
    the declaration cannot break)."""
    ts = spine_row["ts"]
    nothing = {tuple([None] * len(features))}
    if ts is None or any(spine_row[s] is None for s in keys.values()):
        return nothing
    cands = [
        r for r in rows
        if all(r[f] is not None and r[f] == spine_row[s] for f, s in keys.items())
        and r[event_time] is not None
        and (r[event_time] <= ts if inclusive else r[event_time] < ts)
        and (ttl == 0 or r[event_time] >= ts - timedelta(seconds=ttl))
    ]
    if not cands:
        return nothing
    best_et = max(r[event_time] for r in cands)
    cands = [r for r in cands if r[event_time] == best_et]
    if created_time is not None:
        created = [r[created_time] for r in cands if r[created_time] is not None]
        if created:  # a NULL created_time loses against any known one
            cands = [r for r in cands if r[created_time] == max(created)]
    return {tuple(r[f] for f in features) for r in cands}


def oracle(spine: list[tuple], fg_a: list[tuple], fg_b: list[tuple], v: Variant) -> list[tuple[tuple, set, set]]:
    """Per spine row, in spine order: (the spine row, acceptable fg_a features, acceptable fg_b features)."""
    a = [dict(zip(FG_A_COLS, r, strict=True)) for r in fg_a]
    b = [dict(zip(FG_B_COLS, r, strict=True)) for r in fg_b]
    out = []
    for row in spine:
        s = dict(zip(SPINE_COLS, row, strict=True))
        out.append((
            row,
            _acceptable(s, a, {"k1": "k1"}, "et", "cr", v.ttl_a, v.inclusive, ["x", "y"]),
            _acceptable(s, b, {"id": "k1", "region": "k2"}, "t", None, v.ttl_b, v.inclusive, ["z", "id"]),
        ))
    return out


def check(result: list[tuple], expected: list[tuple[tuple, set, set]], v: Variant) -> None:
    assert len(result) == len(expected), f"{v.name}: {len(result)} rows out, {len(expected)} spine rows in"
    for i, (got, (spine_row, ok_a, ok_b)) in enumerate(zip(result, expected, strict=True)):
        got = tuple(got)
        assert got[:4] == spine_row, f"{v.name} row {i}: spine columns/order changed: {got[:4]} != {spine_row}"
        assert got[4:6] in ok_a, f"{v.name} row {i} {spine_row}: fg_a gave {got[4:6]}, oracle allows {ok_a}"
        assert got[6:8] in ok_b, f"{v.name} row {i} {spine_row}: fg_b gave {got[6:8]}, oracle allows {ok_b}"


OUTPUT_COLUMNS = ["k1", "k2", "ts", "label", "x", "y", "b_z", "b_id"]
