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
- ``meta`` carries the FG's schema (FGSpec, and its fingerprint ``spec_id``), row count and watermark; it is written
  in the same atomic step as the rows and the pointer, so a reader never decodes rows with another version's schema.
  An incremental update only applies to the version it was computed from (``base``) and only under the same spec;
  otherwise nothing is written (SupersededError) and the caller plans again.
- ``meta.data_version`` orders publishes: ``[commit_us, now_us]``, the latest snapshot commit the rows reflect and
  the clock they were computed at (microseconds since the epoch). A publish older than the serving version is
  refused inside the same atomic step (StaleVersionError, nothing written), so concurrent materializations never
  replace newer data with older data. A deliberate backfill to the past passes ``rewind=True``.
Feature view definitions (the *published views*) are published next to the pointers, in the same atomic step.

Readers call ``read`` with several FGs at once and get one consistent snapshot across them.
Values are packed by ``pack_row``: a JSON array ``[event_time_us, created_time_us|null, f1, f2, ...]``
in the order of ``meta.spec.features``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any

import orjson

from ..errors import FeatureStoreError
from .specs import FGSpec, FVSpec


class SupersededError(FeatureStoreError):
    """Another materialization of the same feature group published first (a newer generation, or the version an
    incremental update was computed from is no longer serving, or its schema changed): nothing was written."""


class StaleVersionError(SupersededError):
    """The publish carries older data (``data_version``) than the version serving: refused, nothing written."""


_EPOCH = datetime(1970, 1, 1)


def spec_id(spec: dict[str, Any]) -> str:
    """A fingerprint of an FG spec (as stored in meta): equal specs, equal ids; the stores compare it atomically."""
    return sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()[:24]


def make_data_version(commit_time: str | datetime | None, now: datetime) -> list[int]:
    """``[commit_us, now_us]`` of a materialization: the snapshot commit time it reflects (None: 0) and its clock."""
    if isinstance(commit_time, str):
        commit_time = datetime.fromisoformat(commit_time)
    commit_us = 0 if commit_time is None else (commit_time.replace(tzinfo=None) - _EPOCH) // timedelta(microseconds=1)
    return [int(commit_us), int((now - _EPOCH) // timedelta(microseconds=1))]


def data_version_of(meta: dict[str, Any] | None) -> tuple[int, int]:
    """The data version a pointer's meta records; (0, 0) for versions published before versions were recorded."""
    dv = (meta or {}).get("data_version") or (0, 0)
    return int(dv[0]), int(dv[1])


def _version_text(dv: Sequence[int]) -> str:
    commit = "none" if not dv[0] else (_EPOCH + timedelta(microseconds=int(dv[0]))).isoformat(sep=" ")
    return f"commit {commit}, now {(_EPOCH + timedelta(microseconds=int(dv[1]))).isoformat(sep=' ')}"


def schema_changed_error(fg: str) -> SupersededError:
    return SupersededError(f"feature group {fg}: the rows were packed for another schema than the serving version's "
                           f"(a materialization changed it meanwhile); nothing was written",
                           fix="retry: the request is checked against the new schema")


def stale_error(fg: str, mine: Sequence[int], serving: Sequence[int]) -> StaleVersionError:
    return StaleVersionError(
        f"feature group {fg}: not published, the online store already serves newer data "
        f"({_version_text(serving)}) than this materialization ({_version_text(mine)}); nothing was written",
        fix="nothing to do: the newer version keeps serving (to serve older data on purpose, materialize with an "
            "explicit --end)")


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
    def commit(self, meta: dict[str, Any], views: dict[str, FVSpec] | None = None, *, rewind: bool = False) -> Pointer:
        """Flip the FG's pointer to this row set (atomically, together with meta and the views); then GC old row sets.
        Refused (nothing flipped) if a newer generation is serving (SupersededError) or, unless `rewind`, if the
        serving version's data_version is newer than meta's (StaleVersionError)."""

    @abstractmethod
    def abort(self) -> None: ...


class OnlineStore(ABC):
    url: str

    # -- write side --------------------------------------------------------------------------------------
    @abstractmethod
    def begin_full(self, fg: str) -> FullWrite: ...

    @abstractmethod
    def apply_incremental(self, fg: str, upserts: Sequence[tuple[str, bytes]], deletes: Iterable[str],
                          meta: dict[str, Any], views: dict[str, FVSpec] | None = None, *,
                          base: tuple[int, int] | None = None) -> Pointer:
        """Upsert/delete rows of the FG's current row set and bump its version, writing meta, in ONE atomic step.
        Refused, nothing written: if the serving version is not `base` (gen, version) (the one the change was
        computed from) or has another spec than meta's (SupersededError), or has a newer data_version
        (StaleVersionError)."""

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

    def upsert_if_newer(self, fg: str, items: Sequence[tuple[str, int, bytes]], *,
                        spec: dict[str, Any] | None = None) -> tuple[int, int]:
        """Push ingestion (fs_cli.online.push): write (key, event_us, packed row) into the FG's current row set,
        each only if its event time is >= the one served for that key, all in ONE atomic step. The version is not
        bumped (the schema is unchanged). Returns (written, skipped as older). Raises FeatureStoreError if the FG
        has no online version, SupersededError (nothing written) if `spec` (the spec the rows were packed for) is
        not the serving version's."""
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
