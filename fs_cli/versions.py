"""The latest, or version N: how training datasets and model versions are looked up by number.

Both keep immutable numbered versions and both accept "no number" for the latest one; this is the one
implementation of that choice. The errors stay the callers' own (each names its noun and its fix), built from the
versions that exist. It imports nothing of the package but errors, so any layer may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from .errors import FeatureStoreError


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=Versioned)


def latest_or_version(items: Sequence[V], version: int | None, *,
                      unknown: Callable[[str], FeatureStoreError],
                      no_latest: Callable[[], FeatureStoreError],
                      may_be_latest: Callable[[V], bool] = lambda _: True) -> V:
    """Version `version` of `items` (ordered by version), or, when `version` is None, the last one `may_be_latest`
    accepts (a deleted model version is never the latest).

    unknown(existing) is raised for a number that is not there, `existing` being the numbers that are ("1, 2, 4");
    no_latest() when nothing may be the latest."""
    if version is None:
        candidates = [item for item in items if may_be_latest(item)]
        if not candidates:
            raise no_latest()
        return candidates[-1]
    for item in items:
        if item.version == version:
            return item
    raise unknown(", ".join(str(item.version) for item in items))
