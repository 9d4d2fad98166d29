"""The registry's tables in the warehouse (schema fs_meta), queryable from any SQL client.

Rows in models, model_versions, model_validations, alias_history and model_tombstones are only ever appended;
model_aliases is the one mutable table (an alias is the only moving pointer) and every change to it is mirrored
by an alias_history row. JSON documents are stored as text (every engine has it; Spark has no json type).
"""

from __future__ import annotations

from ..warehouse import META_SCHEMA, Warehouse

MODELS = f"{META_SCHEMA}.models"
VERSIONS = f"{META_SCHEMA}.model_versions"
ALIASES = f"{META_SCHEMA}.model_aliases"
ALIAS_HISTORY = f"{META_SCHEMA}.alias_history"
VALIDATIONS = f"{META_SCHEMA}.model_validations"
TOMBSTONES = f"{META_SCHEMA}.model_tombstones"
REGISTRY_VIEW = f"{META_SCHEMA}.model_registry"
_TABLES = ("models", "model_versions", "model_aliases", "alias_history", "model_validations", "model_tombstones")

# (table, [(column, logical type, not null)], primary key); logical types map to each engine's DDL (Warehouse.type)
_TABLE_COLUMNS: list[tuple[str, list[tuple[str, str, bool]], str]] = [
    (MODELS, [("name", "text", True), ("created_at", "timestamp", True), ("created_by", "text", False),
              ("description", "text", False)], "name"),
    (VERSIONS, [
        ("name", "text", True), ("version", "integer", True), ("created_at", "timestamp", True),
        ("created_by", "text", False), ("artifact_sha256", "text", True), ("artifact_bytes", "bigint", True),
        ("artifact_format", "text", True),
        ("artifact_path", "text", True),  # relative to the model store
        ("estimator_class", "text", False),
        ("task", "text", True),  # classification | regression
        ("training_dataset", "text", True),  # feature view name
        ("training_dataset_version", "integer", True), ("training_dataset_hash", "text", False),
        ("fg_commits", "text", False),  # JSON: the feature-group commits the training dataset read
        ("input_schema", "text", True), ("output_schema", "text", True), ("metrics", "text", False),
        ("description", "text", False), ("tags", "text", False), ("meta", "text", False),
        ("input_transformed", "boolean", False),
        ("artifact_trust", "text", False),  # JSON: what registration trusted (skops types / an explicit pickle trust)
    ], "name, version"),
    (ALIASES, [("name", "text", True), ("alias", "text", True), ("version", "integer", True),
               ("updated_at", "timestamp", True), ("updated_by", "text", False)], "name, alias"),
    (ALIAS_HISTORY, [
        ("name", "text", True), ("alias", "text", True), ("seq", "integer", True),
        ("action", "text", True),  # set | move | remove
        ("old_version", "integer", False), ("new_version", "integer", False), ("changed_at", "timestamp", True),
        ("changed_by", "text", False), ("reason", "text", False),
    ], "name, alias, seq"),
    (VALIDATIONS, [
        ("name", "text", True), ("version", "integer", True), ("validation_id", "integer", True),
        ("validated_at", "timestamp", True),
        ("status", "text", True),  # passed | failed
        ("training_dataset", "text", True), ("training_dataset_version", "integer", True), ("task", "text", True),
        ("n_test", "bigint", True), ("metrics", "text", False), ("slices", "text", False), ("ood", "text", False),
        ("checks", "text", False),
    ], "name, version, validation_id"),
    (TOMBSTONES, [("name", "text", True), ("version", "integer", True), ("deleted_at", "timestamp", True),
                  ("deleted_by", "text", False), ("reason", "text", False)], "name, version"),
]

# One row per version with its status, aliases and latest validation: what a BI user wants first. Joins to
# grouped derived tables, not correlated subqueries, so that every engine (Spark included) plans it.
def _view(wh: Warehouse) -> str:
    return f"""create or replace view {REGISTRY_VIEW} as
    select v.name, v.version, v.created_at, v.task, v.estimator_class,
           v.training_dataset, v.training_dataset_version, v.input_transformed, v.artifact_sha256,
           case when t.version is null then 'active' else 'deleted' end as status,
           al.aliases, lv.status as validation_status,
           v.metrics, v.meta, v.tags, v.description, v.artifact_format
    from {VERSIONS} v
    left join {TOMBSTONES} t on t.name = v.name and t.version = v.version
    left join (select name, version, {wh.sorted_text_agg('alias', ',')} as aliases from {ALIASES}
               group by name, version) al on al.name = v.name and al.version = v.version
    left join (select mv.name, mv.version, mv.status from {VALIDATIONS} mv
               join (select name, version, max(validation_id) as validation_id from {VALIDATIONS}
                     group by name, version) m2
                 on m2.name = mv.name and m2.version = mv.version and m2.validation_id = mv.validation_id) lv
      on lv.name = v.name and lv.version = v.version"""


def _ddl(wh: Warehouse, table: str, columns: list[tuple[str, str, bool]], key: str) -> str:
    cols = ",\n    ".join(f"{wh.quote(n)} {wh.type(t)}{' not null' if nn else ''}" for n, t, nn in columns)
    return f"create table if not exists {table} (\n    {cols}{wh.primary_key_clause([key])}\n)"


# Columns added after the first release of a table: added in place to warehouses created before them.
_MIGRATIONS = [(VERSIONS, "input_transformed", "boolean"), (VERSIONS, "artifact_trust", "text")]
# The newest column of each relation: present means the relation is current. New view columns go last (Postgres'
# create or replace view may only append columns).
_NEWEST = {VERSIONS: "artifact_trust", REGISTRY_VIEW: "artifact_format"}


def _up_to_date(wh: Warehouse) -> bool:
    have = set(wh.tables(META_SCHEMA))
    if not all(t in have for t in (*_TABLES, "model_registry")):
        return False
    return all(col in {c for c, _ in wh.describe(rel)} for rel, col in _NEWEST.items())


def ensure_registry(wh: Warehouse) -> None:
    """Create or migrate the registry tables. A no-op when they are current: DDL on every call would make
    concurrent writers conflict on the catalog."""
    if _up_to_date(wh):
        return
    try:
        wh.ensure_schema(META_SCHEMA)
        for table, columns, key in _TABLE_COLUMNS:
            wh.execute(_ddl(wh, table, columns, key))
        for table, column, logical in _MIGRATIONS:
            if column not in {c for c, _ in wh.describe(table)}:
                wh.add_column(table, column, logical)
        wh.execute(_view(wh))
    except Exception as e:
        if not (wh.is_write_conflict(e) and _up_to_date(wh)):  # a concurrent writer did the same; else real
            raise
