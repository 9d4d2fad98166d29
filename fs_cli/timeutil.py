"""Durations (TTL) and timestamps. All times in the store are naive UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from .errors import FeatureStoreError

# The one TTL grammar; macros/point_in_time/fs_ttl_seconds.sql is its Jinja twin (a test checks they agree).
_WS = "[ \t\n\r\f\v]*"
_TTL = re.compile(f"{_WS}([0-9]+){_WS}([smhdw]?){_WS}")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, None: 1}


def parse_ttl(value: object, where: str = "ttl") -> timedelta | None:
    """'2d', '12h', '30m', '90s', '1w', an int of seconds; None, 0 or '0' mean unlimited (returns None)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise FeatureStoreError(f"{where}: {value!r} is not a duration", fix="use e.g. '2d', '12h', '30m' or null")
    if isinstance(value, int):
        if value < 0:
            raise FeatureStoreError(f"{where}: negative duration {value}", fix="use a positive duration or null")
        return timedelta(seconds=value) if value else None
    m = _TTL.fullmatch(value) if isinstance(value, str) else None
    if not m:
        raise FeatureStoreError(
            f"{where}: {value!r} is not a duration", fix="use a number with a unit s/m/h/d/w, e.g. '2d', or null"
        )
    seconds = int(m.group(1)) * _UNITS[m.group(2) or None]
    return timedelta(seconds=seconds) if seconds else None


def format_ttl(ttl: timedelta | None) -> str:
    if ttl is None:
        return "unlimited"
    s = int(ttl.total_seconds())
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def parse_timestamp(value: str | datetime, where: str = "timestamp") -> datetime:
    """ISO 8601 text or a datetime -> naive UTC datetime."""
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise FeatureStoreError(
                f"{where}: {value!r} is not a timestamp", fix="use ISO 8601, e.g. 2026-01-31 or 2026-01-31T12:00:00"
            ) from None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt
