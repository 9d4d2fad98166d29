"""Training datasets (TDs): immutable, numbered materializations of a feature view over its label spine.

`create` compiles the feature view's model (macro fs_feature_view -> point-in-time join) with var `fs_as_of` set to
the commit time to read at, and materializes it as table fs_training.<fv>_v<N> with a `split` column, plus one row
in fs_meta.training_datasets: the feature-group commits read, the spine's time range, the split, row counts, the
feature list with types, the declaration and a content hash.

Guarantees:
- Immutable: a version is never rewritten; creating again always allocates N+1.
- Atomic: the table is built under a temporary name; renaming it and inserting its metadata row happen in one
  transaction, so a crash leaves no half version visible (only a `__building_*` table, dropped by the next create).
- Reproducible (bitemporal): every TD reads the feature groups as of one commit time (`--as-of`, or the creation
  time), so a TD created later with `--as-of` equal to an earlier TD's read time has the same content hash, given
  the same spine rows.
- Canonical order: rows are stored sorted by (spine timestamp, entity keys, the other columns); the random split
  hashes the row's number in that order with the seed, so it does not depend on how the warehouse scanned the spine.
"""

from __future__ import annotations

from .build import (
                    ABANDONED_AFTER_S,
                    BUILDING_PREFIX,
                    TDBuildStep,
                    _check_spine,
                    _dbt_compile,
                    build,
                    compile_feature_view,
                    create,
)
from .content import HASH_FORMAT, canonical_order, content_hash, hash_rows, logical_type, order_by
from .read import decimals_as_double, export, read, read_rows, td_order, td_order_by
from .split import SPLIT_HELP, SplitSpec, split_fraction
from .store import (
                    _JSON,
                    _META_COLUMNS,
                    SPLIT_COLUMN,
                    TD_META,
                    TD_SCHEMA,
                    TrainingDataset,
                    ensure_td_meta,
                    get_td,
                    info,
                    list_tds,
                    parse_ref,
                    table_name,
)

__all__ = [
    "ABANDONED_AFTER_S", "BUILDING_PREFIX", "HASH_FORMAT", "SPLIT_COLUMN", "SPLIT_HELP", "TD_META", "TD_SCHEMA",
    "SplitSpec", "TDBuildStep", "TrainingDataset", "_JSON", "_META_COLUMNS", "_check_spine", "_dbt_compile", "build",
    "canonical_order", "compile_feature_view", "content_hash", "create", "decimals_as_double", "ensure_td_meta",
    "export", "get_td", "hash_rows", "info", "list_tds", "logical_type", "order_by", "parse_ref", "read", "read_rows",
    "split_fraction", "table_name", "td_order", "td_order_by",
]
