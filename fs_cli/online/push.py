"""Push ingestion: fresh rows of a feature group written to the online store now, and published by the next `fs run`.

The core knows nothing of HTTP (fs_cli/server/app.py is the adapter). A push names a feature group, by its name or a
declared `push_source` (`config.meta.fs.push_source` in its YAML, Feast's PushSource name). For one request:
1. every row is checked against what the group declares and can be checked on one row: column set, types, not-null
   (keys, event time and `not_null` columns), `range`, `allowed_values`, event time not in the future. The first
   failing row fails the whole request (PushRowError: row, column, rule), and nothing is written;
2. the rows are appended to the durable push log (fs_cli/online/push_log.py, fsynced) -- the record the next
   `fs run` publishes through the same gate as every candidate (fs_cli/push_publish.py);
3. they are written to the online store in one atomic step (SQLite transaction / Redis Lua script), each only if its
   event time is >= the one served for that entity (a late or replayed push never replaces a fresher value).
   `to: offline` skips this step (Feast's PushMode.OFFLINE).
The rules the service checks are published into the online store by materialization (`publish_push_specs`): the
service never opens the warehouse.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from ..errors import FeatureStoreError
from .push_log import PushLog
from .specs import FGSpec, type_kind
from .store import OnlineStore, SupersededError, encode_key, pack_row

PUSH_DOC = "push_specs"
PUSH_MODES = ("online", "offline", "online_and_offline")
FUTURE_TOLERANCE = timedelta(seconds=60)  # client clocks drift; the publish gate checks again later
MAX_ROWS = 10_000
# Feast's RemoteOnlineStore.online_write_batch names the time columns like this, whatever the feature view declares.
FEAST_EVENT_COLUMN = "event_timestamp"
FEAST_CREATED_COLUMN = "created"
_EPOCH = datetime(1970, 1, 1)


class PushRowError(FeatureStoreError):
    """A pushed row breaks a declared rule: the whole request is refused (HTTP 422)."""

    status = 422

    def __init__(self, message: str, fix: str | None = None, row: int | None = None, column: str | None = None,
                 rule: str | None = None):
        super().__init__(message, fix)
        self.row, self.column, self.rule = row, column, rule


class PushRequestError(FeatureStoreError):
    """A malformed or misdirected push (unknown group, wrong shape): HTTP 400/404."""

    def __init__(self, message: str, fix: str | None = None, status: int = 400):
        super().__init__(message, fix)
        self.status = status


@dataclass(frozen=True)
class ColumnRule:
    name: str
    kind: str  # type_kind: int, float, str, bool, timestamp, any
    not_null: bool = False
    min: float | None = None
    max: float | None = None
    allowed: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "not_null": self.not_null, "min": self.min, "max": self.max,
                "allowed": None if self.allowed is None else list(self.allowed)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnRule:
        return cls(d["name"], d["kind"], bool(d.get("not_null")), d.get("min"), d.get("max"),
                   None if d.get("allowed") is None else tuple(d["allowed"]))


@dataclass(frozen=True)
class PushSpec:
    """What a push to one feature group is checked against: its online spec and per-row rules."""

    spec: FGSpec
    rules: dict[str, ColumnRule]
    push_source: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def columns(self) -> list[str]:
        s = self.spec
        return [*s.keys, s.event_time, *([s.created_time] if s.created_time else []), *s.feature_names]

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict(), "push_source": self.push_source,
                "rules": [r.to_dict() for r in self.rules.values()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PushSpec:
        rules = [ColumnRule.from_dict(r) for r in d["rules"]]
        return cls(FGSpec.from_dict(d["spec"]), {r.name: r for r in rules}, d.get("push_source"))


# -- declarations -> push specs (run by `fs run` / `fs materialize`, which read the catalog) ------------------------
def push_spec_of(fg: Any) -> PushSpec:
    """The push spec of a catalog FeatureGroup (fs_cli.metadata), with its declared expectations."""
    from ..validation.expectations import parse_expectations

    exp = parse_expectations(fg)
    rules = {}
    for c in fg.columns:
        ce = exp.columns[c.name]
        rules[c.name] = ColumnRule(c.name, type_kind(c.data_type), ce.not_null, ce.min, ce.max,
                                   None if ce.allowed_values is None else tuple(ce.allowed_values))
    source = fg.meta.get("push_source")
    return PushSpec(FGSpec.from_feature_group(fg), rules, source if isinstance(source, str) and source else None)


def push_specs_of(catalog: Any) -> dict[str, PushSpec]:
    """Push specs of every online feature group whose declaration parses (others cannot be pushed to)."""
    out = {}
    for name, fg in catalog.feature_groups.items():
        if not fg.online:
            continue
        try:
            out[name] = push_spec_of(fg)
        except FeatureStoreError:
            continue  # a broken declaration is reported by `fs run`'s gate; it is simply not pushable
    return out


def publish_push_specs(store: OnlineStore, catalog: Any) -> None:
    """Publish what the service checks pushes against (a backend without documents simply cannot take pushes)."""
    specs = push_specs_of(catalog)
    try:
        store.put_document(PUSH_DOC, orjson.dumps({n: s.to_dict() for n, s in specs.items()}))
    except NotImplementedError:
        pass


def load_push_specs(store: OnlineStore) -> dict[str, PushSpec]:
    try:
        blob = store.document(PUSH_DOC)
    except NotImplementedError:  # a backend without documents: nothing is pushable
        return {}
    return {n: PushSpec.from_dict(d) for n, d in orjson.loads(blob).items()} if blob else {}


# -- checking one row ------------------------------------------------------------------------------------------
def parse_time(value: Any) -> datetime | None:
    """ISO 8601 text (a zone converts to naive UTC) or epoch seconds -> naive UTC datetime; None if not a time."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        try:
            return _EPOCH + timedelta(seconds=value)
        except OverflowError:
            return None
    if isinstance(value, str):
        try:
            t = datetime.fromisoformat(value.strip())
            return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo is not None else t
        except (ValueError, OverflowError):  # not a time, or a zone pushing it out of datetime's range
            return None
    return None


def _iso(t: datetime) -> str:
    return t.isoformat()


def _epoch_us(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1)


def _check_value(rule: ColumnRule, value: Any, row: int) -> Any:
    """The value normalized for the log and the online row (ints, floats, text, ISO times); raises PushRowError."""

    def fail(what: str, rule_name: str, fix: str | None = None) -> PushRowError:
        return PushRowError(f"row {row}, column {rule.name}: {what} (rule {rule_name})", fix=fix, row=row,
                            column=rule.name, rule=rule_name)

    if value is None or (isinstance(value, float) and math.isnan(value)):
        if rule.not_null:
            raise fail("is null", "not_null", fix="send a value: the column is declared not null")
        return None
    kind = rule.kind
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail(f"{_show(value)} is not an integer", "type")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise fail(f"{_show(value)} is not a finite number", "type")
        value = float(value)
    elif kind == "str":
        if not isinstance(value, str):
            raise fail(f"{_show(value)} is not text", "type")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise fail(f"{_show(value)} is not true/false", "type")
    elif kind == "timestamp":
        t = parse_time(value)
        if t is None:
            raise fail(f"{_show(value)} is not a time", "type", fix="send ISO 8601 text, e.g. 2026-02-01T10:00:00")
        value = _iso(t)
    elif not isinstance(value, str | int | float | bool):
        raise fail(f"{_show(value)} is not a scalar", "type")
    if rule.min is not None and isinstance(value, int | float) and value < rule.min:
        raise fail(f"{value} is below the declared minimum {rule.min}", "range")
    if rule.max is not None and isinstance(value, int | float) and value > rule.max:
        raise fail(f"{value} is above the declared maximum {rule.max}", "range")
    if rule.allowed is not None and value not in rule.allowed:
        raise fail(f"{_show(value)} is not one of {list(rule.allowed)}", "allowed_values")
    return value


def _show(value: Any) -> str:
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def check_rows(ps: PushSpec, df: Any, now: datetime) -> list[dict[str, Any]]:
    """Feast's columnar `df` ({column: [values]}) -> normalized rows; raises on the first row breaking a rule."""
    if not isinstance(df, dict) or not df:
        raise PushRequestError("`df` must be an object of columns: {column: [values, ...]}",
                               fix='e.g. {"customer_id": [1], "event_timestamp": ["2026-02-01T10:00:00"], ...}')
    cols = dict(df)
    s = ps.spec
    # Feast's RemoteOnlineStore sends the times as event_timestamp / created (fs_cli/online/push.py docstring)
    if s.event_time not in cols and FEAST_EVENT_COLUMN in cols:
        cols[s.event_time] = cols.pop(FEAST_EVENT_COLUMN)
    if FEAST_CREATED_COLUMN in cols and FEAST_CREATED_COLUMN not in ps.rules:
        created = cols.pop(FEAST_CREATED_COLUMN)
        if s.created_time and s.created_time not in cols:
            cols[s.created_time] = created
    expected = ps.columns
    unknown = [c for c in cols if c not in expected]
    if unknown:
        raise PushRequestError(f"feature group {s.name} has no column {str(unknown[0])[:60]!r}",
                               fix=f"its columns: {', '.join(expected)}", status=422)
    missing = [c for c in expected if c not in cols and (c in s.keys or c == s.event_time or ps.rules[c].not_null)]
    if missing:
        raise PushRequestError(f"column {missing[0]} is missing", fix=f"send every column of {s.name}: "
                               f"{', '.join(expected)}", status=422)
    lengths = {len(v) if isinstance(v, list) else -1 for v in cols.values()}
    if -1 in lengths or len(lengths) != 1:
        raise PushRequestError("every column of `df` must be a list, all of the same length")
    n = lengths.pop()
    if n == 0:
        raise PushRequestError("`df` has no rows", fix="send at least one row")
    if n > MAX_ROWS:
        raise PushRequestError(f"{n} rows exceed the limit of {MAX_ROWS} per request", fix="split the request",
                               status=413)
    return [check_row(ps, {c: cols[c][i] for c in expected if c in cols}, i, now) for i in range(n)]


def check_row(ps: PushSpec, values: dict[str, Any], i: int, now: datetime) -> dict[str, Any]:
    """One row ({column: value}, absent = null) normalized, or PushRowError naming row `i`, the column and the rule."""
    s = ps.spec
    row = {}
    for c in ps.columns:
        rule = ps.rules[c]
        if c in s.keys or c == s.event_time:
            rule = ColumnRule(rule.name, rule.kind, True, rule.min, rule.max, rule.allowed)
        if c == s.event_time and rule.kind != "timestamp":
            rule = ColumnRule(rule.name, "timestamp", True, None, None, None)
        row[c] = _check_value(rule, values.get(c), i)
    if datetime.fromisoformat(row[s.event_time]) > now + FUTURE_TOLERANCE:
        raise PushRowError(f"row {i}, column {s.event_time}: {row[s.event_time]} is in the future "
                           f"(rule future_event_time)", fix="push values that are already true",
                           row=i, column=s.event_time, rule="future_event_time")
    return row


def online_items(ps: PushSpec, rows: list[dict[str, Any]]) -> list[tuple[str, int, bytes]]:
    """(encoded key, event_us, packed row) per row, as materialization packs them (fs_cli.online.store)."""
    s = ps.spec
    out = []
    for row in rows:
        event_us = _epoch_us(datetime.fromisoformat(row[s.event_time]))
        created = row.get(s.created_time) if s.created_time else None
        created_us = _epoch_us(datetime.fromisoformat(created)) if created else None
        out.append((encode_key([row[k] for k in s.keys]), event_us,
                    pack_row(event_us, created_us, [row[f] for f in s.feature_names])))
    return out


@dataclass
class PushResult:
    feature_group: str
    rows: int
    written: int  # rows now served online
    skipped_older: int  # rows older than the served value of their entity (logged, not served)
    logged: int

    def to_dict(self) -> dict[str, Any]:
        return {"feature_group": self.feature_group, "rows": self.rows, "written": self.written,
                "skipped_older": self.skipped_older, "logged": self.logged}


class PushService:
    """Pushes into one online store and one push log. Specs are re-read from the store when a name is unknown
    or every `refresh_seconds` (a republished declaration takes effect without a restart)."""

    def __init__(self, store: OnlineStore, log: PushLog, clock: Callable[[], float] = time.time,
                 refresh_seconds: float = 5.0):
        self.store, self.log, self.clock, self.refresh_seconds = store, log, clock, refresh_seconds
        self._specs: dict[str, PushSpec] = {}
        self._loaded = -math.inf

    def _refresh(self) -> None:
        self._specs = load_push_specs(self.store)
        self._loaded = time.monotonic()

    def resolve(self, name: Any, by_source: bool) -> PushSpec:
        if not isinstance(name, str) or not name:
            what = "push_source_name" if by_source else "feature_view_name"
            raise PushRequestError(f"`{what}` must name a feature group", fix=f'e.g. {{"{what}": "fg_customer_profile"}}')
        if time.monotonic() - self._loaded > self.refresh_seconds:
            self._refresh()
        for attempt in range(2):
            for ps in self._specs.values():
                if ps.name == name or (by_source and ps.push_source == name):
                    return ps
            if attempt == 0:
                self._refresh()
        known = sorted({n for ps in self._specs.values() for n in (ps.name, ps.push_source) if n})
        raise PushRequestError(f"no online feature group or push source named {name[:80]!r}",
                               fix=f"known: {', '.join(known) or '(none: run `fs materialize`)'}", status=404)

    def push(self, name: Any, df: Any, to: Any = "online", by_source: bool = True) -> PushResult:
        if to not in PUSH_MODES:
            raise PushRequestError(f"`to` is {str(to)[:40]!r}", fix=f"use one of {', '.join(PUSH_MODES)}")
        ps = self.resolve(name, by_source)
        now = datetime.fromtimestamp(self.clock(), UTC).replace(tzinfo=None)
        rows = check_rows(ps, df, now)
        request_id = uuid.uuid4().hex
        pushed_at = _iso(now)
        # Durable first: an acknowledged push is never lost; a failed online write after this is retried by the
        # client, and the duplicate (same key and event time) collapses at publish (the latest push wins).
        self.log.append(ps.name, [{"id": f"{request_id}:{i}", "pushed_at": pushed_at, "row": r}
                                  for i, r in enumerate(rows)])
        written = skipped = 0
        if to != "offline":
            try:
                written, skipped = self.store.upsert_if_newer(ps.name, online_items(ps, rows), spec=ps.spec.to_dict())
            except SupersededError as e:  # a materialization changed the schema since the specs were read
                self._loaded = -math.inf  # re-read them on the next request
                raise PushRequestError(e.message, fix="retry the push: it is checked against the new schema (the "
                                                      "copy already logged collapses with the retry's)",
                                       status=409) from None
        return PushResult(ps.name, len(rows), written, skipped, len(rows))
