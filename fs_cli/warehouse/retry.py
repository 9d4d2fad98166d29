"""Writes that allocate a number (a model version, a validation id, a training-dataset version) run through one
retrying transaction: a concurrent writer that took the same number makes the warehouse report a conflict, and the
next attempt reads the new maximum."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from .base import Warehouse

T = TypeVar("T")


def in_transaction(wh: Warehouse, fn: Callable[[Warehouse], T], attempts: int = 20) -> T:
    """Run fn in a transaction; retry when a concurrent writer took the same version number (the warehouse reports
    a write conflict or a primary-key violation; the next attempt reads the new max)."""
    for attempt in range(attempts):
        try:
            with wh.transaction():
                return fn(wh)
        except Exception as e:
            if not wh.is_write_conflict(e) or attempt == attempts - 1:
                raise
            time.sleep(0.005 * (attempt + 1))
    raise AssertionError("unreachable")
