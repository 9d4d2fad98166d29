{#-
  The validation gate under plain dbt: a strict feature group is never published with failing expectations.

  Wired as a snapshot pre-hook in dbt_project.yml. A feature group declares its expectations in YAML and attaches them
  as the generic test `fs_expectations` (macros/tests/fs_expectations.sql); the snapshot depends on the model, so
  `dbt build` skips the publish when that test fails. A strict group WITHOUT the attached test (severity error) is
  given it automatically here: the same checks run on the candidate right before the snapshot, and a failure
  refuses the publish with a message naming the group, the failing checks and the fix. Groups under policy `warn`
  publish as before. Commits published without an fs validation run are marked `validation: none` by `fs commits`.
  Under `fs run` (fs_publish_request() names an audited copy of the candidate) the hook instead publishes exactly that
  copy: fs has audited it already, and whatever was written into the candidate since is not published.
-#}
{% macro fs_publish_gate() %}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set fg_node = fs_publish_feature_group_node(model) -%}
    {%- if fg_node is none -%}{{ return('') }}{%- endif -%}
    {%- set audited = fs_publish_request().get('audited', {}).get(fg_node.unique_id) -%}
    {%- if audited -%}
        {#- `fs run` audited an immutable copy of the candidate: publish exactly that copy. -#}
        {%- do fs_publish_audited_copy(fg_node, audited) -%}
        {{ return('') }}
    {%- endif -%}
    {%- set meta = (fg_node.config or {}).get('meta') or fg_node.get('meta') or {} -%}
    {%- if (meta.get('fs') or {}).get('policy', 'strict') != 'strict' -%}{{ return('') }}{%- endif -%}
    {%- if fs_publish_has_expectations_test(fg_node) -%}{{ return('') }}{%- endif -%}

    {%- set candidate = api.Relation.create(database=fg_node.database, schema=fg_node.schema,
                                            identifier=fg_node.alias) -%}
    {%- set checks = test_fs_expectations(candidate) -%}
    {%- set failing = run_query("select fs_check, count(*) as n from (" ~ checks ~ ") fs_gate group by fs_check"
                                ~ " order by fs_check") -%}
    {%- if failing.rows | length > 0 -%}
        {%- set what = [] -%}
        {%- for r in failing.rows %}{% do what.append(r[0] ~ ' (' ~ r[1] ~ ' rows)') %}{% endfor -%}
        {%- do exceptions.raise_compiler_error(
            "fs: not publishing strict feature group " ~ fs_publish_feature_group_name(fg_node)
            ~ ": its declared expectations fail on the candidate " ~ candidate ~ ": " ~ what | join(', ')
            ~ ". The previous commit stays published. Fix the data or the expectations; attach "
            ~ "`data_tests: [fs_expectations]` to the model so `dbt build` reports the failing rows before the "
            ~ "snapshot.") -%}
    {%- endif -%}
    {{ return('') }}
{% endmacro %}


{#- Whether an error-severity `fs_expectations` test is attached to the model (dbt's DAG then gates the publish). -#}
{% macro fs_publish_has_expectations_test(fg_node) %}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'test'
              and (node.get('test_metadata') or {}).get('name') == 'fs_expectations'
              and fg_node.unique_id in node.depends_on.nodes
              and (node.config.severity or 'error') | lower == 'error' -%}
            {{ return(true) }}
        {%- endif -%}
    {%- endfor -%}
    {{ return(false) }}
{% endmacro %}


{#-
  What `fs run` asks of this `dbt snapshot` invocation (fs_cli/pipeline.py PUBLISH_ENV), {} under plain dbt:
    time     one commit time for every feature group the run publishes (snapshot_clock.sql)
    audited  {model unique id: identifier of the audited copy of its candidate, in the candidate's schema}
  Read only while executing (never at parse time), so dbt's partial parsing does not depend on it.
-#}
{% macro fs_publish_request() %}
    {%- if not execute -%}{{ return({}) }}{%- endif -%}
    {%- set raw = env_var('FEATURE_STORE_PUBLISH', '') -%}
    {%- if not raw -%}{{ return({}) }}{%- endif -%}
    {{ return(fromjson(raw)) }}
{% endmacro %}


{#-
  Snapshot pre-hook part for `fs run`: make the candidate hold exactly the rows of its audited copy, inside the
  snapshot's transaction and under a lock where the engine has one, so that a writer who changed the candidate after
  the audit changes nothing that is published.
-#}
{% macro fs_publish_audited_copy(fg_node, audited_identifier) %}
    {%- set candidate = api.Relation.create(database=fg_node.database, schema=fg_node.schema,
                                            identifier=fg_node.alias) -%}
    {%- set batch = fs_publish_batch(model) -%}
    {%- if batch is not none -%}
        {#- an incremental group: the audited copy holds its new batch only (publish_batch.sql) -#}
        {%- do fs_publish_replace_batch(candidate, batch) -%}
        {{ return('') }}
    {%- endif -%}
    {%- set audited = api.Relation.create(database=fg_node.database, schema=fg_node.schema,
                                          identifier=audited_identifier) -%}
    {%- do adapter.dispatch('fs_publish_replace_rows', 'feature_store')(candidate, audited) -%}
{% endmacro %}

{% macro default__fs_publish_replace_rows(candidate, audited) %}
    {%- do run_query('delete from ' ~ candidate) -%}
    {%- do run_query('insert into ' ~ candidate ~ ' select * from ' ~ audited) -%}
{% endmacro %}

{#- Postgres: writers wait for the snapshot's transaction (readers do not) from here to its commit. -#}
{% macro postgres__fs_publish_replace_rows(candidate, audited) %}
    {%- do run_query('lock table ' ~ candidate ~ ' in exclusive mode') -%}
    {%- do default__fs_publish_replace_rows(candidate, audited) -%}
{% endmacro %}

{% macro spark__fs_publish_replace_rows(candidate, audited) %}
    {%- do run_query('insert overwrite table ' ~ candidate ~ ' select * from ' ~ audited) -%}
{% endmacro %}
