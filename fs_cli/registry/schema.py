"""The registry's tables in the warehouse (schema fs_meta), queryable from any SQL client.

Rows in models, model_versions, model_validations, alias_history and model_tombstones are only ever appended;
model_aliases is the one mutable table (an alias is the only moving pointer) and every change to it is mirrored
by an alias_history row.
"""

from __future__ import annotations

import duckdb

from ..warehouse import META_SCHEMA, relation_exists

MODELS = f"{META_SCHEMA}.models"
VERSIONS = f"{META_SCHEMA}.model_versions"
ALIASES = f"{META_SCHEMA}.model_aliases"
ALIAS_HISTORY = f"{META_SCHEMA}.alias_history"
VALIDATIONS = f"{META_SCHEMA}.model_validations"
TOMBSTONES = f"{META_SCHEMA}.model_tombstones"
REGISTRY_VIEW = f"{META_SCHEMA}.model_registry"
_TABLES = ("models", "model_versions", "model_aliases", "alias_history", "model_validations", "model_tombstones")

_DDL = [
    f"create schema if not exists {META_SCHEMA}",
    f"""create table if not exists {MODELS} (
        name varchar primary key,
        created_at timestamp not null,
        created_by varchar,
        description varchar
    )""",
    f"""create table if not exists {VERSIONS} (
        name varchar not null,
        version integer not null,
        created_at timestamp not null,
        created_by varchar,
        artifact_sha256 varchar not null,
        artifact_bytes bigint not null,
        artifact_format varchar not null,
        artifact_path varchar not null,       -- relative to the model store
        estimator_class varchar,
        task varchar not null,                -- classification | regression
        training_dataset varchar not null,    -- feature view name
        training_dataset_version integer not null,
        training_dataset_hash varchar,
        fg_commits json,                      -- the feature-group commits the training dataset read
        input_schema json not null,
        output_schema json not null,
        metrics json,
        description varchar,
        tags json,
        meta json,
        primary key (name, version)
    )""",
    f"""create table if not exists {ALIASES} (
        name varchar not null,
        alias varchar not null,
        version integer not null,
        updated_at timestamp not null,
        updated_by varchar,
        primary key (name, alias)
    )""",
    f"""create table if not exists {ALIAS_HISTORY} (
        name varchar not null,
        alias varchar not null,
        seq integer not null,
        action varchar not null,              -- set | move | remove
        old_version integer,
        new_version integer,
        changed_at timestamp not null,
        changed_by varchar,
        reason varchar,
        primary key (name, alias, seq)
    )""",
    f"""create table if not exists {VALIDATIONS} (
        name varchar not null,
        version integer not null,
        validation_id integer not null,
        validated_at timestamp not null,
        status varchar not null,              -- passed | failed
        training_dataset varchar not null,
        training_dataset_version integer not null,
        task varchar not null,
        n_test bigint not null,
        metrics json,
        slices json,
        ood json,
        checks json,
        primary key (name, version, validation_id)
    )""",
    f"""create table if not exists {TOMBSTONES} (
        name varchar not null,
        version integer not null,
        deleted_at timestamp not null,
        deleted_by varchar,
        reason varchar,
        primary key (name, version)
    )""",
    # One row per version with its status, aliases and latest validation: what a BI user wants first.
    f"""create or replace view {REGISTRY_VIEW} as
        select v.name, v.version, v.created_at, v.task, v.estimator_class,
               v.training_dataset, v.training_dataset_version, v.input_transformed, v.artifact_sha256,
               case when t.version is null then 'active' else 'deleted' end as status,
               (select string_agg(a.alias, ',' order by a.alias) from {ALIASES} a
                 where a.name = v.name and a.version = v.version) as aliases,
               (select arg_max(mv.status, mv.validation_id) from {VALIDATIONS} mv
                 where mv.name = v.name and mv.version = v.version) as validation_status,
               v.metrics, v.meta, v.tags, v.description
        from {VERSIONS} v left join {TOMBSTONES} t on t.name = v.name and t.version = v.version""",
]


# Columns added after the first release of a table: added in place to warehouses created before them.
_MIGRATIONS = [
    f"alter table {VERSIONS} add column if not exists input_transformed boolean default false",
]


def _up_to_date(con: duckdb.DuckDBPyConnection) -> bool:
    n = con.execute(
        "select count(*) from information_schema.columns where table_schema = ? and "
        "((table_name = 'model_versions' and column_name = 'input_transformed') or "
        "(table_name = 'model_registry' and column_name = 'input_transformed'))", [META_SCHEMA]).fetchall()[0][0]
    return n == 2 and all(relation_exists(con, META_SCHEMA, t) for t in _TABLES)


def ensure_registry(con: duckdb.DuckDBPyConnection) -> None:
    """Create or migrate the registry tables. A no-op when they are current: DDL on every call would make
    concurrent writers in one process conflict on the catalog."""
    if _up_to_date(con):
        return
    try:
        for ddl in _DDL[:-1]:
            con.execute(ddl)
        for ddl in _MIGRATIONS:
            con.execute(ddl)
        con.execute(_DDL[-1])
    except duckdb.TransactionException:
        if not _up_to_date(con):  # a concurrent writer did the same; anything else is real
            raise
