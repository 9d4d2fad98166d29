"""The online store interface: versioned, atomically flipped per-feature-group row sets.

Model. Each online feature group (FG) has a *current pointer* ``(gen, version, meta)``:
- ``gen`` names a row set (entity key -> packed value). A full materialization writes a brand-new row set
  under a fresh ``gen`` (in chunks, invisible to readers), then flips the pointer in one atomic step and only
  then garbage-collects older row sets. A crash (even SIGKILL) before the flip leaves the old pointer, so the
  old version keeps serving; the orphaned partial row set is removed by the next successful run's GC.
- ``version`` counts published versions of the FG online. An incremental materialization (a commit that
  touched 1% of the entities) mutates the *current* row set in place and bumps ``version`` in one atomic
  step (an SQLite transaction; a Redis Lua script), so it costs O(changed rows) and readers still see either
  the whole old version or the whole new one.
- ``meta`` carries the FG's schema (FGSpec), row count and watermark; it flips together with the rows so a
  reader never decodes rows with another version's schema.
Feature view definitions (the *published views*) are published next to the pointers, in the same atomic step.

Readers call ``read`` with several FGs at once and get one consistent snapshot across them.
Values are packed by ``pack_row``: a JSON array ``[event_time_us, created_time_us|null, f1, f2, ...]``
in the order of ``meta.spec.features``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import FeatureStoreError
from .specs import FGSpec, FVSpec


class SupersededError(FeatureStoreError):
    """Another materialization of the same feature group flipped a newer version first."""


@dataclass
class Pointer:
    fg: str
    gen: int
    version: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> FGSpec:
        return FGSpec.from_dict(self.meta["spec"])


@dataclass
class ReadResult:
    """One FG's answer inside a snapshot read: the version it came from and the packed values, in key order."""

    gen: int
    version: int
    values: list[bytes | None]


def encode_key(values: Sequence[Any]) -> str:
    """Canonical text of an entity key. One column: str(value); several: a JSON array (no separator clashes)."""
    if len(values) == 1:
        v = values[0]
        return v if isinstance(v, str) else str(v)
    return orjson.dumps(list(values)).decode()


def pack_row(event_us: int, created_us: int | None, features: Sequence[Any]) -> bytes:
    return orjson.dumps([event_us, created_us, *features])


def unpack_row(blob: bytes) -> list[Any]:
    return orjson.loads(blob)


class FullWrite(ABC):
    """A full materialization in progress: rows go to a fresh, unreferenced row set until ``commit``."""

    gen: int

    @abstractmethod
    def write(self, items: Sequence[tuple[str, bytes]]) -> None: ...

    @abstractmethod
    def commit(self, meta: dict[str, Any], views: dict[str, FVSpec] | None = None) -> Pointer:
        """Flip the FG's pointer to this row set (atomically, together with the views); then GC old row sets."""

    @abstractmethod
    def abort(self) -> None: ...


class OnlineStore(ABC):
    url: str

    # -- write side --------------------------------------------------------------------------------------
    @abstractmethod
    def begin_full(self, fg: str) -> FullWrite: ...

    @abstractmethod
    def apply_incremental(self, fg: str, upserts: Sequence[tuple[str, bytes]], deletes: Iterable[str],
                          meta: dict[str, Any], views: dict[str, FVSpec] | None = None) -> Pointer:
        """Upsert/delete rows of the FG's current row set and bump its version, atomically."""

    @abstractmethod
    def publish_views(self, views: dict[str, FVSpec]) -> None: ...

    @abstractmethod
    def drop(self, fg: str) -> None:
        """Remove an FG from the online store (pointer and every row set)."""

    # -- read side ---------------------------------------------------------------------------------------
    @abstractmethod
    def pointers(self) -> dict[str, Pointer]: ...

    @abstractmethod
    def views(self) -> dict[str, FVSpec]: ...

    @abstractmethod
    def read(self, lookups: Sequence[tuple[str, Sequence[str]]]) -> list[ReadResult | None]:
        """Values for (fg, keys) pairs from ONE consistent snapshot; None for an FG never materialized."""

    def upsert_if_newer(self, fg: str, items: Sequence[tuple[str, int, bytes]]) -> tuple[int, int]:
        """Push ingestion (fs_cli.online.push): write (key, event_us, packed row) into the FG's current row set,
        each only if its event time is >= the one served for that key, all in ONE atomic step. The version is not
        bumped (the schema is unchanged). Returns (written, skipped as older). Raises FeatureStoreError if the FG
        has no online version."""
        raise NotImplementedError

    def put_document(self, name: str, blob: bytes) -> None:
        """Store a small named document next to the published views (e.g. the push specs)."""
        raise NotImplementedError

    def document(self, name: str) -> bytes | None:
        raise NotImplementedError

    def ping(self) -> bool:
        return True

    def row_count(self, fg: str) -> int:
        """Rows in the FG's current row set (for tests and `fs materialize` output)."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> OnlineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
