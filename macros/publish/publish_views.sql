{#-
  BI views of published feature groups, (re)created by every snapshot (= publish) of a feature group.

  Wired as a snapshot post-hook in dbt_project.yml, so plain `dbt snapshot` / `dbt build` keep them current as well as
  `fs run`. Per feature group `<fg>` (the model name, `<model>_v<N>` for a versioned model):
    <target schema>_published.<fg>  the rows published now: the feature group's own columns, no dbt_ columns
    <target schema>_history.<fg>    every version: the columns, then commit_id (the commit that wrote the version,
                                    numbered like `fs commits`), valid_from, valid_to (null = still current) and
                                    deleted (boolean: the version records the key's deletion)
  Schema names go through generate_schema_name('published' / 'history'), like any `+schema:` config. Candidates
  (the feature-group models) build into `<target schema>_candidates`, away from these.
  Views are dropped and created inside the snapshot's transaction where the engine has one, so a reader sees the old
  or the new definition. A snapshot that does not publish a feature group (no `meta.fs` upstream) is left alone.
-#}
{% macro fs_publish_views() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set fg_node = fs_publish_feature_group_node(model) -%}
    {%- if fg_node is none -%}{{ return('') }}{%- endif -%}
    {%- set fg_name = fs_publish_feature_group_name(fg_node) -%}
    {%- set meta_columns = ['dbt_scd_id', 'dbt_updated_at', 'dbt_valid_from', 'dbt_valid_to', 'dbt_is_deleted'] -%}
    {%- set snapshot_columns = adapter.get_columns_in_relation(this) -%}
    {%- set names = [] -%}
    {%- set has_deleted = [] -%}
    {%- for c in snapshot_columns -%}
        {%- if c.name | lower == 'dbt_is_deleted' %}{% do has_deleted.append(1) %}{% endif -%}
        {%- if c.name | lower not in meta_columns %}{% do names.append(adapter.quote(c.name)) %}{% endif -%}
    {%- endfor -%}
    {%- set deleted = "coalesce(dbt_is_deleted, 'False') = 'True'" if has_deleted else "1 = 0" -%}
    {%- set columns = names | join(', ') -%}

    {%- set published_sql -%}
        select {{ columns }} from {{ this }}
        where dbt_valid_to is null and not ({{ deleted }})
    {%- endset -%}
    {%- set history_sql -%}
        select {{ columns }},
               cast(dense_rank() over (order by dbt_valid_from) as {{ dbt.type_int() }}) as commit_id,
               dbt_valid_from as valid_from,
               dbt_valid_to as valid_to,
               case when {{ deleted }} then true else false end as deleted
        from {{ this }}
    {%- endset -%}
    {%- do fs_publish_view('published', fg_name, published_sql) -%}
    {%- do fs_publish_view('history', fg_name, history_sql) -%}
    {{ return('') }}
{% endmacro %}


{#- (Re)create the view `<schema for custom_schema>.<name>` as `sql`. -#}
{% macro fs_publish_view(custom_schema, name, sql) %}
    {%- set schema = generate_schema_name(custom_schema, none) | trim -%}
    {%- set view = api.Relation.create(database=this.database, schema=schema, identifier=name, type='view') -%}
    {#- Normally created once by the on-run-start hook: snapshots running in parallel threads would race on it. -#}
    {%- if not adapter.check_schema_exists(this.database, schema) -%}{%- do adapter.create_schema(view) -%}{%- endif -%}
    {%- do adapter.dispatch('fs_replace_view', 'feature_store')(view, sql) -%}
{% endmacro %}


{#- Replace a view whose columns may have changed (Postgres' `create or replace view` refuses dropped columns). -#}
{% macro default__fs_replace_view(view, sql) %}
    {%- do run_query('drop view if exists ' ~ view) -%}
    {%- do run_query('create view ' ~ view ~ ' as ' ~ sql) -%}
{% endmacro %}

{% macro spark__fs_replace_view(view, sql) %}
    {%- do run_query('create or replace view ' ~ view ~ ' as ' ~ sql) -%}
{% endmacro %}


{#- The feature-group model a snapshot publishes (graph node dict), or none. -#}
{% macro fs_publish_feature_group_node(snapshot) %}
    {%- for uid in snapshot.get('depends_on', {}).get('nodes', []) -%}
        {%- set node = graph.nodes.get(uid) -%}
        {%- if node is not none and node.resource_type == 'model' -%}
            {%- set meta = (node.config or {}).get('meta') or node.get('meta') or {} -%}
            {%- set fs = meta.get('fs') -%}
            {%- if fs is mapping and 'feature_view' not in fs -%}{{ return(node) }}{%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(none) }}
{% endmacro %}


{#- A feature group's name: the model name, `<model>_v<N>` for a versioned model (as fs names it). -#}
{% macro fs_publish_feature_group_name(node) %}
    {%- if node.version is not none and node.version is defined -%}
        {{ return(node.name ~ '_v' ~ node.version) }}
    {%- endif -%}
    {{ return(node.name) }}
{% endmacro %}


{#-
  on-run-start hook: create the BI view schemas once, before snapshots run in parallel threads (two threads creating
  the same schema conflict on DuckDB and Postgres). Only when the invocation selects a snapshot.
-#}
{% macro fs_publish_schemas() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set snapshots = [] -%}
    {%- for uid in selected_resources %}{% if uid.startswith('snapshot.') %}{% do snapshots.append(uid) %}{% endif %}{% endfor -%}
    {%- if snapshots -%}
        {%- for custom in ['published', 'history'] -%}
            {%- set schema = generate_schema_name(custom, none) | trim -%}
            {#- target.get: Spark targets have no database (target.database is undefined there). #}
            {%- do adapter.create_schema(api.Relation.create(database=target.get('database'), schema=schema)) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return('') }}
{% endmacro %}
